"""Every engine error arrives as a Python exception with the engine's message: FileNotFoundError /
OSError for model files, ValueError for bad arguments and the wrong kind of model."""

from __future__ import annotations

import shutil

import pytest

from conftest import model_dir
from rerank_rs import CrossEncoder, Index, SentenceTransformer


def test_missing_folder_is_file_not_found(tmp_path):
    missing = tmp_path / "no-such-model"
    for cls in (CrossEncoder, SentenceTransformer):
        with pytest.raises(FileNotFoundError, match="model not found") as err:
            cls(str(missing))
        assert str(missing) in str(err.value)


def test_missing_weights_is_file_not_found(tmp_path):
    folder = tmp_path / "no-weights"
    shutil.copytree(model_dir("tiny-bert-ce"), folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError):
        CrossEncoder(str(folder))


def test_corrupt_weights_are_os_error(tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(model_dir("tiny-bert-ce"), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(OSError) as err:
        CrossEncoder(str(folder))
    assert not isinstance(err.value, FileNotFoundError)
    assert "model.safetensors" in str(err.value)


def test_bi_encoder_as_reranker_is_value_error():
    with pytest.raises(ValueError, match="missing tensor") as err:
        CrossEncoder(model_dir("all-MiniLM-L6-v2"))
    assert "all-MiniLM-L6-v2" in str(err.value)


def test_top_k_zero_is_value_error(load_cross_encoder):
    model = load_cross_encoder("tiny-bert-ce")
    for top_k in (0, -1):
        with pytest.raises(ValueError, match="top_k must be a positive integer"):
            model.rank("q", ["a", "b"], top_k=top_k)


def test_bad_arguments_are_value_errors(load_cross_encoder):
    model = load_cross_encoder("tiny-bert-ce")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0."):
        model.predict([["q", "d"]], batch_size=0)
    with pytest.raises(ValueError, match="exceeds the model's 512 positions"):
        CrossEncoder(model_dir("tiny-bert-ce"), max_length=100000)
    with pytest.raises(ValueError, match="leaves no room for text"):
        CrossEncoder(model_dir("tiny-bert-ce"), max_length=3)
    with pytest.raises(ValueError, match='precision must be "f32" or "bf16"'):
        CrossEncoder(model_dir("tiny-bert-ce"), precision="fp8")
    with pytest.raises(ValueError, match="takes no instruction"):
        CrossEncoder(model_dir("tiny-bert-ce"), instruction="Judge relevance")
    with pytest.raises(ValueError, match="runs on the CPU"):
        CrossEncoder(model_dir("tiny-bert-ce"), device="cuda")
    with pytest.raises(ValueError, match="must be a \\(query, document\\) pair"):
        model.predict([["q", "d", "extra"]])
    with pytest.raises(TypeError, match="must be str"):
        model.predict([["q", 3]])


def test_missing_index_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no index here"):
        Index(tmp_path)
