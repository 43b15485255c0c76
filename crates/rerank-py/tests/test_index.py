"""rerank_rs.Index: build from texts, reopen by path, search shapes, embedder checks."""

from __future__ import annotations

import pytest

from conftest import model_dir
from rerank_rs import Index, SentenceTransformer
from rerank_rs.langchain import RerankRetriever

TEXTS = [
    "Inflation is robbing families of the gains they thought they had.",
    "We will fight inflation by lowering your costs, not your wages.",
    "Ukraine's people are fighting for their freedom.",
    "The State of the Union is strong because you, the American people, are strong.",
]


@pytest.fixture(scope="module")
def small_index(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "idx"
    metadatas = [{"n": i} for i in range(len(TEXTS))]
    index = Index.from_texts(path, TEXTS, embedder=model_dir("all-MiniLM-L6-v2"), metadatas=metadatas,
                             ids=[f"t{i}" for i in range(len(TEXTS))])
    return path, index


def test_from_texts_search_and_reopen(small_index, sotu_ce):
    path, index = small_index
    assert len(index) == len(TEXTS)
    hits = index.search("How will you fight inflation?", top_k=2)
    assert [set(h) for h in hits] == [{"id", "text", "score", "metadata"}] * 2
    assert {h["id"] for h in hits} == {"t0", "t1"}
    assert hits[0]["metadata"]["n"] in (0, 1) and hits[0]["metadata"]["first_stage_rank"] == 1
    assert hits[0]["score"] >= hits[1]["score"]

    reopened = Index(path)  # loads the embedder the index records
    assert len(reopened) == len(TEXTS) and reopened.embedder_name == index.embedder_name
    again = reopened.search("How will you fight inflation?", top_k=2)
    assert [h["id"] for h in again] == [h["id"] for h in hits]

    reranked = RerankRetriever(index=str(path), reranker=sotu_ce, top_k=4, top_n=2).invoke("How will you fight inflation?")
    assert len(reranked) == 2 and all("relevance_score" in d.metadata for d in reranked)
    assert reranked[0].metadata["relevance_score"] >= reranked[1].metadata["relevance_score"]


def test_adding_the_same_ids_adds_nothing(small_index):
    _, index = small_index
    assert index.add_texts(TEXTS[:2], ids=["t0", "t1"]) == 0
    assert len(index) == len(TEXTS)


def test_another_embedder_is_refused(small_index):
    path, _ = small_index
    with pytest.raises(ValueError, match="was built with embedder"):
        Index.from_texts(path, ["x"], embedder=SentenceTransformer(model_dir("tiny-bert-embedder")))
