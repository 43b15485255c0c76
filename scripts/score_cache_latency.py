#!/usr/bin/env python3
"""Latency of a repeated rerank request with the score cache of `rerank serve` (issue 15
item 3). Standard library only.

For each of --queries SOTU-ICT queries, sends the same Cohere `/v2/rerank` request of the
first --documents passages of the corpus twice: the first is computed (cache misses), the
second is answered from the cache (hits). Prints the median and max latency of each, checks
that both answers are identical, and prints the server's cache counters from `/metrics`.

    ./target/release/rerank serve --reranker ../shared/models/minilm-l6-sotu-ce --port 3000 &
    python3 scripts/score_cache_latency.py --url http://127.0.0.1:3000
"""

import argparse
import json
import statistics
import time
import urllib.request
from pathlib import Path


def post(url, body, key):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.load(r)
    return out, (time.perf_counter() - start) * 1000


def main():
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:3000")
    p.add_argument("--api-key", default=None)
    p.add_argument("--data", default=str(here.parent.parent / "shared/data/sotu-ict"))
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--documents", type=int, default=100)
    a = p.parse_args()
    data = Path(a.data)
    with open(data / "corpus.jsonl") as f:
        docs = [json.loads(line)["text"] for _, line in zip(range(a.documents), f)]
    with open(data / "queries.jsonl") as f:
        queries = [json.loads(line)["text"] for _, line in zip(range(a.queries), f)]
    miss, hit = [], []
    for q in queries:
        body = {"query": q, "documents": docs, "top_n": 10}
        first, t1 = post(a.url + "/v2/rerank", body, a.api_key)
        again, t2 = post(a.url + "/v2/rerank", body, a.api_key)
        first.pop("id", None)
        again.pop("id", None)
        if first != again:
            raise SystemExit(f"FAIL: the cached answer differs for {q!r}")
        miss.append(t1)
        hit.append(t2)
    req = urllib.request.Request(a.url + "/metrics")
    if a.api_key:
        req.add_header("Authorization", f"Bearer {a.api_key}")
    with urllib.request.urlopen(req) as r:
        metrics = [l for l in r.read().decode().splitlines() if l.startswith("rerank_score_cache_")]
    print(f"{len(queries)} queries x {len(docs)} documents, /v2/rerank, each request sent twice")
    print(f"computed (misses): median {statistics.median(miss):.1f} ms, max {max(miss):.1f} ms")
    print(f"cached (hits):     median {statistics.median(hit):.1f} ms, max {max(hit):.1f} ms")
    print("answers identical: yes")
    print("\n".join(metrics))


if __name__ == "__main__":
    main()
