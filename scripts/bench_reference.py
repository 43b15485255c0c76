#!/usr/bin/env python3
"""Reference speed of a cross-encoder on the same pairs as ``rerank bench``: PyTorch
(sentence-transformers ``CrossEncoder.predict`` fp32, also on length-sorted input, and under
bf16 autocast) and ONNX Runtime fp32 (model exported with ``torch.onnx.export``).

Every variant scores all pairs of ``--pairs`` (JSONL ``{"query", "document"}``, one query =
one ``rank`` call) with tokenization included, ``--threads`` intra-op threads, a warm-up on
the first ``--batch-size`` pairs first (as ``rerank bench`` does), then ``--repeat`` timed runs; it reports the median seconds, pairs/s and ms/query.
Prints one JSON object: ``{"model", "tokens", "variants": {name: {...}}, "versions"}``.

Variants (``--variants``, comma-separated):

* ``st_fp32``: ``CrossEncoder.predict(pairs, batch_size=32)``, 32 being the default batch
  size of sentence-transformers 6.2. Note that ST 6.2 already sorts its input by character
  count internally before batching.
* ``st_fp32_sorted``: the same on input pre-sorted by token count (longest first).
* ``torch_bf16``: ``st_fp32`` inside ``torch.autocast("cpu", dtype=torch.bfloat16)``
  (AMX on cores that have it).
* ``ort_fp32``: the transformers model exported once with ``torch.onnx.export`` (dynamic
  batch and sequence axes, cached as ``--onnx``), run by an ONNX Runtime
  ``InferenceSession`` with ``--threads`` intra-op threads on batches of 32 of the
  token-length-sorted pairs, each padded to its longest, tokenized by the model's tokenizer.

Needs torch, transformers, sentence-transformers, onnx and onnxruntime. The Hugging Face hub
is never contacted.
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
    p.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per forward pass (default 32)")
    p.add_argument("--variants", default="st_fp32,st_fp32_sorted,torch_bf16,ort_fp32")
    p.add_argument("--onnx", default=None,
                   help="exported model path (default: <model>/../<name>.onnx); reused when present")
    return p.parse_args(argv)


def read_pairs(path):
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                pairs.append((obj["query"], obj["document"]))
    if not pairs:
        raise SystemExit(f"{path}: no pairs")
    return pairs


def time_runs(fn, repeat, num_queries, warmup):
    """`warmup()` once, then `repeat` timed calls of `fn`; returns the timing summary and
    the scores of the last call."""
    warmup()
    load_before = os.getloadavg()
    times, cpu = [], []
    scores = None
    for _ in range(repeat):
        c, t = time.process_time(), time.perf_counter()
        scores = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    med = statistics.median(times)
    return {
        "times_seconds": [round(x, 4) for x in times],
        "median_seconds": round(med, 4),
        "ms_per_query_median": round(1000 * med / num_queries, 2),
        "cpu_over_wall": round(sum(cpu) / sum(times), 2),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }, scores


def export_onnx(model, tokenizer, path, with_token_types):
    """torch.onnx.export of the transformers model with dynamic batch/sequence axes."""
    import torch

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])
    enc = tokenizer([("a query", "a document of a few words")] * 2, padding=True,
                    return_tensors="pt")
    args = tuple(enc[n] for n in names)

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *xs):
            return self.inner(**dict(zip(names, xs))).logits

    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    axes["logits"] = {0: "batch"}
    tmp = path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(Wrapped(model).eval(), args, tmp, input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["MKL_NUM_THREADS"] = str(args.threads)

    import numpy as np
    import torch
    import transformers
    import sentence_transformers
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    pairs = read_pairs(args.pairs)
    num_queries = len({q for q, _ in pairs})
    variants = [v for v in args.variants.split(",") if v]
    model = CrossEncoder(args.model, device="cpu", local_files_only=True,
                         model_kwargs={"dtype": torch.float32})
    model.eval()
    tok = model.tokenizer
    max_len = getattr(model, "max_seq_length", None) or model.max_length
    lengths = [len(ids) for ids in tok([q for q, _ in pairs], [d for _, d in pairs],
                                       truncation=True, max_length=max_len)["input_ids"]]
    by_length = sorted(range(len(pairs)), key=lambda i: -lengths[i])
    bs = args.batch_size

    out = {
        "model": os.path.abspath(args.model),
        "pairs_file": os.path.abspath(args.pairs),
        "pairs": len(pairs),
        "queries": num_queries,
        "tokens": sum(lengths),
        "threads": torch.get_num_threads(),
        "batch_size": bs,
        "repeat": args.repeat,
        "variants": {},
    }

    def predict(items):
        return model.predict(items, batch_size=bs, show_progress_bar=False,
                             convert_to_numpy=True)

    for name in variants:
        print(f"  reference {name} ...", file=sys.stderr, flush=True)
        if name == "st_fp32":
            res, scores = time_runs(lambda: predict(pairs), args.repeat, num_queries,
                                    lambda: predict(pairs[:bs]))
        elif name == "st_fp32_sorted":
            sorted_pairs = [pairs[i] for i in by_length]

            def run_sorted():
                s = predict(sorted_pairs)
                back = np.empty_like(s)
                back[by_length] = s
                return back

            res, scores = time_runs(run_sorted, args.repeat, num_queries,
                                    lambda: predict(sorted_pairs[:bs]))
        elif name == "torch_bf16":
            def run_bf16(items=pairs):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return predict(items)

            res, scores = time_runs(run_bf16, args.repeat, num_queries,
                                    lambda: run_bf16(pairs[:bs]))
        elif name == "ort_fp32":
            import onnxruntime as ort

            hf = model[0].auto_model if hasattr(model[0], "auto_model") else model.model
            with_types = "token_type_ids" in tok.model_input_names and \
                getattr(hf.config, "type_vocab_size", 1) > 1
            path = args.onnx or os.path.join(
                os.path.dirname(os.path.abspath(args.model)),
                os.path.basename(os.path.abspath(args.model)) + ".onnx")
            if not os.path.exists(path):
                t0 = time.perf_counter()
                export_onnx(hf, tok, path, with_types)
                print(f"  exported {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            names = [i.name for i in sess.get_inputs()]
            sigmoid = lambda x: 1 / (1 + np.exp(-x))

            def run_ort(order=by_length):
                scores = np.empty(len(pairs), dtype=np.float32)
                for start in range(0, len(order), bs):
                    idx = order[start:start + bs]
                    enc = tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                              padding=True, truncation=True, max_length=max_len,
                              return_tensors="np")
                    logits = sess.run(None, {n: enc[n].astype(np.int64) for n in names})[0]
                    scores[idx] = sigmoid(logits[:, 0]) if logits.shape[1] == 1 else \
                        np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
                return scores

            res, scores = time_runs(run_ort, args.repeat, num_queries,
                                    lambda: run_ort(list(range(min(bs, len(pairs))))))
            res["onnx"] = path
            res["onnxruntime"] = ort.__version__
        else:
            raise SystemExit(f"unknown variant {name!r}")
        res["pairs_per_second"] = round(len(pairs) / res["median_seconds"], 2)
        res["first_scores"] = [float(x) for x in np.asarray(scores, dtype=np.float64)[:5]]
        out["variants"][name] = res

    out["versions"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "numpy": np.__version__,
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
