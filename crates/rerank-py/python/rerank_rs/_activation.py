"""Score activations of a cross-encoder, as sentence-transformers resolves and applies them.

sentence-transformers' ``CrossEncoder`` turns logits into scores with ``activation_fn``: the one
given to the constructor, else the one stored with the model (``activation_fn`` in
``config_sentence_transformers.json``, ``sentence_transformers.activation_fn`` or the legacy
``sbert_ce_default_activation_function`` in ``config.json``; only ``torch.*`` paths are trusted),
else ``Sigmoid`` for 1 label and ``Identity`` otherwise. The same rules hold here, without
torch: ``Sigmoid`` and ``Identity`` are computed in numpy (float32); any other torch activation
runs through torch when it is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np


class Sigmoid:
    """``1 / (1 + exp(-x))`` in float32, element-wise (``torch.nn.Sigmoid``)."""

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        x = np.asarray(logits, dtype=np.float32)
        with np.errstate(over="ignore"):
            return (np.float32(1.0) / (np.float32(1.0) + np.exp(-x))).astype(np.float32)

    def __repr__(self) -> str:
        return "Sigmoid()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sigmoid)

    __hash__ = object.__hash__


class Identity:
    """The logits unchanged (``torch.nn.Identity``)."""

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, dtype=np.float32)

    def __repr__(self) -> str:
        return "Identity()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Identity)

    __hash__ = object.__hash__


class TorchActivation:
    """A ``torch.*`` activation named by a model's config (e.g. ``torch.nn.modules.activation.Tanh``),
    instantiated on first use; needs torch."""

    def __init__(self, path: str):
        self.path = path
        self._module: Any = None

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        if self._module is None:
            module_name, _, class_name = self.path.rpartition(".")
            self._module = getattr(importlib.import_module(module_name), class_name)()
        return _through_torch(self._module, logits)

    def __repr__(self) -> str:
        return f"TorchActivation({self.path!r})"


_BY_NAME = {"sigmoid": Sigmoid, "identity": Identity, "none": Identity}


def _torch_module_class() -> Optional[type]:
    torch = sys.modules.get("torch")
    return getattr(getattr(torch, "nn", None), "Module", None) if torch is not None else None


def _through_torch(module: Any, logits: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        out = module(torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32)))
    return out.detach().float().cpu().numpy()


def from_path(path: str, num_labels: int) -> Callable[[np.ndarray], np.ndarray]:
    """The activation a stored dotted path names, as sentence-transformers would load it
    (untrusted, non-``torch.`` paths fall back to the default with a warning)."""
    if not path.startswith("torch."):
        warnings.warn(
            f"Activation function path {path!r} is not trusted, using the default activation "
            "function instead.",
            stacklevel=3,
        )
        return default(num_labels)
    name = path.rsplit(".", 1)[-1]
    if name == "Sigmoid":
        return Sigmoid()
    if name == "Identity":
        return Identity()
    if importlib.util.find_spec("torch") is None:
        raise ImportError(
            f"the model's config asks for the activation {path!r}, which needs torch "
            "(pip install torch), or pass activation_fn='sigmoid' / 'identity' / a callable"
        )
    return TorchActivation(path)


def default(num_labels: int) -> Callable[[np.ndarray], np.ndarray]:
    """sentence-transformers' default: ``Sigmoid`` for 1 label, ``Identity`` otherwise."""
    return Sigmoid() if num_labels == 1 else Identity()


def stored(info: dict, model_dir: Path) -> Optional[str]:
    """The activation path stored with the model, if any (the engine reads
    ``config_sentence_transformers.json`` and ``config.json``'s ``sentence_transformers``; the
    legacy ``sbert_ce_default_activation_function`` key is read here)."""
    value = info.get("stored_activation")
    if value == "Sigmoid":
        return "torch.nn.modules.activation.Sigmoid"
    if value == "Identity":
        return "torch.nn.modules.linear.Identity"
    if isinstance(value, dict) and "Other" in value:
        return value["Other"]
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    legacy = config.get("sbert_ce_default_activation_function")
    return legacy if isinstance(legacy, str) else None


def resolve(spec: Any, num_labels: int) -> Callable[[np.ndarray], np.ndarray]:
    """An activation from what a caller passes: ``"sigmoid"``, ``"identity"`` (or ``"none"``),
    a dotted ``torch.*`` path, a torch module, or any callable taking a float32 ``(n, num_labels)``
    array."""
    if isinstance(spec, str):
        if spec.lower() in _BY_NAME:
            return _BY_NAME[spec.lower()]()
        if "." in spec:
            return from_path(spec, num_labels)
        raise ValueError(
            f"activation_fn must be 'sigmoid', 'identity', a dotted torch path or a callable, got {spec!r}"
        )
    if callable(spec):
        return spec
    raise TypeError(f"activation_fn must be a string or a callable, got {type(spec).__name__}")


def apply(fn: Callable[[np.ndarray], Any], logits: np.ndarray) -> np.ndarray:
    """Applies ``fn`` to float32 logits of shape ``(n, num_labels)``; a torch module runs through
    torch, anything else gets the numpy array. Returns float32."""
    module_class = _torch_module_class()
    if module_class is not None and isinstance(fn, module_class):
        return _through_torch(fn, logits)
    return np.asarray(fn(logits), dtype=np.float32)
