"""LangChain: the classic reranker example with one import changed, the Embeddings drop-in, and
the package's own two-stage retriever.

"About the economy", defined before looking at the results:
- every returned document contains one of ECONOMY_TERMS, and
- at least 2 of the 3 share a whole sentence (40+ characters) with the passages PyTorch's
  sentence-transformers put in its reranked top 3 for the same question and model (the rank case
  of ../shared/reference/expected-minilm-l6-sotu-ce.json, computed over its own chunks of the
  speech). Only 6 of the 135 LangChain chunks share such a sentence at all, so a pipeline that
  returned 3 arbitrary candidates would fail this.
"Relevance order": the documents' reranker scores, recomputed, do not increase.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import SEED_QUESTION, SPEECH, model_dir

from langchain_classic.retrievers import ContextualCompressionRetriever  # noqa: E402
from langchain_classic.retrievers.document_compressors import CrossEncoderReranker  # noqa: E402
from langchain_core.cross_encoders import BaseCrossEncoder  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402
from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: E402

# The one changed import: langchain_community.cross_encoders -> rerank_rs.langchain.
from rerank_rs.langchain import HuggingFaceCrossEncoder, HuggingFaceEmbeddings, RerankRetriever  # noqa: E402
from rerank_rs import Index  # noqa: E402

ECONOMY_TERMS = ("economy", "economic", "jobs", "wages", "prices", "inflation", "tax", "deficit")


def _sentences(text):
    return {s.strip() for s in re.split(r"(?<=[.?!])\s+", text) if len(s.strip()) >= 40}


@pytest.fixture(scope="module")
def pytorch_top3_sentences(expected_sotu):
    case = next(c for c in expected_sotu["rank_cases"] if c["query"] == SEED_QUESTION)
    return set().union(*(_sentences(case["documents"][e["index"]]) for e in case["expected"]))


def _assert_about_the_economy_in_relevance_order(docs, reranker, reference_sentences):
    assert len(docs) == 3
    texts = [d.page_content for d in docs]
    for text in texts:
        assert any(term in text.lower() for term in ECONOMY_TERMS), text
    shared = [t for t in texts if _sentences(t) & reference_sentences]
    assert len(shared) >= 2, texts
    scores = reranker.score([(SEED_QUESTION, t) for t in texts])
    assert scores == sorted(scores, reverse=True), scores


@pytest.fixture(scope="module")
def embeddings():
    return HuggingFaceEmbeddings(model_name="all-MiniLM-L6-v2")


def test_classic_langchain_example_with_one_import_changed(embeddings, pytorch_top3_sentences):
    # The LangChain cross-encoder reranker example, with InMemoryVectorStore for FAISS.
    documents = [Document(page_content=SPEECH.read_text(encoding="utf-8"), metadata={"source": str(SPEECH)})]
    text_splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=100)
    texts = text_splitter.split_documents(documents)
    retriever = InMemoryVectorStore.from_documents(texts, embeddings).as_retriever(search_kwargs={"k": 20})

    model = HuggingFaceCrossEncoder(model_name="minilm-l6-sotu-ce")
    compressor = CrossEncoderReranker(model=model, top_n=3)
    compression_retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=retriever)
    compressed_docs = compression_retriever.invoke("What is the plan for the economy?")

    _assert_about_the_economy_in_relevance_order(compressed_docs, model, pytorch_top3_sentences)
    assert all(d.metadata["source"] == str(SPEECH) for d in compressed_docs)


def test_cross_encoder_score_is_what_huggingface_cross_encoder_returns(expected):
    # HuggingFaceCrossEncoder.score = CrossEncoder.predict(pairs): the sigmoid score for 1 label,
    # the label-1 column of the (Identity-activated) logits for 2 labels.
    one = HuggingFaceCrossEncoder(model_name=model_dir("tiny-bert-ce"))
    two = HuggingFaceCrossEncoder(model_name="tiny-bert-ce-2label")
    assert isinstance(one, BaseCrossEncoder)
    for model, name, tol, column in ((one, "tiny-bert-ce", 1e-5, None), (two, "tiny-bert-ce-2label", 1e-4, 1)):
        cases = [c for c in expected[name]["cases"] if "max_length" not in c]
        scores = model.score([(c["query"], c["document"]) for c in cases])
        assert isinstance(scores, list) and all(isinstance(s, float) for s in scores)
        want = [c["score"] if column is None else c["logits"][column] for c in cases]
        np.testing.assert_allclose(scores, want, atol=tol, rtol=0)
    assert one.score([]) == []
    limited = HuggingFaceCrossEncoder(model_name="tiny-bert-ce", model_kwargs={"max_length": 16, "device": "cpu"})
    assert limited.client.max_length == 16


def test_embeddings_match_reference(embeddings, expected):
    assert isinstance(embeddings, Embeddings)
    cases = expected["all-MiniLM-L6-v2"]["cases"]
    # langchain_huggingface turns newlines into spaces; the reference texts without newlines compare as is.
    plain = [c for c in cases if "\n" not in c["text"]]
    got = embeddings.embed_documents([c["text"] for c in plain])
    assert isinstance(got, list) and isinstance(got[0], list) and isinstance(got[0][0], float)
    np.testing.assert_allclose(got, [c["embedding"] for c in plain], atol=1e-5, rtol=0)
    np.testing.assert_allclose(embeddings.embed_query(plain[1]["text"]), plain[1]["embedding"], atol=1e-5, rtol=0)
    assert embeddings.embed_documents([]) == []


@pytest.fixture(scope="module")
def speech_index(tmp_path_factory):
    return Index.from_files(tmp_path_factory.mktemp("index") / "sotu.idx", [SPEECH], embedder="all-MiniLM-L6-v2")


def test_own_retriever_two_stage(speech_index, pytorch_top3_sentences):
    reranker = HuggingFaceCrossEncoder(model_name="minilm-l6-sotu-ce")
    retriever = RerankRetriever(index=speech_index, reranker=reranker, top_k=20, top_n=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke(SEED_QUESTION)
    _assert_about_the_economy_in_relevance_order(docs, reranker, pytorch_top3_sentences)
    relevance = [d.metadata["relevance_score"] for d in docs]
    assert relevance == sorted(relevance, reverse=True)
    np.testing.assert_allclose(relevance, reranker.score([(SEED_QUESTION, d.page_content) for d in docs]), atol=1e-6)
    for d in docs:
        assert 1 <= d.metadata["first_stage_rank"] <= 20 and d.id.startswith(str(SPEECH))
        assert d.metadata["source"] == str(SPEECH) and {"start", "end", "chunk"} <= d.metadata.keys()


@pytest.mark.parametrize("search_type", ["dense", "bm25", "hybrid"])
def test_own_retriever_first_stages(speech_index, sotu_ce, search_type):
    first = RerankRetriever(index=speech_index, search_type=search_type, top_k=5).invoke(SEED_QUESTION)
    assert len(first) == 5 and [d.metadata["first_stage_rank"] for d in first] == [1, 2, 3, 4, 5]
    assert "relevance_score" not in first[0].metadata
    reranked = RerankRetriever(index=speech_index, reranker=sotu_ce, search_type=search_type, top_k=20, top_n=4)
    docs = reranked.invoke(SEED_QUESTION)
    assert len(docs) == 4
    relevance = [d.metadata["relevance_score"] for d in docs]
    assert relevance == sorted(relevance, reverse=True)
    # The reranked top 4 are the best 4 of the first stage's top 20 by the cross-encoder.
    candidates = RerankRetriever(index=speech_index, search_type=search_type, top_k=20).invoke(SEED_QUESTION)
    ranked = sotu_ce.rank(SEED_QUESTION, [d.page_content for d in candidates], top_k=4)
    assert [d.id for d in docs] == [candidates[r["corpus_id"]].id for r in ranked]


def test_retriever_rejects_bad_top_k_and_top_n(speech_index):
    for field in ("top_k", "top_n"):
        with pytest.raises(ValueError, match=f"{field} must be at least 1"):
            RerankRetriever(index=speech_index, **{field: 0})
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        speech_index.search(SEED_QUESTION, top_k=0)
    with pytest.raises(ValueError, match='retriever must be "dense", "bm25" or "hybrid"'):
        speech_index.search(SEED_QUESTION, retriever="sparse")
