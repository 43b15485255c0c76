"""``rerank_rs.Index``: a persistent rerank index (the one ``rerank index`` builds) and two-stage
search over it, in-process."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _native
from .cross_encoder import CrossEncoder
from .sentence_transformer import SentenceTransformer

PathLike = Union[str, os.PathLike]


def _native_embedder(embedder: Union[SentenceTransformer, str]) -> Any:
    if isinstance(embedder, str):
        embedder = SentenceTransformer(embedder)
    if not isinstance(embedder, SentenceTransformer):
        raise TypeError(f"embedder must be a rerank_rs.SentenceTransformer or a model name, got {type(embedder).__name__}")
    return embedder._model


def _native_reranker(reranker: Union[CrossEncoder, str, None]) -> Any:
    if reranker is None:
        return None
    if isinstance(reranker, str):
        reranker = CrossEncoder(reranker)
    client = getattr(reranker, "client", None)  # rerank_rs.langchain.HuggingFaceCrossEncoder
    if isinstance(client, CrossEncoder):
        reranker = client
    if not isinstance(reranker, CrossEncoder):
        raise TypeError(f"reranker must be a rerank_rs.CrossEncoder or a model name, got {type(reranker).__name__}")
    return reranker._model


class Index:
    """An index directory: passages, their bi-encoder vectors, an HNSW graph and a BM25 index
    (the layout of ``rerank index``; see the project README). Open one with ``Index(path)``;
    build one with :meth:`from_files` or :meth:`from_texts`.

    Raises ``FileNotFoundError`` when ``path`` holds no index, ``OSError`` when it is corrupt.
    """

    def __init__(self, path: PathLike) -> None:
        self._index = _native.Index(os.fspath(path))
        self._embedder: Optional[SentenceTransformer] = None

    @classmethod
    def _create(cls, path: PathLike, embedder: Union[SentenceTransformer, str]) -> "Index":
        if isinstance(embedder, str):
            embedder = SentenceTransformer(embedder)
        self = cls.__new__(cls)
        self._index = _native.Index.open_or_create(os.fspath(path), _native_embedder(embedder))
        self._embedder = embedder
        return self

    @classmethod
    def from_files(
        cls,
        path: PathLike,
        files: Sequence[PathLike],
        embedder: Union[SentenceTransformer, str],
        chunk_size: int = 200,
        chunk_overlap: int = 30,
    ) -> "Index":
        """Creates (or adds to) the index at ``path`` from ``.txt`` / ``.md`` / ``.jsonl`` files or
        folders, split into passages of ``chunk_size`` embedder tokens (``chunk_overlap`` shared),
        as ``rerank index`` does. Passage ids are ``<file>#<chunk>``; metadata holds ``source``,
        ``chunk``, ``start`` and ``end`` (byte offsets)."""
        index = cls._create(path, embedder)
        index.add_files(files, chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        return index

    @classmethod
    def from_texts(
        cls,
        path: PathLike,
        texts: Sequence[str],
        embedder: Union[SentenceTransformer, str],
        metadatas: Optional[Sequence[Dict[str, Any]]] = None,
        ids: Optional[Sequence[str]] = None,
    ) -> "Index":
        """Creates (or adds to) the index at ``path`` with one passage per text (no chunking)."""
        index = cls._create(path, embedder)
        index.add_texts(texts, metadatas=metadatas, ids=ids)
        return index

    @property
    def path(self) -> str:
        return os.fspath(self._index.path)

    @property
    def embedder_name(self) -> str:
        """The folder of the bi-encoder that built the index."""
        return self._index.embedder_name

    @property
    def embedder(self) -> SentenceTransformer:
        """The bi-encoder that built the index (loaded on first use)."""
        if self._embedder is None:
            self._embedder = SentenceTransformer(self.embedder_name)
        return self._embedder

    def __len__(self) -> int:
        return len(self._index)

    def add_files(self, files: Sequence[PathLike], chunk_size: int = 200, chunk_overlap: int = 30) -> int:
        """Adds the passages of ``files`` the index lacks; returns how many were added."""
        _, added, _ = self._index.add_files(
            [os.fspath(f) for f in files], _native_embedder(self.embedder), chunk_size, chunk_overlap
        )
        return added

    def add_texts(
        self,
        texts: Sequence[str],
        metadatas: Optional[Sequence[Dict[str, Any]]] = None,
        ids: Optional[Sequence[str]] = None,
    ) -> int:
        """Adds one passage per text (ids default to new UUIDs; an id already present is skipped);
        returns how many were added."""
        texts = list(texts)
        ids = [str(uuid.uuid4()) for _ in texts] if ids is None else [str(i) for i in ids]
        metadatas = [{} for _ in texts] if metadatas is None else list(metadatas)
        _, added, _ = self._index.add_passages(
            ids, texts, [json.dumps(m) for m in metadatas], _native_embedder(self.embedder)
        )
        return added

    def search(
        self,
        query: str,
        top_k: int = 20,
        retriever: str = "dense",
        reranker: Union[CrossEncoder, str, None] = None,
        top_n: int = 3,
        exact: bool = False,
    ) -> List[Dict[str, Any]]:
        """First stage (``retriever``: ``"dense"``, ``"bm25"`` or ``"hybrid"``) top ``top_k``,
        then, with a ``reranker``, the best ``top_n`` of those by the cross-encoder. Returns
        ``[{"id", "text", "score", "metadata"}]`` best first; ``score`` is the last stage's
        (cosine, BM25, RRF, or the reranker's ``relevance_score``); metadata carries
        ``first_stage_rank`` and ``first_stage_score``, and after reranking ``relevance_score``
        and ``relevance_logit``. Raises ``ValueError`` for ``top_k`` / ``top_n`` < 1."""
        embedder = _native_embedder(self.embedder) if retriever in ("dense", "hybrid") else None
        docs = self._index.search(query, top_k, retriever, embedder, _native_reranker(reranker), top_n, exact)
        return [
            {"id": id_, "text": text, "score": score, "metadata": json.loads(metadata)}
            for id_, text, metadata, score in docs
        ]
