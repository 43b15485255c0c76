"""Inputs and outputs in sentence-transformers' forms: one pair or text vs a batch, numpy vs
torch vs lists, and the native float32 buffers."""

from __future__ import annotations

import importlib.util
from typing import Any, List, Sequence, Tuple

import numpy as np


def check_device(device: Any) -> None:
    """Accepts sentence-transformers' ``device`` argument when it asks for the CPU (the engine
    runs on the CPU only)."""
    if device is not None and str(device).split(":")[0] != "cpu":
        raise ValueError(f"rerank_rs runs on the CPU; device={device!r} is not available (use None or 'cpu')")


def is_singular_pair(inputs: Any) -> bool:
    """sentence-transformers' ``CrossEncoder.is_singular_input``: a list/tuple whose first item is
    not itself a list/tuple is one pair (``["q", "d"]``); a 1-D string array is one pair, a 2-D
    one a batch, an empty one an empty batch."""
    if isinstance(inputs, (list, tuple)):
        return len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in ("U", "O"):
        return inputs.size > 0 and inputs.ndim < 2
    return True


def split_pairs(pairs: Sequence[Any]) -> Tuple[List[str], List[str]]:
    """``[(q, d), …]`` → ``([q, …], [d, …])``. Raises ``ValueError`` / ``TypeError`` naming the
    first pair that is not two strings."""
    queries: List[str] = []
    documents: List[str] = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, np.ndarray):
            pair = pair.tolist()
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"input {i} must be a (query, document) pair, got {pair!r}")
        query, document = pair
        if not isinstance(query, str) or not isinstance(document, str):
            raise TypeError(
                f"input {i}: query and document must be str, got "
                f"({type(query).__name__}, {type(document).__name__})"
            )
        queries.append(query)
        documents.append(document)
    return queries, documents


def texts(inputs: Any, what: str = "sentences") -> List[str]:
    """A batch of strings as a list, checked."""
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()
    out = list(inputs)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] must be str, got {type(t).__name__}")
    return out


def matrix(buffer: bytearray, columns: int) -> np.ndarray:
    """A native f32 buffer as a writable ``(n, columns)`` float32 array (no copy)."""
    return np.frombuffer(buffer, dtype=np.float32).reshape(-1, columns)


def _torch(what: str) -> Any:
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"{what} needs torch, which is not installed (pip install torch); "
            "rerank_rs itself does not: use convert_to_numpy=True (the default)"
        )
    import torch

    return torch


def output(values: np.ndarray, *, singular: bool, convert_to_numpy: bool, convert_to_tensor: bool) -> Any:
    """sentence-transformers' return forms: a torch tensor (``convert_to_tensor``), a numpy array
    (``convert_to_numpy``; an empty batch gives ``np.array([])``) or a list of rows (torch tensors
    when torch is installed, numpy values otherwise); one input gives its row alone."""
    n = len(values)
    if convert_to_tensor:
        torch = _torch("convert_to_tensor=True")
        result: Any = torch.from_numpy(values) if n else torch.tensor([])
    elif convert_to_numpy:
        result = values if n else np.array([])
    else:
        if n and importlib.util.find_spec("torch") is not None:
            import torch

            result = list(torch.from_numpy(values))
        else:
            result = list(values)
    return result[0] if singular else result
