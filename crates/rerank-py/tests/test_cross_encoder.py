"""rerank_rs.CrossEncoder against sentence-transformers' types and shapes (its own tests in
tests/cross_encoder/test_model.py define them) and against ../shared/reference (PyTorch fp32)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import model_dir
from rerank_rs import CrossEncoder, Identity, Sigmoid

# ../shared/reference/README.md: 1e-5 for F32 checkpoints, 1e-4 for F16/BF16 ones upcast to f32.
TOLERANCE = {"tiny-bert-ce": 1e-5, "tiny-bert-ce-2label": 1e-4, "tiny-xlmr-ce": 1e-4, "minilm-l6-sotu-ce": 1e-4}
CROSS_ENCODERS = ["tiny-bert-ce", "tiny-bert-ce-2label", "tiny-xlmr-ce"]
PAIR = ["A man is eating pasta.", "A man is eating food."]
PAIRS = [PAIR, ["The girl is carrying a baby.", "A man is riding a horse."], ["", "empty query"]]
HAS_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.parametrize("name", ["tiny-bert-ce", "tiny-bert-ce-2label"])
def test_predict_types_and_shapes(load_cross_encoder, name):
    model = load_cross_encoder(name)
    labels = model.num_labels
    assert labels == (1 if name == "tiny-bert-ce" else 2)

    batch = model.predict(PAIRS)
    assert isinstance(batch, np.ndarray) and batch.dtype == np.float32
    assert batch.shape == ((3,) if labels == 1 else (3, labels))

    nested = model.predict([PAIR])
    assert isinstance(nested, np.ndarray)
    assert nested.shape == ((1,) if labels == 1 else (1, labels))

    for single in (model.predict(PAIR), model.predict(tuple(PAIR)), model.predict(np.array(PAIR))):
        if labels == 1:
            assert isinstance(single, np.float32)
        else:
            assert isinstance(single, np.ndarray) and single.shape == (labels,) and single.dtype == np.float32
        np.testing.assert_array_equal(single, batch[0])

    two_d = model.predict(np.array(PAIRS))
    np.testing.assert_array_equal(two_d, batch)

    for empty in (model.predict([]), model.predict(np.array([], dtype=str))):
        assert isinstance(empty, np.ndarray) and empty.size == 0 and empty.shape == (0,)
    assert model.predict([], convert_to_numpy=False) == []

    as_list = model.predict(PAIRS, convert_to_numpy=False)
    assert isinstance(as_list, list) and len(as_list) == 3
    if HAS_TORCH:  # sentence-transformers gives a list of float32 tensors
        import torch

        assert all(isinstance(row, torch.Tensor) and row.dtype == torch.float32 for row in as_list)
    else:  # the same rows as numpy values
        assert all(np.asarray(row).dtype == np.float32 for row in as_list)
    np.testing.assert_array_equal(np.array([np.asarray(r) for r in as_list]), batch)


def test_convert_to_tensor_needs_torch(load_cross_encoder):
    model = load_cross_encoder("tiny-bert-ce")
    if HAS_TORCH:
        import torch

        tensor = model.predict(PAIRS, convert_to_tensor=True)
        assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tuple(tensor.shape) == (3,)
        assert model.predict([], convert_to_tensor=True).numel() == 0
    else:
        with pytest.raises(ImportError, match="convert_to_tensor=True needs torch"):
            model.predict(PAIRS, convert_to_tensor=True)


def test_properties(load_cross_encoder):
    one, two = load_cross_encoder("tiny-bert-ce"), load_cross_encoder("tiny-bert-ce-2label")
    # max lengths as ../shared/reference/README.md states sentence-transformers used them.
    assert (one.max_length, two.max_length) == (512, 128)
    assert one.max_seq_length == 512
    assert one.config["architecture"] == "BertForSequenceClassification"
    assert one.config["precision"] == "f32"
    assert (one.config["stored_dtype"], two.config["stored_dtype"]) == ("F32", "BF16")
    # sentence-transformers' default activations: the stored Sigmoid / Identity of each folder.
    assert isinstance(one.activation_fn, Sigmoid) and isinstance(two.activation_fn, Identity)
    assert CrossEncoder(model_dir("tiny-bert-ce"), max_length=16).max_length == 16


@pytest.mark.parametrize("name", CROSS_ENCODERS)
def test_token_ids_match_reference(load_cross_encoder, expected, name):
    for case in expected[name]["cases"]:
        model = load_cross_encoder(name)
        got = model.tokenize([case["query"], case["document"]], max_length=case.get("max_length"))
        assert got["input_ids"] == [case["input_ids"]], case["name"]
        assert got["token_type_ids"] == [case["token_type_ids"]], case["name"]


def _by_max_length(cases):
    groups = {}
    for case in cases:
        groups.setdefault(case.get("max_length"), []).append(case)
    return groups.items()


@pytest.mark.parametrize("name", CROSS_ENCODERS)
def test_logits_and_scores_match_reference(load_cross_encoder, expected, name):
    tol = TOLERANCE[name]
    for max_length, cases in _by_max_length(expected[name]["cases"]):
        model = load_cross_encoder(name, max_length)
        pairs = [(c["query"], c["document"]) for c in cases]
        logits = np.array([c["logits"] for c in cases], dtype=np.float32)
        scores = np.array([c["score"] for c in cases], dtype=np.float32)
        if model.num_labels == 1:
            np.testing.assert_allclose(model.predict(pairs), scores, atol=tol, rtol=0)
            np.testing.assert_allclose(model.predict(pairs, activation_fn="identity"), logits[:, 0], atol=tol, rtol=0)
        else:
            # The 2-label default activation is Identity: predict returns the raw logits;
            # the reference score is softmax(logits)[1].
            np.testing.assert_allclose(model.predict(pairs), logits, atol=tol, rtol=0)
            soft = model.predict(pairs, apply_softmax=True)
            np.testing.assert_allclose(soft[:, 1], scores, atol=tol, rtol=0)
            np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)


def test_sotu_cross_encoder_matches_reference(sotu_ce, expected_sotu):
    cases = expected_sotu["cases"]
    pairs = [(c["query"], c["document"]) for c in cases]
    got = sotu_ce.tokenize(pairs)
    assert got["input_ids"] == [c["input_ids"] for c in cases]
    np.testing.assert_allclose(sotu_ce.predict(pairs), [c["score"] for c in cases], atol=1e-4, rtol=0)


def test_batch_size_does_not_change_scores(load_cross_encoder, expected):
    model = load_cross_encoder("tiny-bert-ce")
    pairs = [(c["query"], c["document"]) for c in expected["tiny-bert-ce"]["cases"] if "max_length" not in c]
    np.testing.assert_allclose(model.predict(pairs, batch_size=1), model.predict(pairs, batch_size=32), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["tiny-bert-ce", "tiny-xlmr-ce", "minilm-l6-sotu-ce"])
def test_rank_orders_match_reference_rank_cases(load_cross_encoder, expected, expected_sotu, name):
    model = load_cross_encoder(name)
    rank_cases = expected_sotu["rank_cases"] if name == "minilm-l6-sotu-ce" else expected[name]["rank_cases"]
    tol = TOLERANCE[name]
    for case in rank_cases:
        ranked = model.rank(case["query"], case["documents"], top_k=case["top_n"], return_documents=True)
        assert [r["corpus_id"] for r in ranked] == [e["index"] for e in case["expected"]], case["query"]
        for r, e in zip(ranked, case["expected"]):
            assert isinstance(r["corpus_id"], int) and isinstance(r["score"], float)
            assert abs(r["score"] - e["score"]) <= tol
            assert r["text"] == case["documents"][e["index"]]
        everything = model.rank(case["query"], case["documents"])
        assert len(everything) == len(case["documents"]) and "text" not in everything[0]
        assert [r["score"] for r in everything] == sorted((r["score"] for r in everything), reverse=True)


def test_two_label_rank_raises_and_predict_orders_like_reference(load_cross_encoder, expected):
    model = load_cross_encoder("tiny-bert-ce-2label")
    case = expected["tiny-bert-ce-2label"]["rank_cases"][0]
    with pytest.raises(ValueError, match=r"CrossEncoder\.rank\(\) only works for models with num_labels=1"):
        model.rank(case["query"], case["documents"])
    logits = model.predict([(case["query"], d) for d in case["documents"]])
    margin = logits[:, 1] - logits[:, 0]
    order = sorted(range(len(margin)), key=lambda i: (-margin[i], i))[: case["top_n"]]
    assert order == [e["index"] for e in case["expected"]]


def test_activation_overrides(load_cross_encoder, expected):
    cases = expected["tiny-bert-ce"]["cases"][:5]
    pairs = [(c["query"], c["document"]) for c in cases]
    logits = np.array([c["logits"][0] for c in cases], dtype=np.float32)
    raw = CrossEncoder(model_dir("tiny-bert-ce"), activation_fn="identity")
    np.testing.assert_allclose(raw.predict(pairs), logits, atol=1e-5, rtol=0)
    # A plain callable gets the (n, num_labels) float32 logits, as a torch activation gets the tensor.
    doubled = load_cross_encoder("tiny-bert-ce").predict(pairs, activation_fn=lambda x: 2 * x)
    np.testing.assert_allclose(doubled, 2 * logits, atol=2e-5, rtol=0)
    # rank orders by the activated score: a decreasing activation reverses the order.
    docs = [c["document"] for c in cases]
    query = cases[0]["query"]
    up = [r["corpus_id"] for r in raw.rank(query, docs)]
    down = [r["corpus_id"] for r in raw.rank(query, docs, activation_fn=lambda x: -x)]
    assert down == up[::-1]
