#!/usr/bin/env python3
"""Reference speed of sentence-transformers ``CrossEncoder.predict`` (PyTorch fp32, CPU).

Loads a CrossEncoder folder in float32 (the minilm-l6-sotu-ce weights are F16 on
disk and are upcast), does one warm-up ``predict`` over all pairs, then times
``predict(pairs, batch_size=...)`` over all pairs ``--repeat`` times and prints
one JSON object (median seconds, pairs/second, versions, threads, first scores).

Pairs come from a JSONL file of ``{"query": ..., "document": ...}`` lines, e.g.
written by ``scripts/make_bench_pairs.py``.

Example:

    HF_HUB_OFFLINE=1 /work/venv-ref/bin/python scripts/bench_pytorch_predict.py \\
        --model ../shared/models/minilm-l6-sotu-ce --pairs /tmp/bench_pairs_100.jsonl \\
        --batch-size 32 --repeat 5 --threads 2

Needs torch, transformers and sentence-transformers (tested with torch 2.15.0,
transformers 5.24.0, sentence-transformers 6.2.0). The Hugging Face hub is never
contacted (HF_HUB_OFFLINE=1 / TRANSFORMERS_OFFLINE=1 are forced).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local CrossEncoder folder")
    p.add_argument("--pairs", required=True, help="JSONL file with query/document objects")
    p.add_argument("--batch-size", type=int, default=32, help="predict batch size (default 32)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs over all pairs (default 5)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--num-scores", type=int, default=5, help="how many leading scores to print (default 5)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.repeat < 1 or args.batch_size < 1 or args.threads < 1:
        raise SystemExit("--repeat, --batch-size and --threads must be >= 1")

    # Must be set before huggingface_hub / transformers are imported (read at import time).
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # Also cap OpenMP/MKL pools before torch starts them.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import torch
    import transformers
    import sentence_transformers
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(args.threads)
    except RuntimeError:
        pass  # already fixed by an earlier parallel call; irrelevant for this workload

    pairs = []
    with open(args.pairs, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            pairs.append((obj["query"], obj["document"]))
    if not pairs:
        raise SystemExit(f"{args.pairs}: no pairs")

    # sentence-transformers 6.x forwards model_kwargs to
    # AutoModelForSequenceClassification.from_pretrained; transformers 5.x names the
    # argument `dtype` (`torch_dtype` is the deprecated alias).
    t0 = time.perf_counter()
    model = CrossEncoder(
        args.model,
        device="cpu",
        local_files_only=True,
        model_kwargs={"dtype": torch.float32},
    )
    load_s = time.perf_counter() - t0
    param_dtypes = sorted({str(p.dtype) for p in model.parameters()})
    if param_dtypes != ["torch.float32"]:
        raise SystemExit(f"model not loaded as float32: parameter dtypes {param_dtypes}")
    model.eval()

    # `max_length` was renamed `max_seq_length` in sentence-transformers 6.x.
    max_len = getattr(model, "max_seq_length", None) or model.max_length
    tok = model.tokenizer
    enc = tok([q for q, _ in pairs], [d for _, d in pairs], truncation=True, max_length=max_len)
    lengths = [len(ids) for ids in enc["input_ids"]]

    def run():
        return model.predict(pairs, batch_size=args.batch_size, show_progress_bar=False,
                             convert_to_numpy=True)

    warm0 = time.perf_counter()
    warm_scores = run()
    warmup_s = time.perf_counter() - warm0

    # Other processes on the machine distort the timing: record the load average and the
    # process CPU time per run (cpu/wall close to the thread count = the threads really ran).
    load_before = os.getloadavg()
    times, cpu_times = [], []
    scores = None
    for _ in range(args.repeat):
        c = time.process_time()
        t = time.perf_counter()
        scores = run()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    load_after = os.getloadavg()

    # Raw logits for comparison with engines that report logits (not timed).
    logits = model.predict(pairs[: args.num_scores], batch_size=args.batch_size,
                           show_progress_bar=False, activation_fn=torch.nn.Identity())

    median = statistics.median(times)
    k = args.num_scores
    result = {
        "model": os.path.abspath(args.model),
        "pairs_file": os.path.abspath(args.pairs),
        "num_pairs": len(pairs),
        "tokens_per_pair": {"min": min(lengths), "median": statistics.median(lengths),
                            "max": max(lengths), "total": sum(lengths)},
        "max_length": max_len,
        "batch_size": args.batch_size,
        "repeat": args.repeat,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "param_dtype": param_dtypes[0],
        "device": str(model.device),
        "load_seconds": round(load_s, 4),
        "warmup_seconds": round(warmup_s, 4),
        "times_seconds": [round(t, 4) for t in times],
        "median_seconds": round(median, 4),
        "min_seconds": round(min(times), 4),
        "pairs_per_second": round(len(pairs) / median, 2),
        "best_pairs_per_second": round(len(pairs) / min(times), 2),
        "tokens_per_second": round(sum(lengths) / median, 1),
        "ms_per_pair": round(1000.0 * median / len(pairs), 3),
        "cpu_over_wall_per_run": [round(c / w, 2) for c, w in zip(cpu_times, times)],
        "loadavg_1_5_15_before": [round(x, 2) for x in load_before],
        "loadavg_1_5_15_after": [round(x, 2) for x in load_after],
        "max_abs_diff_warmup_vs_timed": float(np.max(np.abs(np.asarray(warm_scores) - np.asarray(scores)))),
        "activation_fn": type(model.activation_fn).__name__,
        f"first_{k}_scores": [float(x) for x in np.asarray(scores)[:k]],
        f"first_{k}_logits": [float(x) for x in np.asarray(logits).reshape(-1)[:k]],
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "numpy": np.__version__,
        },
        "torch_config": {
            "mkldnn": torch.backends.mkldnn.is_available(),
            "mkl": torch.backends.mkl.is_available(),
            "openmp": torch.backends.openmp.is_available(),
        },
        "cpu": platform.processor() or platform.machine(),
        "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE"),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
