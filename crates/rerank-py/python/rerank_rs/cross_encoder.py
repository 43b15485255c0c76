"""``rerank_rs.CrossEncoder``: sentence-transformers' ``CrossEncoder`` API on rerank's engine."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _activation, _convert, _native

PairInput = Sequence[str]


class CrossEncoder:
    """A cross-encoder reranker loaded in-process (BERT / XLM-RoBERTa
    ``*ForSequenceClassification``, 1 or 2 labels), with the types and shapes of
    ``sentence_transformers.CrossEncoder`` (6.x).

    Args:
        model_name_or_path: a model folder, a name found on ``RERANK_MODEL_PATH`` (``:``-separated
            folders; ``BAAI/bge-reranker-base`` also finds ``<dir>/bge-reranker-base``), or a
            Hugging Face hub id (cache in ``HF_HOME``; ``HF_HUB_OFFLINE=1`` uses the cache only).
        max_length: lower max sequence length in tokens (special tokens included); default the
            smallest of ``sentence_bert_config.json``'s ``max_seq_length``, the tokenizer's
            ``model_max_length`` and the position table, as sentence-transformers.
        activation_fn: turns logits into ``predict``/``rank`` scores: ``None`` (the model's
            stored activation, else ``Sigmoid`` for 1 label and ``Identity`` otherwise),
            ``"sigmoid"``, ``"identity"``, a torch module, or a callable on a float32
            ``(n, num_labels)`` array.
        precision: ``"f32"`` (PyTorch fp32 parity, logits within 1e-5) or ``"bf16"`` (bf16
            linear layers with f32 accumulation; faster on AMX / AVX512-BF16 CPUs, logits move by
            a bounded amount, see the project README).
        instruction: the task instruction of an LLM reranker with a prompt template
            (Qwen3-Reranker's ``<Instruct>``), replacing the model's default (``info()``'s
            ``instruction``). A model without a template (BERT-style cross-encoders) raises
            ``ValueError``.

    Raises:
        FileNotFoundError: no such folder, file or model id.
        OSError: unreadable or inconsistent model files.
        ValueError: not a reranker (e.g. a bi-encoder folder), a bad ``max_length``,
            ``precision`` or ``instruction``.
    """

    def __init__(
        self,
        model_name_or_path: Union[str, os.PathLike],
        *,
        max_length: Optional[int] = None,
        activation_fn: Any = None,
        precision: str = "f32",
        device: Optional[str] = None,
        instruction: Optional[str] = None,
    ) -> None:
        if instruction is not None and not isinstance(instruction, str):
            raise TypeError(f"instruction must be str or None, got {type(instruction).__name__}")
        _convert.check_device(device)
        self.model_name_or_path = str(model_name_or_path)
        # The engine refuses an instruction for a model without a prompt template
        # (ValueError "... takes no instruction ...").
        self._model = _native.CrossEncoder(
            self.model_name_or_path, max_length, precision, instruction
        )
        self._info: Dict[str, Any] = json.loads(self._model.info_json())
        self.instruction = self._info.get("instruction")
        num_labels = self.num_labels
        if activation_fn is None:
            path = _activation.stored(self._info, Path(self._info["path"]))
            activation_fn = (
                _activation.from_path(path, num_labels) if path else _activation.default(num_labels)
            )
        else:
            activation_fn = _activation.resolve(activation_fn, num_labels)
        self.activation_fn: Callable[[np.ndarray], Any] = activation_fn

    # ------------------------------------------------------------------ properties
    @property
    def num_labels(self) -> int:
        """Classifier outputs (1 or 2), from the classifier weight's shape."""
        return int(self._info["num_labels"])

    @property
    def max_length(self) -> int:
        """Effective max sequence length in tokens (special tokens included)."""
        return int(self._info["max_length"])

    @property
    def max_seq_length(self) -> int:
        """sentence-transformers 6's name of :attr:`max_length`."""
        return self.max_length

    @property
    def config(self) -> Dict[str, Any]:
        """What was loaded: ``architecture``, ``precision``, ``stored_dtype`` (weights on disk),
        ``compute_dtype``, ``num_labels``, ``max_length``, ``max_positions``, ``hidden_size``,
        ``num_hidden_layers``, ``vocab_size``, ``family``, ``score_activation``,
        ``stored_activation`` and ``path``."""
        return dict(self._info)

    def __repr__(self) -> str:
        return (
            f"CrossEncoder({self.model_name_or_path!r}, architecture={self._info['architecture']!r}, "
            f"num_labels={self.num_labels}, max_length={self.max_length}, "
            f"precision={self._info['precision']!r}, activation_fn={self.activation_fn!r})"
        )

    # ------------------------------------------------------------------ scoring
    def _logits(self, queries: List[str], documents: List[str], batch_size: int) -> np.ndarray:
        if not queries:
            return np.zeros((0, self.num_labels), dtype=np.float32)
        buffer, labels = self._model.predict_logits(queries, documents, batch_size)
        return _convert.matrix(buffer, labels)

    def tokenize(
        self, sentences: Union[Sequence[PairInput], PairInput], max_length: Optional[int] = None
    ) -> Dict[str, List[List[int]]]:
        """Token ids of the pairs exactly as :meth:`predict` feeds them to the model:
        ``{"input_ids": [[…], …], "token_type_ids": [[…], …]}``, one unpadded list per pair
        (``[CLS] q [SEP] d [SEP]``, ``longest_first`` truncation to ``max_length`` or the
        model's). One pair ``[q, d]`` gives lists of one."""
        pairs = [sentences] if _convert.is_singular_pair(sentences) else sentences
        queries, documents = _convert.split_pairs(pairs)
        encoded = self._model.tokenize(queries, documents, max_length)
        return {
            "input_ids": [list(ids) for ids, _ in encoded],
            "token_type_ids": [list(types) for _, types in encoded],
        }

    def predict(
        self,
        sentences: Union[Sequence[PairInput], PairInput, None] = None,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Any = None,
        apply_softmax: Optional[bool] = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        *,
        inputs: Union[Sequence[PairInput], PairInput, None] = None,
    ) -> Any:
        """Scores ``(query, document)`` pairs.

        Args:
            sentences: a list of pairs, or one pair ``[query, document]`` (also ``inputs=``, the
                sentence-transformers 6 name).
            batch_size: pairs per forward pass (pairs are sorted by length first; a pair's score
                does not depend on its batch).
            show_progress_bar: accepted for compatibility; no progress bar is drawn.
            activation_fn: overrides the model's activation for this call (see the class).
            apply_softmax: softmax over the labels after the activation (models with > 1 label).
            convert_to_numpy: return a numpy array (default) rather than a list.
            convert_to_tensor: return a torch tensor (needs torch; ``ImportError`` otherwise).

        Returns:
            float32 ``np.ndarray`` of shape ``(n,)`` for 1 label, ``(n, num_labels)`` otherwise;
            one pair gives an ``np.float32`` (1 label) or a ``(num_labels,)`` array; an empty list
            gives ``np.array([])``.

        Raises:
            ValueError: ``batch_size`` < 1, a malformed pair; TypeError: a non-string text.
        """
        if sentences is None:
            sentences = inputs if inputs is not None else []
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        singular = _convert.is_singular_pair(sentences)
        if singular:
            pairs: Sequence[Any] = [sentences.tolist() if isinstance(sentences, np.ndarray) else sentences]
        else:
            pairs = sentences.tolist() if isinstance(sentences, np.ndarray) else list(sentences)
        queries, documents = _convert.split_pairs(pairs)
        fn = self.activation_fn if activation_fn is None else _activation.resolve(activation_fn, self.num_labels)
        scores = _activation.apply(fn, self._logits(queries, documents, batch_size))
        if self.num_labels == 1 and scores.ndim > 1:
            scores = scores.squeeze(-1)
        if apply_softmax and scores.ndim > 1:
            shifted = scores - scores.max(axis=1, keepdims=True)
            exp = np.exp(shifted)
            scores = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return _convert.output(
            scores, singular=singular, convert_to_numpy=convert_to_numpy, convert_to_tensor=convert_to_tensor
        )

    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: Optional[int] = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        activation_fn: Any = None,
    ) -> List[Dict[str, Union[int, float, str]]]:
        """Scores ``documents`` against ``query`` and sorts them, best first:
        ``[{"corpus_id": i, "score": s, "text": d (with return_documents)}, …]``, at most
        ``top_k`` (``None``: all). ``score`` is the activated score (sigmoid of the logit by
        default); the order is by score, then raw logit (sigmoid saturates at 1.0 in float32),
        then lower index.

        Raises:
            ValueError: a model with more than one label (as sentence-transformers), ``top_k`` < 1,
                ``batch_size`` < 1.
            RuntimeError: a NaN or infinite logit (no order is made up).
        """
        if self.num_labels != 1:
            raise ValueError(
                "CrossEncoder.rank() only works for models with num_labels=1. "
                "Consider using CrossEncoder.predict() with input pairs instead."
            )
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None (all documents), got {top_k!r}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        if not isinstance(query, str):
            raise TypeError(f"query must be str, got {type(query).__name__}")
        docs = _convert.texts(documents, "documents")
        logits = self._logits([query] * len(docs), docs, batch_size)[:, 0]
        bad = np.flatnonzero(~np.isfinite(logits))
        if bad.size:
            raise RuntimeError(f"non-finite logit {logits[bad[0]]} for input {bad[0]}")
        fn = self.activation_fn if activation_fn is None else _activation.resolve(activation_fn, 1)
        scores = _activation.apply(fn, logits[:, None]).reshape(-1)
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], -logits[i], i))
        results: List[Dict[str, Union[int, float, str]]] = []
        for i in order[:top_k]:
            entry: Dict[str, Union[int, float, str]] = {"corpus_id": i, "score": float(scores[i])}
            if return_documents:
                entry["text"] = docs[i]
            results.append(entry)
        return results
