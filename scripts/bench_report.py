#!/usr/bin/env python3
"""Merge the JSON of ``rerank bench --json`` and ``scripts/bench_reference.py`` per model
into one table per model on stdout, in Markdown, and one JSON file with everything.

Usage: bench_report.py --out results.json
           NAME=RERANK.json,REFERENCE.json[,RERANK_BF16.json[,RERANK_INT8.json]] [...]

RERANK.json is ``rerank bench --json`` in f32; the optional third and fourth files are the
same with ``--precision bf16`` and ``--precision int8``.

The output opens with the CPU (model name, logical CPUs, and whether it has the AMX-BF16,
AMX-INT8, AVX512-BF16 and AVX512-VNNI instructions the bf16 and int8 paths of every engine
depend on, from /proc/cpuinfo) and the date. Each table has one column per engine, in the
order rerank f32, rerank bf16, rerank int8, OpenVINO f32, OpenVINO default, OpenVINO NNCF
int8, ONNX Runtime fp32, ONNX Runtime dynamic int8, sentence-transformers fp32, then the other
PyTorch variants; its rows: pairs/s, ms/query, GFLOP/s, % of fp32 peak, max |logit − PyTorch
fp32| and Spearman to PyTorch fp32 (``accuracy_vs_torch_fp32`` of the reference JSON: an engine
without them is an error), rerank ÷ this, CPU/wall and pairs per CPU-second. Below it: rerank's
fastest mode ÷ OpenVINO NNCF int8, rerank bf16 ÷ OpenVINO default, rerank f32 ÷ OpenVINO f32.

Under load the engines get different CPU shares: CPU/wall and pairs per CPU-second show it.
GFLOP/s of every engine use the model-FLOP count of ``rerank bench`` (the same pairs, the same
tokenizer: the token totals are checked to agree). Standard library only.
"""

import argparse
import json
import os
import platform
import sys
import time

# Column order of the table; engines not named here follow in the order they came.
ORDER = ["rerank", "rerank_bf16", "rerank_int8", "ov_fp32", "ov_default", "ov_int8",
         "ort_fp32", "ort_int8", "st_fp32", "st_fp32_sorted", "torch_bf16",
         "causal_fp32", "causal_bf16"]
HEADS = {
    "rerank": "rerank f32",
    "rerank_bf16": "rerank bf16",
    "rerank_int8": "rerank int8",
    "ov_fp32": "OpenVINO f32",
    "ov_default": "OpenVINO default",
    "ov_int8": "OpenVINO NNCF int8",
    "ort_fp32": "ORT fp32",
    "ort_int8": "ORT dynamic int8",
    "st_fp32": "sentence-transformers fp32",
    "st_fp32_sorted": "ST fp32, sorted input",
    "torch_bf16": "PyTorch bf16 autocast",
    "causal_fp32": "PyTorch CausalLM fp32",
    "causal_bf16": "PyTorch CausalLM bf16 autocast",
}
RERANK_MODES = {"rerank": "f32", "rerank_bf16": "bf16", "rerank_int8": "int8"}
# The instructions the bf16 and int8 paths of rerank, OpenVINO and ONNX Runtime use.
ISA_FLAGS = [("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8"), ("avx512_bf16", "AVX512-BF16"),
             ("avx512_vnni", "AVX512-VNNI")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("runs", nargs="+",
                   help="NAME=RERANK_JSON,REFERENCE_JSON[,RERANK_BF16_JSON[,RERANK_INT8_JSON]]")
    return p.parse_args(argv)


def cpu_info(path="/proc/cpuinfo"):
    """The CPU model name and which of ISA_FLAGS it reports (Linux; "unknown" elsewhere)."""
    model, flags = "unknown", set()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model == "unknown":
                    model = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        return {"model": platform.processor() or "unknown", "flags": None}
    return {"model": model, "flags": {name: flag in flags for flag, name in ISA_FLAGS}}


def main(argv=None):
    args = parse_args(argv)
    cpu = cpu_info()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "machine": platform.machine(), "cpus": os.cpu_count(), "cpu": cpu, "models": {}}
    flags = "ISA flags not known" if cpu["flags"] is None else ", ".join(
        f"{name} {'yes' if has else 'no'}" for name, has in cpu["flags"].items())
    lines = [f"CPU: {cpu['model']}, {os.cpu_count()} logical CPUs; {flags}. Date: {date}.", ""]
    fmt = lambda x, f, suffix="": "" if x is None else format(x, f) + suffix
    for run in args.runs:
        name, files = run.split("=", 1)
        rerank_path, ref_path, *more = files.split(",")
        if len(more) > 2:
            raise SystemExit(f"{name}: at most 4 files, got {2 + len(more)}")
        with open(ref_path) as f:
            ref = json.load(f)
        rerank_runs = {}
        for engine, path in zip(["rerank", "rerank_bf16", "rerank_int8"], [rerank_path] + more):
            with open(path) as f:
                rerank_runs[engine] = json.load(f)
        rr = rerank_runs["rerank"]
        if rr["tokens"] != ref["tokens"]:
            print(f"warning: {name}: rerank counts {rr['tokens']} tokens, the reference "
                  f"{ref['tokens']}", file=sys.stderr)
        gflop, peak = rr["gflop"], rr["peak_gflops"]
        engines = dict(rerank_runs)
        engines.update(ref["variants"])
        names = [e for e in ORDER if e in engines] + [e for e in engines if e not in ORDER]
        acc = ref.get("accuracy_vs_torch_fp32") or {}
        for e in names:
            if e not in acc and e != "causal_fp32":
                raise SystemExit(f"{name}: no accuracy figures of {e} in {ref_path} "
                                 "(accuracy_vs_torch_fp32)")

        def head(e):
            h = HEADS.get(e, e)
            precision = engines[e].get("inference_precision")
            if e == "ov_default" and precision:
                return f"{h} ({precision})"
            if e == "ov_int8" and precision:
                return f"{h} (rest {precision})"  # the layers NNCF left in float
            return h

        table = []
        for e in names:
            r = engines[e]
            pps, secs, cw = r["pairs_per_second"], r["median_seconds"], r.get("cpu_over_wall")
            gfs = gflop / secs
            a = acc.get(e, {"max_abs_logit_diff": 0.0, "spearman": 1.0, "reference": True})
            row = {"engine": e, "label": head(e), "pairs_per_second": round(pps, 2),
                   "ms_per_query": round(r["ms_per_query_median"], 1),
                   "gflops": round(gfs, 1), "fraction_of_peak": round(gfs / peak, 3),
                   "max_abs_logit_diff": a["max_abs_logit_diff"], "spearman": a["spearman"],
                   "cpu_over_wall": cw and round(cw, 2),
                   "pairs_per_cpu_second": cw and round(pps / cw, 2)}
            for m, rm in rerank_runs.items():
                row[f"{m}_over_this"] = round(rm["pairs_per_second"] / pps, 2)
            table.append(row)

        lines.append(f"### {name}: {rr['architecture']} {rr['shape']['layers']}×{rr['shape']['hidden']}, "
                     f"{rr['pairs']} pairs of 1 query, {rr['tokens']} tokens "
                     f"({rr['tokens_per_pair']['min']}–{rr['tokens_per_pair']['max']} per pair), "
                     f"{gflop:.0f} GFLOP per query, {rr.get('threads', '?')} threads")
        lines.append("")
        lines.append("| | " + " | ".join(row["label"] for row in table) + " |")
        lines.append("|---|" + "---:|" * len(table))
        body = [("pairs/s", lambda r: fmt(r["pairs_per_second"], ".1f")),
                ("ms/query", lambda r: fmt(r["ms_per_query"], ".0f")),
                ("GFLOP/s", lambda r: fmt(r["gflops"], ".0f")),
                ("% of fp32 peak", lambda r: fmt(100 * r["fraction_of_peak"], ".0f", " %")),
                ("max \\|logit − PyTorch fp32\\|", lambda r: "reference" if r["engine"] ==
                 "causal_fp32" else fmt(r["max_abs_logit_diff"], ".2g")),
                ("Spearman to PyTorch fp32", lambda r: fmt(r["spearman"], ".4f"))]
        for m in rerank_runs:
            body.append((f"{HEADS[m]} ÷ this", lambda r, m=m: fmt(r[f"{m}_over_this"], ".2f", "×")))
        body += [("CPU/wall", lambda r: fmt(r["cpu_over_wall"], ".2f")),
                 ("pairs per CPU-s", lambda r: fmt(r["pairs_per_cpu_second"], ".1f"))]
        for label, cell in body:
            lines.append(f"| {label} | " + " | ".join(cell(r) for r in table) + " |")
        lines.append("")

        # rerank against its closest peer in each precision.
        fastest = max(rerank_runs, key=lambda m: rerank_runs[m]["pairs_per_second"])
        ratios = {}
        for key, mine, theirs in [("fastest_over_ov_int8", fastest, "ov_int8"),
                                  ("bf16_over_ov_default", "rerank_bf16", "ov_default"),
                                  ("f32_over_ov_fp32", "rerank", "ov_fp32")]:
            if mine in rerank_runs and theirs in engines:
                ratio = rerank_runs[mine]["pairs_per_second"] / engines[theirs]["pairs_per_second"]
                ratios[key] = {"rerank": mine, "peer": theirs, "ratio": round(ratio, 2)}
                what = f"rerank's fastest mode ({RERANK_MODES[mine]})" \
                    if key.startswith("fastest") else HEADS[mine]
                lines.append(f"- {what} ÷ {head(theirs)}: **{ratio:.2f}×** "
                             f"({rerank_runs[mine]['pairs_per_second']:.1f} / "
                             f"{engines[theirs]['pairs_per_second']:.1f} pairs/s)")
        notes = []
        ov = next((engines[e] for e in ("ov_fp32", "ov_default", "ov_int8") if e in engines), None)
        if ov:
            cfg = ov.get("openvino_config", {})
            notes.append(f"OpenVINO {ov.get('openvino', '').split('-')[0]}: PERFORMANCE_HINT "
                         f"{cfg.get('PERFORMANCE_HINT', '?')}, {ov.get('num_streams', '?')} "
                         f"stream(s), {ov.get('inference_num_threads', '?')} threads")
        if "ov_int8" in engines:
            notes.append(f"NNCF {engines['ov_int8'].get('nncf', '')} static int8 calibrated on the "
                         f"first {engines['ov_int8'].get('calibration_pairs', '?')} pairs")
        if "ort_int8" in engines:
            o = engines["ort_int8"]
            notes.append(f"ORT {o.get('onnxruntime', '')} dynamic int8: {o.get('weight_type')} "
                         f"weights {'per channel' if o.get('per_channel') else 'per tensor'}")
        if notes:
            lines.append("- " + "; ".join(notes) + ".")
        lines.append("")
        results["models"][name] = {"table": table, "ratios": ratios, "reference": ref,
                                   **rerank_runs}
        results["peak_gflops"] = peak
        results["peak_source"] = rr["peak_source"]
    lines.append(f"fp32 peak {results['peak_gflops']:.0f} GFLOP/s ({results['peak_source']}). "
                 "Accuracy: max |logit − PyTorch fp32| over all pairs and Spearman rank "
                 "correlation of the relevance logits to PyTorch fp32's. CPU/wall: process CPU "
                 "seconds per wall second (2.00 = both cores were ours); per CPU-s figures divide "
                 "by it (engines that spin while waiting look worse).")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
