"""Third-party clients against a running `rerank serve` (see cohere_sdk_check.sh).

Env: RERANK_URL (base URL), RERANK_API_KEY, RERANK_REFERENCE (expected-minilm-l6-sotu-ce.json).
Uses the unmodified `cohere` SDK (v1 `Client`, v2 `ClientV2`) and a plain TEI-style POST
/rerank with urllib, over State of the Union passages whose PyTorch ranking is the reference.
"""

import json
import os
import sys
import urllib.error
import urllib.request

import cohere

base = os.environ["RERANK_URL"]
key = os.environ["RERANK_API_KEY"]
with open(os.environ["RERANK_REFERENCE"]) as f:
    reference = json.load(f)
case = reference["models"]["minilm-l6-sotu-ce"]["rank_cases"][0]
query, docs, top_n = case["query"], case["documents"], case["top_n"]
expected = [e["index"] for e in case["expected"]]
expected_scores = [e["score"] for e in case["expected"]]


def check_ranking(results, what):
    got = [r.index for r in results]
    assert got == expected, f"{what}: order {got}, reference {expected}"
    for r, s in zip(results, expected_scores):
        assert abs(r.relevance_score - s) <= 1e-4, f"{what}: score {r.relevance_score} vs {s}"


# Cohere v1 client -> POST {base}/v1/rerank
co = cohere.Client(api_key=key, base_url=base)
r = co.rerank(model="minilm-l6-sotu-ce", query=query, documents=docs, top_n=top_n, return_documents=True)
check_ranking(r.results, "v1")
for x in r.results:
    assert x.document is not None and x.document.text == docs[x.index], "v1: document text"
r = co.rerank(model="minilm-l6-sotu-ce", query=query, documents=docs, top_n=top_n, return_documents=False)
check_ranking(r.results, "v1 return_documents=False")
assert all(x.document is None for x in r.results), "v1: no document unless asked"
print(f"cohere v1 Client.rerank: ok (top {expected}, id {r.id})")

# Cohere v2 client -> POST {base}/v2/rerank
co2 = cohere.ClientV2(api_key=key, base_url=base)
r = co2.rerank(model="minilm-l6-sotu-ce", query=query, documents=docs, top_n=top_n)
check_ranking(r.results, "v2")
assert all(getattr(x, "document", None) is None for x in r.results), "v2: no document by default"
print("cohere ClientV2.rerank: ok")

# A wrong key is refused through the SDK.
try:
    cohere.ClientV2(api_key="wrong", base_url=base).rerank(model="m", query=query, documents=docs[:2])
    sys.exit("a wrong API key was accepted")
except cohere.core.api_error.ApiError as e:
    assert e.status_code == 401, e.status_code
print("cohere wrong key: 401 ok")

# Plain TEI-style request.
req = urllib.request.Request(
    base + "/rerank",
    data=json.dumps({"query": query, "texts": docs, "return_text": True, "truncate": True}).encode(),
    headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
)
with urllib.request.urlopen(req) as resp:
    tei = json.load(resp)
assert [x["index"] for x in tei[:top_n]] == expected, tei[:top_n]
assert tei[0]["text"] == docs[expected[0]]
assert all(a["score"] >= b["score"] for a, b in zip(tei, tei[1:])), "sorted by score"
print("TEI-style POST /rerank: ok")
