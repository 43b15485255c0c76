"""Shared fixtures: ../shared (models, reference outputs, data) beside the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# crates/rerank-py/tests -> the repository root is three levels up; ../shared sits beside it.
REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("RERANK_SHARED", REPO.parent / "shared")).resolve()
MODELS = SHARED / "models"
REFERENCE = SHARED / "reference"
SPEECH = SHARED / "data" / "state_of_the_union.txt"
SEED_QUESTION = "What is the plan for the economy?"

if not MODELS.is_dir():
    raise RuntimeError(f"{SHARED} (models, reference outputs) must sit beside the repository, or set RERANK_SHARED")

# Model names such as "minilm-l6-sotu-ce" resolve through RERANK_MODEL_PATH, as in the README.
os.environ["RERANK_MODEL_PATH"] = str(MODELS)


def model_dir(name: str) -> str:
    return str(MODELS / name)


@pytest.fixture(scope="session")
def expected():
    return json.loads((REFERENCE / "expected.json").read_text(encoding="utf-8"))["models"]


@pytest.fixture(scope="session")
def expected_sotu():
    data = json.loads((REFERENCE / "expected-minilm-l6-sotu-ce.json").read_text(encoding="utf-8"))
    return data["models"]["minilm-l6-sotu-ce"]


@pytest.fixture(scope="session")
def load_cross_encoder():
    """CrossEncoder per (folder, max_length), loaded once per session."""
    from rerank_rs import CrossEncoder

    cache = {}

    def load(name: str, max_length=None):
        key = (name, max_length)
        if key not in cache:
            cache[key] = CrossEncoder(model_dir(name), max_length=max_length)
        return cache[key]

    return load


@pytest.fixture(scope="session")
def minilm():
    from rerank_rs import SentenceTransformer

    return SentenceTransformer(model_dir("all-MiniLM-L6-v2"))


@pytest.fixture(scope="session")
def sotu_ce(load_cross_encoder):
    return load_cross_encoder("minilm-l6-sotu-ce")
