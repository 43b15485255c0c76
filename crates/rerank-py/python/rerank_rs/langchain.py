"""LangChain drop-ins (optional extra: ``pip install 'rerank-rs[langchain]'``).

- :class:`HuggingFaceCrossEncoder`: the ``BaseCrossEncoder`` of
  ``langchain_community.cross_encoders.HuggingFaceCrossEncoder``, same fields and same scores,
  so ``CrossEncoderReranker(model=HuggingFaceCrossEncoder(model_name=…), top_n=3)`` runs with
  one import changed.
- :class:`HuggingFaceEmbeddings`: the ``Embeddings`` of ``langchain_huggingface`` (same fields).
- :class:`RerankRetriever`: a ``BaseRetriever`` over a :class:`rerank_rs.Index`: dense / BM25 /
  hybrid first stage, optional cross-encoder, ``top_k`` / ``top_n``, ``relevance_score`` in
  each document's metadata; the whole two-stage pipeline runs in Rust with the GIL released.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Tuple

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.cross_encoders import BaseCrossEncoder
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "rerank_rs.langchain needs langchain-core: pip install 'rerank-rs[langchain]' "
        "(langchain-core and langchain-classic)"
    ) from exc

from .cross_encoder import CrossEncoder
from .index import Index
from .sentence_transformer import SentenceTransformer

__all__ = ["HuggingFaceCrossEncoder", "HuggingFaceEmbeddings", "RerankRetriever"]


class HuggingFaceCrossEncoder(BaseModel, BaseCrossEncoder):
    """A cross-encoder for LangChain's ``CrossEncoderReranker``, backed by
    :class:`rerank_rs.CrossEncoder` (``model_kwargs`` go to it: ``max_length``, ``precision``,
    ``activation_fn``, ``device="cpu"``…).

    :meth:`score` returns what ``langchain_community``'s ``HuggingFaceCrossEncoder.score``
    returns for the same model: ``CrossEncoder.predict(pairs)`` (the sigmoid of the logit for 1
    label, by sentence-transformers' default) or, for 2 labels, its label-1 column.
    """

    client: Any = None  #: :meta private:
    model_name: str = "BAAI/bge-reranker-base"
    """Model folder, name on ``RERANK_MODEL_PATH`` or hub id."""
    model_kwargs: Dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of :class:`rerank_rs.CrossEncoder`."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.client is None:
            self.client = CrossEncoder(self.model_name, **self.model_kwargs)

    def score(self, text_pairs: List[Tuple[str, str]]) -> List[float]:
        """Relevance of each ``(query, document)`` pair, in input order."""
        pairs = list(text_pairs)
        if not pairs:
            return []
        scores = self.client.predict(pairs)
        if scores.ndim > 1:
            scores = scores[:, 1]
        return [float(s) for s in scores]


class HuggingFaceEmbeddings(BaseModel, Embeddings):
    """LangChain ``Embeddings`` backed by :class:`rerank_rs.SentenceTransformer`, with the fields
    and behaviour of ``langchain_huggingface.HuggingFaceEmbeddings`` (newlines become spaces;
    ``embed_query`` uses ``query_encode_kwargs`` when given, else ``encode_kwargs``)."""

    client: Any = None  #: :meta private:
    model_name: str = "sentence-transformers/all-mpnet-base-v2"
    model_kwargs: Dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of :class:`rerank_rs.SentenceTransformer`."""
    encode_kwargs: Dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of ``encode`` for documents (``normalize_embeddings``, ``prompt_name``…)."""
    query_encode_kwargs: Dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments of ``encode`` for queries (default: ``encode_kwargs``)."""
    show_progress: bool = False

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.client is None:
            self.client = SentenceTransformer(self.model_name, **self.model_kwargs)

    def _embed(self, texts: List[str], encode_kwargs: Dict[str, Any]) -> List[List[float]]:
        texts = [t.replace("\n", " ") for t in texts]
        if not texts:
            return []
        return self.client.encode(texts, show_progress_bar=self.show_progress, **encode_kwargs).tolist()

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        return self._embed(list(texts), self.encode_kwargs)

    def embed_query(self, text: str) -> List[float]:
        kwargs = self.query_encode_kwargs if self.query_encode_kwargs else self.encode_kwargs
        return self._embed([text], kwargs)[0]


class RerankRetriever(BaseRetriever):
    """Two-stage retrieval over a :class:`rerank_rs.Index` (or its path): the first stage
    (``search_type`` ``"dense"``, ``"bm25"`` or ``"hybrid"``) returns ``top_k`` passages; with a
    ``reranker`` the best ``top_n`` of them by the cross-encoder are returned, each with
    ``relevance_score`` (and ``relevance_logit``) in its metadata; every document carries
    ``first_stage_rank`` and ``first_stage_score``. ``embedder`` defaults to the index's own.

    Raises ``ValueError`` for ``top_k`` or ``top_n`` < 1 or an unknown ``search_type``.
    """

    index: Any
    """A :class:`rerank_rs.Index` or an index directory."""
    reranker: Any = None
    """A :class:`rerank_rs.CrossEncoder`, :class:`HuggingFaceCrossEncoder`, model name, or None
    (first stage only)."""
    embedder: Any = None
    """A :class:`rerank_rs.SentenceTransformer` or model name; default: the index's embedder."""
    search_type: Literal["dense", "bm25", "hybrid"] = "dense"
    top_k: int = 20
    top_n: int = 3
    exact: bool = False
    """Brute-force dense search instead of HNSW."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def model_post_init(self, __context: Any) -> None:
        for name in ("top_k", "top_n"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not isinstance(self.index, Index):
            self.index = Index(self.index)
        if self.embedder is not None:
            embedder = self.embedder
            if isinstance(embedder, HuggingFaceEmbeddings):
                embedder = embedder.client
            if isinstance(embedder, str):
                embedder = SentenceTransformer(embedder)
            self.index._embedder = embedder
        if isinstance(self.reranker, str):
            self.reranker = CrossEncoder(self.reranker)

    def _get_relevant_documents(
        self, query: str, *, run_manager: Optional[CallbackManagerForRetrieverRun] = None
    ) -> List[Document]:
        hits = self.index.search(
            query,
            top_k=self.top_k,
            retriever=self.search_type,
            reranker=self.reranker,
            top_n=self.top_n,
            exact=self.exact,
        )
        return [Document(page_content=h["text"], metadata=h["metadata"], id=h["id"]) for h in hits]
