"""rerank_rs.SentenceTransformer against sentence-transformers' shapes and ../shared/reference
(all-MiniLM-L6-v2 and tiny-bert-embedder embeddings from SentenceTransformer.encode, 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import model_dir
from rerank_rs import SentenceTransformer


def test_encode_types_and_shapes(minilm):
    dims = minilm.get_sentence_embedding_dimension()
    assert dims == 384 and minilm.max_seq_length == 256
    one = minilm.encode("What is the plan for the economy?")
    assert isinstance(one, np.ndarray) and one.dtype == np.float32 and one.shape == (dims,)
    batch = minilm.encode(["a", "b", "c"])
    assert batch.dtype == np.float32 and batch.shape == (3, dims)
    assert minilm.encode(("a", "b")).shape == (2, dims)
    empty = minilm.encode([])
    assert isinstance(empty, np.ndarray) and empty.size == 0
    assert minilm.encode([], convert_to_numpy=False) == []


def test_all_minilm_embeddings_match_reference(minilm, expected):
    cases = expected["all-MiniLM-L6-v2"]["cases"]
    texts = [c["text"] for c in cases]
    assert minilm.tokenize(texts)["input_ids"] == [c["input_ids"] for c in cases]
    reference = np.array([c["embedding"] for c in cases], dtype=np.float32)
    np.testing.assert_allclose(minilm.encode(texts), reference, atol=1e-5, rtol=0)
    for text, ref in zip(texts, reference):  # one at a time: same numbers
        np.testing.assert_allclose(minilm.encode(text), ref, atol=1e-5, rtol=0)
    # The model normalises (2_Normalize); normalize_embeddings=True keeps unit norm.
    np.testing.assert_allclose(np.linalg.norm(minilm.encode(texts, normalize_embeddings=True), axis=1), 1.0, atol=1e-5)


def test_prompts_match_reference(expected):
    variant = expected["tiny-bert-embedder@prompt"]
    cases = variant["cases"]
    texts = [c["text"] for c in cases]
    reference = np.array([c["embedding"] for c in cases], dtype=np.float32)
    model = SentenceTransformer(model_dir("tiny-bert-embedder"), prompts={"query": variant["prompt"]})
    np.testing.assert_allclose(model.encode(texts, prompt=variant["prompt"]), reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(model.encode(texts, prompt_name="query"), reference, atol=1e-5, rtol=0)
    # encode_query picks the "query" prompt; encode_document the folder's "document" prompt ("").
    np.testing.assert_allclose(model.encode_query(texts), reference, atol=1e-5, rtol=0)
    plain = np.array([c["embedding"] for c in expected["tiny-bert-embedder"]["cases"]], dtype=np.float32)
    np.testing.assert_allclose(model.encode_document(texts), plain, atol=1e-5, rtol=0)
    assert model.tokenize([variant["prompt"] + texts[0]])["input_ids"] == [cases[0]["input_ids"]]
    with pytest.raises(ValueError, match="Prompt name 'nope' not found"):
        model.encode(texts, prompt_name="nope")
