"""``rerank_rs.SentenceTransformer``: sentence-transformers' bi-encoder ``encode`` API on rerank's
engine."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _convert, _native


def _folder_prompts(model_dir: Path) -> Dict[str, Any]:
    try:
        return json.loads((model_dir / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise OSError(f"cannot read {model_dir / 'config_sentence_transformers.json'}: {e}") from e


class SentenceTransformer:
    """A sentence-transformers bi-encoder loaded in-process (BERT / XLM-R body; mean, CLS, max or
    last-token pooling; Normalize), with the shapes of ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: a folder, a name on ``RERANK_MODEL_PATH`` or a hub id (as
            :class:`rerank_rs.CrossEncoder`).
        max_length: lower max sequence length in tokens (default ``max_seq_length`` of
            ``sentence_bert_config.json``, bounded by the tokenizer and position table).
        precision: ``"f32"`` (PyTorch parity, 1e-5) or ``"bf16"``.
        prompts: extra or overriding prompts, merged over the folder's
            ``config_sentence_transformers.json`` ``prompts``.
        default_prompt_name: the prompt :meth:`encode` uses when given none (default the
            folder's ``default_prompt_name``).

    Raises:
        FileNotFoundError, OSError, ValueError: as :class:`rerank_rs.CrossEncoder`; ValueError
        also for a ``default_prompt_name`` that is not a prompt.
    """

    def __init__(
        self,
        model_name_or_path: Union[str, os.PathLike],
        *,
        max_length: Optional[int] = None,
        precision: str = "f32",
        device: Optional[str] = None,
        prompts: Optional[Dict[str, str]] = None,
        default_prompt_name: Optional[str] = None,
    ) -> None:
        _convert.check_device(device)
        self.model_name_or_path = str(model_name_or_path)
        self._model = _native.Embedder(self.model_name_or_path, max_length, precision)
        self._info: Dict[str, Any] = json.loads(self._model.info_json())
        folder = _folder_prompts(Path(self._info["path"]))
        self.prompts: Dict[str, str] = {**(folder.get("prompts") or {}), **(prompts or {})}
        self.default_prompt_name: Optional[str] = (
            default_prompt_name if default_prompt_name is not None else folder.get("default_prompt_name")
        )
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(
                f"Default prompt name '{self.default_prompt_name}' not found in the configured "
                f"prompts dictionary with keys {list(self.prompts.keys())!r}."
            )

    @property
    def max_seq_length(self) -> int:
        """Max sequence length in tokens (special tokens included)."""
        return int(self._info["max_length"])

    def get_max_seq_length(self) -> int:
        return self.max_seq_length

    def get_sentence_embedding_dimension(self) -> int:
        """Embedding dimensions."""
        return int(self._info["dims"])

    @property
    def config(self) -> Dict[str, Any]:
        """What was loaded: ``architecture``, ``dims``, ``max_length``, ``pooling``,
        ``include_prompt``, ``normalize``, ``query_prompt``, ``document_prompt``,
        ``stored_dtype``, ``precision`` and ``path``."""
        return dict(self._info)

    def __repr__(self) -> str:
        return (
            f"SentenceTransformer({self.model_name_or_path!r}, dims={self.get_sentence_embedding_dimension()}, "
            f"max_seq_length={self.max_seq_length}, pooling={self._info['pooling']!r}, "
            f"normalize={self._info['normalize']}, precision={self._info['precision']!r})"
        )

    def _resolve_prompt(self, prompt: Optional[str], prompt_name: Optional[str]) -> Optional[str]:
        if prompt is None:
            if prompt_name is not None:
                if prompt_name not in self.prompts:
                    raise ValueError(
                        f"Prompt name '{prompt_name}' not found in the configured prompts "
                        f"dictionary with keys {list(self.prompts.keys())!r}."
                    )
                return self.prompts[prompt_name]
            if self.default_prompt_name is not None:
                return self.prompts.get(self.default_prompt_name)
        return prompt

    def tokenize(self, sentences: Union[str, Sequence[str]]) -> Dict[str, List[List[int]]]:
        """Token ids of each text as :meth:`encode` feeds them (special tokens included,
        truncated), unpadded: ``{"input_ids": [[…], …]}``; a single string gives a list of one."""
        batch = [sentences] if isinstance(sentences, str) else _convert.texts(sentences)
        return {"input_ids": [list(ids) for ids in self._model.tokenize(batch)]}

    def encode(
        self,
        sentences: Union[str, Sequence[str], None] = None,
        prompt_name: Optional[str] = None,
        prompt: Optional[str] = None,
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: Optional[bool] = None,
        *,
        inputs: Union[str, Sequence[str], None] = None,
    ) -> Any:
        """Embeds texts.

        Args:
            sentences: a string or a list of strings (also ``inputs=``).
            prompt_name: a key of :attr:`prompts` whose prompt prefixes every text.
            prompt: a prompt string (wins over ``prompt_name``).
            batch_size: checked (> 0) for compatibility; the engine batches by length with its
                own batch of 32 (the result does not depend on batching).
            show_progress_bar: accepted; no progress bar is drawn.
            convert_to_numpy / convert_to_tensor: as sentence-transformers (a tensor needs torch).
            normalize_embeddings: ``True`` L2-normalises the result; ``None`` / ``False`` keep the
                model's own output (normalised when the folder has a Normalize module, as
                sentence-transformers, where ``False`` does not undo that module either).

        Returns:
            float32 ``(n, dims)`` array; a single string gives ``(dims,)``; an empty list
            ``np.array([])``.
        """
        if sentences is None:
            sentences = inputs if inputs is not None else []
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        singular = isinstance(sentences, str)
        batch = [sentences] if singular else _convert.texts(sentences)
        resolved = self._resolve_prompt(prompt, prompt_name) or ""
        dims = self.get_sentence_embedding_dimension()
        if batch:
            buffer, dims = self._model.embed(batch, resolved)
            embeddings = _convert.matrix(buffer, dims)
        else:
            embeddings = np.zeros((0, dims), dtype=np.float32)
        if normalize_embeddings:
            norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
            embeddings = (embeddings / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
        return _convert.output(
            embeddings, singular=singular, convert_to_numpy=convert_to_numpy, convert_to_tensor=convert_to_tensor
        )

    def encode_query(self, sentences: Union[str, Sequence[str], None] = None, prompt_name: Optional[str] = None,
                     prompt: Optional[str] = None, **kwargs: Any) -> Any:
        """:meth:`encode` with the ``"query"`` prompt when the model has one and none is given."""
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)

    def encode_document(self, sentences: Union[str, Sequence[str], None] = None, prompt_name: Optional[str] = None,
                        prompt: Optional[str] = None, **kwargs: Any) -> Any:
        """:meth:`encode` with the first of the ``"document"``, ``"passage"``, ``"corpus"`` prompts
        the model has, when none is given."""
        if prompt_name is None and prompt is None:
            prompt_name = next((p for p in ("document", "passage", "corpus") if p in self.prompts), None)
        return self.encode(sentences, prompt_name=prompt_name, prompt=prompt, **kwargs)
