"""LangChain rerankers against a running `rerank serve` (see cohere_sdk_check.sh).

Env: RERANK_URL (base URL), RERANK_API_KEY, RERANK_REFERENCE (expected-minilm-l6-sotu-ce.json).
Runs the unmodified LangChain document compressors over the State of the Union passages of the
reference rank case and checks that both return PyTorch's order:
  - langchain_community InfinityRerank -> infinity_client -> POST {base}/rerank (infinity shape);
    it has no URL or key field of its own (extra fields such as `infinity_api_url` are refused,
    and without `client` it talks to http://localhost:7997), and its `client` field must be an
    `infinity_client.Client` (an `AuthenticatedClient` is refused), so it gets a `Client` with
    the base URL and an `Authorization: Bearer KEY` header;
  - langchain_cohere CohereRerank(base_url=...) -> cohere.ClientV2 -> POST {base}/v2/rerank.
"""

import json
import os
import warnings

from infinity_client import Client
from langchain_cohere import CohereRerank
with warnings.catch_warnings():  # langchain-community announces its sunset on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.document_compressors import InfinityRerank
from langchain_core.documents import Document

base = os.environ["RERANK_URL"]
key = os.environ["RERANK_API_KEY"]
with open(os.environ["RERANK_REFERENCE"]) as f:
    reference = json.load(f)
case = reference["models"]["minilm-l6-sotu-ce"]["rank_cases"][0]
query, texts, top_n = case["query"], case["documents"], case["top_n"]
expected = [e["index"] for e in case["expected"]]
expected_scores = [e["score"] for e in case["expected"]]
documents = [Document(page_content=t, metadata={"passage": i}) for i, t in enumerate(texts)]


def check(compressed, what):
    got = [d.metadata["passage"] for d in compressed]
    assert got == expected, f"{what}: order {got}, reference {expected}"
    for d, s in zip(compressed, expected_scores):
        assert d.page_content == texts[d.metadata["passage"]], f"{what}: document text"
        score = d.metadata["relevance_score"]
        assert abs(score - s) <= 1e-4, f"{what}: relevance_score {score} vs reference {s}"
    return got


infinity = InfinityRerank(
    client=Client(base_url=base, headers={"Authorization": f"Bearer {key}"}),
    model="minilm-l6-sotu-ce",
    top_n=top_n,
)
order_infinity = check(infinity.compress_documents(documents, query), "InfinityRerank")
print(f"langchain_community InfinityRerank.compress_documents: ok (top {order_infinity})")

cohere_rerank = CohereRerank(base_url=base, cohere_api_key=key, model="minilm-l6-sotu-ce", top_n=top_n)
order_cohere = check(cohere_rerank.compress_documents(documents, query), "CohereRerank")
print(f"langchain_cohere CohereRerank.compress_documents: ok (top {order_cohere})")

assert order_infinity == order_cohere == expected
print("InfinityRerank and CohereRerank: the same order as each other and as the PyTorch reference")
