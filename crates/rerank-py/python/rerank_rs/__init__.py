"""rerank_rs: cross-encoder rerankers and bi-encoders in-process, on rerank's Rust engine.

- :class:`CrossEncoder`: sentence-transformers' ``CrossEncoder`` (``predict``, ``rank``).
- :class:`SentenceTransformer`: sentence-transformers' ``encode`` / ``encode_query`` /
  ``encode_document``.
- :class:`Index`: a persistent rerank index with dense / BM25 / hybrid search and reranking.
- :mod:`rerank_rs.langchain` (extra ``[langchain]``): ``HuggingFaceCrossEncoder``,
  ``HuggingFaceEmbeddings`` and ``RerankRetriever`` for LangChain.

Every call that computes releases the GIL; engine errors arrive as ``FileNotFoundError`` /
``OSError`` (model files), ``ValueError`` (bad arguments, wrong kind of model) or
``RuntimeError``, with the engine's message.
"""

from ._activation import Identity, Sigmoid
from ._native import __version__
from .cross_encoder import CrossEncoder
from .index import Index
from .sentence_transformer import SentenceTransformer

__all__ = ["CrossEncoder", "SentenceTransformer", "Index", "Sigmoid", "Identity", "__version__"]
