#!/usr/bin/env python3
"""Speed of the Python package against PyTorch, on the same pairs in one run (a benchmark, not a
test: nothing here asserts a speed).

1. ``predict`` pairs/s: ``rerank_rs.CrossEncoder.predict`` (f32, and bf16) vs
   ``sentence_transformers.CrossEncoder.predict`` (PyTorch fp32, batch 32), and the CLI's
   ``rerank bench`` (``rank`` in Rust, tokenization included) on the same pairs file.
2. The seed's ``ContextualCompressionRetriever(...).invoke("What is the plan for the economy?")``
   latency with ``langchain_community``'s ``HuggingFaceCrossEncoder`` vs ``rerank_rs.langchain``'s
   (the same first stage for both: ``InMemoryVectorStore`` over the 2022 speech split by
   ``RecursiveCharacterTextSplitter(500, 100)``, top 20), and the package's ``RerankRetriever``
   (the whole two-stage pipeline in Rust) for comparison.

Needs torch, sentence-transformers, langchain-community, langchain-classic and an installed
``rerank_rs`` (a release build: ``pip install ./crates/rerank-py``). Threads: ``--threads`` for
every engine (``torch.set_num_threads``, ``RAYON_NUM_THREADS``, set before the engines start).
Prints a table and, with ``--json FILE``, writes every figure with the load average.

    python crates/rerank-py/bench/bench_predict.py --rerank target/release/rerank
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared"
SEED_QUESTION = "What is the plan for the economy?"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(SHARED / "models" / "minilm-l6-sotu-ce"), help="cross-encoder folder")
    p.add_argument("--embedder", default=str(SHARED / "models" / "all-MiniLM-L6-v2"), help="bi-encoder folder")
    p.add_argument("--pairs", default=None, help="JSONL {query, document}; default: 1 query x 100 passages of "
                   "64-256 tokens written by scripts/make_bench_pairs.py (as scripts/bench.sh)")
    p.add_argument("--rerank", default=str(REPO / "target" / "release" / "rerank"), help="a release rerank binary")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--invoke-repeat", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="write the figures here")
    return p.parse_args()


def loadavg():
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def timed(fn, repeat, warmup=1):
    """Median wall seconds of `repeat` calls after `warmup`, and process CPU / wall over them."""
    for _ in range(warmup):
        fn()
    times = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    cpu_over_wall = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    return statistics.median(times), times, cpu_over_wall


def bench_pairs(path, model):
    if path is None:
        path = REPO / "target" / "bench" / "pairs-minilm.jsonl"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [sys.executable, str(REPO / "scripts" / "make_bench_pairs.py"), "--text",
                 str(REPO / "examples" / "state_of_the_union.txt"), "--tokenizer", str(Path(model) / "tokenizer.json"),
                 "-n", "100", "--min-tokens", "64", "--max-tokens", "256", "--tolerance", "4", "--seed", "0",
                 "--out", str(path)],
                check=True,
            )
    lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return str(path), [(x["query"], x["document"]) for x in lines]


def main():
    args = parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["RERANK_MODEL_PATH"] = str(SHARED / "models")
    import numpy as np
    import torch
    from sentence_transformers import CrossEncoder as TorchCrossEncoder

    import rerank_rs

    torch.set_num_threads(args.threads)
    pairs_file, pairs = bench_pairs(args.pairs, args.model)
    results = {"pairs_file": pairs_file, "pairs": len(pairs), "threads": args.threads, "repeat": args.repeat,
               "loadavg_before": loadavg(), "cpu": _cpu_name(), "rerank_rs_version": rerank_rs.__version__}

    # ---------------------------------------------------------------- 1. predict pairs/s
    ours = rerank_rs.CrossEncoder(args.model)
    ours_bf16 = rerank_rs.CrossEncoder(args.model, precision="bf16")
    theirs = TorchCrossEncoder(args.model, model_kwargs={"dtype": torch.float32})
    a, b = ours.predict(pairs), theirs.predict(pairs)
    results["max_abs_score_diff_vs_pytorch"] = float(np.max(np.abs(a - b)))
    predict = {}
    for name, fn in (
        ("rerank_rs.CrossEncoder.predict (f32)", lambda: ours.predict(pairs)),
        ("rerank_rs.CrossEncoder.predict (bf16)", lambda: ours_bf16.predict(pairs)),
        ("sentence_transformers.CrossEncoder.predict (PyTorch fp32)", lambda: theirs.predict(pairs)),
    ):
        median, times, cpu_over_wall = timed(fn, args.repeat)
        predict[name] = {"pairs_per_second": len(pairs) / median, "median_seconds": median, "times_seconds": times,
                         "cpu_over_wall": cpu_over_wall, "loadavg": loadavg()}
    cli = subprocess.run([args.rerank, "bench", "--reranker", args.model, "--pairs", pairs_file, "--repeat",
                          str(args.repeat), "--json"], check=True, capture_output=True, text=True,
                         env={**os.environ, "RAYON_NUM_THREADS": str(args.threads)})
    report = json.loads(cli.stdout)
    predict["rerank bench (CLI, rank)"] = {"pairs_per_second": report["pairs_per_second"],
                                           "median_seconds": report["median_seconds"],
                                           "times_seconds": report["times_seconds"],
                                           "cpu_over_wall": report.get("cpu_over_wall"),
                                           "loadavg": report.get("loadavg_after")}
    results["predict"] = predict

    # ---------------------------------------------------------------- 2. the seed's invoke
    from langchain_classic.retrievers import ContextualCompressionRetriever
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder as TorchHuggingFaceCrossEncoder
    from langchain_core.documents import Document
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from rerank_rs.langchain import HuggingFaceCrossEncoder, HuggingFaceEmbeddings, RerankRetriever

    speech = SHARED / "data" / "state_of_the_union.txt"
    documents = [Document(page_content=speech.read_text(encoding="utf-8"), metadata={"source": str(speech)})]
    texts = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=100).split_documents(documents)
    retriever = InMemoryVectorStore.from_documents(texts, HuggingFaceEmbeddings(model_name=args.embedder)).as_retriever(
        search_kwargs={"k": 20})
    pipelines = {
        "invoke, langchain_community HuggingFaceCrossEncoder (PyTorch fp32)": ContextualCompressionRetriever(
            base_compressor=CrossEncoderReranker(model=TorchHuggingFaceCrossEncoder(
                model_name=args.model, model_kwargs={"model_kwargs": {"dtype": torch.float32}}), top_n=3),
            base_retriever=retriever),
        "invoke, rerank_rs.langchain HuggingFaceCrossEncoder": ContextualCompressionRetriever(
            base_compressor=CrossEncoderReranker(model=HuggingFaceCrossEncoder(model_name=args.model), top_n=3),
            base_retriever=retriever),
    }
    with tempfile.TemporaryDirectory() as tmp:
        index = rerank_rs.Index.from_files(Path(tmp) / "sotu.idx", [speech], embedder=args.embedder)
        pipelines["invoke, rerank_rs.langchain RerankRetriever (all in Rust, own chunks)"] = RerankRetriever(
            index=index, reranker=ours, top_k=20, top_n=3)
        invoke = {}
        tops = {}
        for name, pipeline in pipelines.items():
            tops[name] = [d.page_content for d in pipeline.invoke(SEED_QUESTION)]
            median, times, cpu_over_wall = timed(lambda: pipeline.invoke(SEED_QUESTION), args.invoke_repeat)
            invoke[name] = {"ms_median": 1e3 * median, "ms_times": [1e3 * t for t in times],
                            "cpu_over_wall": cpu_over_wall, "loadavg": loadavg()}
    names = list(pipelines)
    results["invoke"] = invoke
    results["invoke_same_top3"] = tops[names[0]] == tops[names[1]]
    results["loadavg_after"] = loadavg()

    # ---------------------------------------------------------------- report
    pytorch = predict["sentence_transformers.CrossEncoder.predict (PyTorch fp32)"]["pairs_per_second"]
    cli_pps = predict["rerank bench (CLI, rank)"]["pairs_per_second"]
    print(f"{len(pairs)} pairs from {pairs_file}, {args.threads} threads, {args.repeat} repeats (median), "
          f"CPU {results['cpu']}, load {results['loadavg_before']} -> {results['loadavg_after']}")
    print(f"max |score rerank_rs - PyTorch| = {results['max_abs_score_diff_vs_pytorch']:.2e}")
    print(f"{'predict':64} {'pairs/s':>8} {'÷ PyTorch':>10} {'÷ CLI':>7} {'CPU/wall':>9}")
    for name, r in predict.items():
        cpw = r["cpu_over_wall"]
        print(f"{name:64} {r['pairs_per_second']:8.1f} {r['pairs_per_second'] / pytorch:9.2f}x "
              f"{r['pairs_per_second'] / cli_pps:6.2f}x {cpw if cpw is None else round(cpw, 2)!s:>9}")
    base = invoke[names[0]]["ms_median"]
    print(f"{'seed invoke (' + SEED_QUESTION + ')':64} {'ms':>8} {'speed-up':>10}")
    for name, r in invoke.items():
        print(f"{name:64} {r['ms_median']:8.1f} {base / r['ms_median']:9.2f}x")
    print(f"same top 3 with both HuggingFaceCrossEncoder classes: {results['invoke_same_top3']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def _cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
