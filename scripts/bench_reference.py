#!/usr/bin/env python3
"""Reference speed and accuracy of a cross-encoder on the same pairs as ``rerank bench``:
PyTorch (sentence-transformers ``CrossEncoder.predict`` fp32, also on length-sorted input, and
under bf16 autocast), ONNX Runtime (fp32 and dynamic int8) and OpenVINO (f32, its default
inference precision, and NNCF static int8), all from one ``torch.onnx.export`` of the model.

Every variant scores all pairs of ``--pairs`` (JSONL ``{"query", "document"}``, one query =
one ``rank`` call) with tokenization included, ``--threads`` intra-op threads, a warm-up on
the first ``--batch-size`` pairs first (as ``rerank bench`` does), then ``--repeat`` timed
runs; it reports the median seconds, pairs/s and ms/query.

Accuracy: the PyTorch fp32 logits of every pair are computed once, untimed
(``CrossEncoder.predict`` without activation, batches of ``--batch-size``); every variant, and
every ``--compare NAME=FILE`` (the JSONL of ``rerank score --json``: rerank f32, bf16, int8),
gets the max |logit − PyTorch fp32 logit| over all pairs and labels and the Spearman rank
correlation of its relevance logit with PyTorch fp32's over the pairs
(``accuracy_vs_torch_fp32``). The fp32 exports must agree with PyTorch: ONNX Runtime fp32 and
OpenVINO f32 logits further than ``--fp32-tolerance`` (1e-4) from PyTorch's are a failure,
checked before they are timed. The input ids of a ``--compare`` file must be those of the
model's tokenizer (else the comparison would be of different inputs): a failure too.

Prints one JSON object: ``{"model", "tokens", "variants": {name: {...}},
"accuracy_vs_torch_fp32", "versions"}``. A variant whose runtime is missing or that fails
exits non-zero: nothing is skipped.

Variants (``--variants``, comma-separated):

* ``st_fp32``: ``CrossEncoder.predict(pairs, batch_size=32)``, 32 being the default batch
  size of sentence-transformers 6.2. Note that ST 6.2 already sorts its input by character
  count internally before batching.
* ``st_fp32_sorted``: the same on input pre-sorted by token count (longest first).
* ``torch_bf16``: ``st_fp32`` inside ``torch.autocast("cpu", dtype=torch.bfloat16)``
  (AMX on cores that have it).

The ONNX Runtime and OpenVINO variants share one way of batching, that of ``ort_fp32``: the
pairs sorted by token count (longest first), cut into batches of ``--batch-size`` (32), each
tokenized by the model's tokenizer inside the timed run and padded to its own longest pair
(so 100 pairs = batches of 32, 32, 32, 4 of falling width); the logits are put back in input
order.

* ``ort_fp32``: the transformers model exported once with ``torch.onnx.export`` (inputs in
  the model's forward order: input_ids, attention_mask and token_type_ids where the model has
  them; dynamic batch and sequence axes; traced on a padded batch; cached as ``--onnx``), run
  by an ONNX Runtime ``InferenceSession`` (CPU provider, ``ORT_ENABLE_ALL``) with
  ``--threads`` intra-op threads.
* ``ort_int8``: ``onnxruntime.quantization.quantize_dynamic`` of that export (int8 weights
  ``QInt8``, per output channel unless ``--ort-int8-per-tensor``; activations quantized per
  tensor at run time, uint8), cached beside it, run like ``ort_fp32``.
* ``ov_fp32``: the ONNX export read by OpenVINO and compiled for ``CPU`` with
  ``INFERENCE_NUM_THREADS=--threads``, ``PERFORMANCE_HINT=--ov-hint`` and
  ``INFERENCE_PRECISION_HINT=f32``. ``THROUGHPUT`` (the default): the batches go to an
  ``AsyncInferQueue`` of ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` requests (2 streams of 1
  thread on 2 threads), two batches in flight at once; ``LATENCY``: one stream, both threads
  on each batch, one synchronous request after the other, as rerank runs. THROUGHPUT was the
  faster of the two here (minilm, f32 and default precision, runs interleaved: 6–16 % more
  pairs/s, on a machine shared with other work), so it is OpenVINO's best foot forward.
* ``ov_default``: the same without a precision hint: OpenVINO picks (bf16 on cores with
  AVX512-BF16 or AMX); the precision it used (``INFERENCE_PRECISION_HINT`` of the compiled
  model) is recorded as ``inference_precision``.
* ``ov_int8``: ``nncf.quantize(model, model_type=nncf.ModelType.TRANSFORMER)``, static int8
  calibrated on the first ``--calibration-pairs`` (64) pairs, one pair per calibration sample
  (unpadded), the embedding lookups (``Gather``) left in float; compiled like ``ov_default`` (the layers NNCF left in float run at OpenVINO's
  default precision, as a user of NNCF would get); timed on all pairs.

Needs torch, transformers, sentence-transformers, onnx, onnxruntime, openvino and nncf. The
Hugging Face hub is never contacted.
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
    p.add_argument("--variants",
                   default="st_fp32,st_fp32_sorted,torch_bf16,ort_fp32,ort_int8,ov_fp32,"
                           "ov_default,ov_int8")
    p.add_argument("--onnx", default=None,
                   help="exported model path (default: <model>/../<name>.onnx); reused when present")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=FILE",
                   help="rerank score --json output whose logits to compare with PyTorch fp32")
    p.add_argument("--fp32-tolerance", type=float, default=1e-4,
                   help="max |logit − PyTorch fp32| allowed of the fp32 ONNX Runtime and "
                        "OpenVINO runs (default 1e-4)")
    p.add_argument("--calibration-pairs", type=int, default=64,
                   help="NNCF calibration: the first N pairs (default 64)")
    p.add_argument("--ov-hint", choices=["LATENCY", "THROUGHPUT"], default="THROUGHPUT",
                   help="OpenVINO PERFORMANCE_HINT (default THROUGHPUT)")
    p.add_argument("--ort-int8-per-tensor", action="store_true",
                   help="ort_int8: one weight scale per tensor instead of per output channel")
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


def read_scores(path):
    """Rows of ``rerank score --json`` ({"index", "logits", "score", "input_ids"}) in input
    order."""
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows.sort(key=lambda r: r["index"])
    return rows


def spearman(a, b):
    """Spearman rank correlation: Pearson's r of the ranks (ties broken by position)."""
    import numpy as np

    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        return r

    ra, rb = ranks(np.asarray(a)), ranks(np.asarray(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def relevance(logits):
    """The logit a ranking sorts by: the only one, or class 1 over class 0 of a 2-label head
    (monotone in softmax[1], the score sentence-transformers reports)."""
    return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


def to_scores(logits):
    """Relevance scores from logits, as sentence-transformers' default activation: sigmoid of a
    1-label head, softmax[1] of a 2-label one."""
    import numpy as np

    if logits.shape[1] == 1:
        return 1 / (1 + np.exp(-logits[:, 0]))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e[:, 1] / e.sum(axis=1)


def time_runs(fn, repeat, num_queries, warmup):
    """`warmup()` once, then `repeat` timed calls of `fn`; returns the timing summary and
    the result of the last call."""
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


def export_onnx(model, tokenizer, path, names):
    """torch.onnx.export of the transformers model with dynamic batch/sequence axes.

    The inputs are `names`, in the order of the model's forward (input_ids, attention_mask,
    token_type_ids), passed by keyword so no argument can land in the wrong slot. The trace is
    of a padded batch (two pairs of different lengths), so the attention mask is a live input
    of the graph and not folded into a constant of an all-ones example."""
    import torch

    enc = tokenizer([("a query", "a short document"),
                     ("a longer query about the economy",
                      "a document of a good many more words than the first one has")],
                    padding=True, return_tensors="pt")
    if int(enc["attention_mask"].min()) != 0:
        raise SystemExit("export example is not padded")
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


def precision_name(value):
    """An OpenVINO element type as its short name ("f32", "bf16", "f16")."""
    return value.to_string() if hasattr(value, "to_string") else str(value)


def accuracy(logits, ref):
    import numpy as np

    return {"max_abs_logit_diff": round(float(np.abs(logits - ref).max()), 6),
            "spearman": round(spearman(relevance(logits), relevance(ref)), 6)}


def main(argv=None):
    args = parse_args(argv)
    # The JSON result gets the real stdout to itself; everything else written to stdout
    # (NNCF's progress bars, C++ runtime messages) goes to stderr with the log.
    sys.stdout.flush()
    result_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
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
    known = {"st_fp32", "st_fp32_sorted", "torch_bf16", "ort_fp32", "ort_int8", "ov_fp32",
             "ov_default", "ov_int8"}
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(known)}")
    model = CrossEncoder(args.model, device="cpu", local_files_only=True,
                         model_kwargs={"dtype": torch.float32})
    model.eval()
    tok = model.tokenizer
    hf = model[0].auto_model if hasattr(model[0], "auto_model") else model.model
    max_len = getattr(model, "max_seq_length", None) or model.max_length
    encoded_ids = tok([q for q, _ in pairs], [d for _, d in pairs], truncation=True,
                      max_length=max_len)["input_ids"]
    lengths = [len(ids) for ids in encoded_ids]
    by_length = sorted(range(len(pairs)), key=lambda i: -lengths[i])
    bs = args.batch_size
    # The model's forward order; token_type_ids only where the model has a segment embedding
    # to feed (XLM-R's type_vocab_size is 1: the tokenizer emits none).
    input_names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tok.model_input_names and \
            getattr(hf.config, "type_vocab_size", 1) > 1:
        input_names.append("token_type_ids")

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
    log = lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)

    identity = torch.nn.Identity()

    def predict_logits(items):
        x = model.predict(items, batch_size=bs, show_progress_bar=False, activation_fn=identity,
                          convert_to_numpy=True)
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(len(items), -1)

    # --- the yardstick: PyTorch fp32 logits, once, untimed ----------------------------------
    log("PyTorch fp32 logits (the accuracy reference) ...")
    ref_logits = predict_logits(pairs)
    out["accuracy_reference"] = ("sentence-transformers CrossEncoder.predict fp32, no activation, "
                                 f"batch {bs}")
    logits_of = {}
    for spec in args.compare:
        name, path = spec.split("=", 1)
        rows = read_scores(path)
        if len(rows) != len(pairs):
            raise SystemExit(f"{path}: {len(rows)} rows for {len(pairs)} pairs")
        bad = [i for i, r in enumerate(rows) if r["input_ids"] != encoded_ids[i]]
        if bad:
            raise SystemExit(f"{path}: input ids differ from the tokenizer's at pairs {bad[:10]}")
        logits_of[name] = np.array([r["logits"] for r in rows], dtype=np.float64)

    # --- batching shared by the ONNX Runtime and OpenVINO variants ---------------------------
    batches = [by_length[s:s + bs] for s in range(0, len(by_length), bs)]

    def encode(idx):
        enc = tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], padding=True,
                  truncation=True, max_length=max_len, return_tensors="np")
        return {n: enc[n].astype(np.int64) for n in input_names}

    def run_batched(infer, batch_list=batches):
        """`infer(inputs) -> logits (batch, labels)` on each batch; logits in input order."""
        result = None
        for idx in batch_list:
            logits = np.asarray(infer(encode(idx)), dtype=np.float64)
            if result is None:
                result = np.full((len(pairs), logits.shape[1]), np.nan)
            result[idx] = logits
        return result

    def check_fp32(name, logits, idx=None):
        """The fp32 runtimes must compute what PyTorch does: fail before timing otherwise."""
        idx = list(range(len(pairs))) if idx is None else idx
        diff = float(np.abs(logits[idx] - ref_logits[idx]).max())
        if not diff <= args.fp32_tolerance:
            raise SystemExit(f"{name}: max |logit − PyTorch fp32| = {diff:.3g} over "
                             f"{len(idx)} pairs, more than {args.fp32_tolerance:g}: "
                             "the export or the runtime does not compute the model")
        log(f"{name}: max |logit − PyTorch fp32| = {diff:.2g} (≤ {args.fp32_tolerance:g})")

    onnx_path = args.onnx or os.path.join(
        os.path.dirname(os.path.abspath(args.model)),
        os.path.basename(os.path.abspath(args.model)) + ".onnx")
    state = {}

    def onnx_export():
        """The fp32 export, made once (or reused), and checked once with ONNX Runtime on all
        pairs against PyTorch fp32: every ONNX Runtime and OpenVINO variant starts from it."""
        if "onnx" in state:
            return state["onnx"]
        import onnxruntime as ort

        if not os.path.exists(onnx_path):
            t0 = time.perf_counter()
            export_onnx(hf, tok, onnx_path, input_names)
            log(f"exported {onnx_path} in {time.perf_counter() - t0:.1f} s")
        import onnx

        graph_inputs = [i.name for i in onnx.load(onnx_path, load_external_data=False).graph.input]
        if graph_inputs != input_names:
            raise SystemExit(f"{onnx_path}: inputs {graph_inputs}, the model's forward takes "
                             f"{input_names}: delete it to export again")
        sess = ort_session(onnx_path)
        check_fp32(f"ONNX export {os.path.basename(onnx_path)} (ONNX Runtime fp32)",
                   run_batched(lambda x: sess.run(None, x)[0]))
        state["onnx"] = onnx_path
        return onnx_path

    def ort_session(path):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def ov_compile(ov_model, precision):
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": args.ov_hint}
        if precision:
            config["INFERENCE_PRECISION_HINT"] = precision
        compiled = ov.Core().compile_model(ov_model, "CPU", config)
        info = {"openvino_config": {k: str(v) for k, v in config.items()},
                "inference_precision": precision_name(compiled.get_property("INFERENCE_PRECISION_HINT")),
                "num_streams": str(compiled.get_property("NUM_STREAMS")),
                "inference_num_threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}
        if args.ov_hint == "LATENCY":
            request = compiled.create_infer_request()

            def run(batch_list=batches):
                return run_batched(lambda x: request.infer(x)[0].copy(), batch_list)
        else:
            n = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            queue = ov.AsyncInferQueue(compiled, n)
            info["infer_requests"] = n

            def run(batch_list=batches):
                got = {}
                queue.set_callback(lambda req, k: got.__setitem__(
                    k, req.get_output_tensor(0).data.copy()))
                for k, idx in enumerate(batch_list):
                    queue.start_async(encode(idx), k)
                queue.wait_all()
                result = np.full((len(pairs), got[0].shape[1]), np.nan)
                for k, idx in enumerate(batch_list):
                    result[idx] = got[k]
                return result
        return run, info

    def ov_read():
        import openvino as ov

        if "ov_model" not in state:
            state["ov_model"] = ov.Core().read_model(onnx_export())
        return state["ov_model"]

    warm = [by_length[:bs]]
    for name in variants:
        log(f"reference {name} ...")
        extra = {}
        if name == "st_fp32":
            res, logits = time_runs(lambda: predict_logits(pairs), args.repeat, num_queries,
                                    lambda: predict_logits(pairs[:bs]))
        elif name == "st_fp32_sorted":
            sorted_pairs = [pairs[i] for i in by_length]

            def run_sorted():
                s = predict_logits(sorted_pairs)
                back = np.empty_like(s)
                back[by_length] = s
                return back

            res, logits = time_runs(run_sorted, args.repeat, num_queries,
                                    lambda: predict_logits(sorted_pairs[:bs]))
        elif name == "torch_bf16":
            def run_bf16(items=pairs):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return predict_logits(items)

            res, logits = time_runs(run_bf16, args.repeat, num_queries,
                                    lambda: run_bf16(pairs[:bs]))
        elif name in ("ort_fp32", "ort_int8"):
            import onnxruntime as ort

            path = onnx_export()
            if name == "ort_int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                per_channel = not args.ort_int8_per_tensor
                fp32_path = path
                path = path[:-len(".onnx")] + \
                    (".int8-dynamic-per-channel.onnx" if per_channel else ".int8-dynamic.onnx")
                if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(fp32_path):
                    t0 = time.perf_counter()
                    quantize_dynamic(fp32_path, path + ".tmp.onnx", weight_type=QuantType.QInt8,
                                     per_channel=per_channel)
                    os.replace(path + ".tmp.onnx", path)
                    log(f"quantized {path} in {time.perf_counter() - t0:.1f} s")
                extra = {"weight_type": "QInt8", "per_channel": per_channel,
                         "activations": "uint8, per tensor, dynamic"}
            sess = ort_session(path)
            run = lambda batch_list=batches: run_batched(lambda x: sess.run(None, x)[0], batch_list)
            res, logits = time_runs(run, args.repeat, num_queries, lambda: run(warm))
            extra.update({"onnx": path, "onnxruntime": ort.__version__})
        elif name in ("ov_fp32", "ov_default", "ov_int8"):
            import openvino as ov

            ov_model = ov_read()
            if name == "ov_int8":
                import nncf

                calib = [encode([i]) for i in range(min(args.calibration_pairs, len(pairs)))]
                t0 = time.perf_counter()
                # The embedding tables stay in float (ignored_scope: every Gather): a lookup
                # has no arithmetic for int8 to speed up (rerank int8 keeps them f32 too), and
                # with XLM-R's one-row token-type table quantized, OpenVINO 2026.4 cannot
                # compile the model ("Check 'convert->constant_fold(...)' failed").
                ov_model = nncf.quantize(ov_model, nncf.Dataset(calib),
                                         model_type=nncf.ModelType.TRANSFORMER,
                                         subset_size=len(calib),
                                         ignored_scope=nncf.IgnoredScope(types=["Gather"]))
                extra = {"calibration_pairs": len(calib), "nncf": nncf.__version__,
                         "ignored_scope": "Gather (the embedding tables stay float)",
                         "quantize_seconds": round(time.perf_counter() - t0, 1)}
                log(f"NNCF int8 from {len(calib)} calibration pairs in "
                    f"{extra['quantize_seconds']} s")
            run, info = ov_compile(ov_model, "f32" if name == "ov_fp32" else None)
            extra.update(info)
            extra["openvino"] = ov.__version__
            log(f"{name}: compiled, inference precision {info['inference_precision']}, "
                f"{info['num_streams']} stream(s), {info['inference_num_threads']} threads")
            if name == "ov_fp32":
                if info["inference_precision"] != "f32":
                    raise SystemExit(f"ov_fp32 compiled to {info['inference_precision']}")
                check_fp32(name, run())
            res, logits = time_runs(run, args.repeat, num_queries, lambda: run(warm))
        res.update(extra)
        res["pairs_per_second"] = round(len(pairs) / res["median_seconds"], 2)
        res["first_scores"] = [float(x) for x in to_scores(logits)[:5]]
        res["first_logits"] = [float(x) for x in relevance(logits)[:5]]
        out["variants"][name] = res
        logits_of[name] = logits
        if name in ("ort_fp32", "ov_fp32"):
            check_fp32(f"{name} (timed)", logits)

    out["accuracy_vs_torch_fp32"] = {}
    for name, logits in logits_of.items():
        if logits.shape != ref_logits.shape:
            raise SystemExit(f"{name}: logits of shape {logits.shape}, PyTorch's {ref_logits.shape}")
        out["accuracy_vs_torch_fp32"][name] = accuracy(logits, ref_logits)
        log(f"{name}: max |Δlogit| {out['accuracy_vs_torch_fp32'][name]['max_abs_logit_diff']:.3g}, "
            f"Spearman {out['accuracy_vs_torch_fp32'][name]['spearman']:.4f}")

    out["versions"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "numpy": np.__version__,
    }
    for mod in ("onnx", "onnxruntime", "openvino", "nncf"):
        if mod in sys.modules:
            out["versions"][mod] = sys.modules[mod].__version__
    json.dump(out, result_out, indent=2)
    result_out.write("\n")
    result_out.close()


if __name__ == "__main__":
    main()
