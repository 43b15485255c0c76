#!/usr/bin/env python3
"""Merge the JSON of ``rerank bench --json`` and ``scripts/bench_reference.py`` per model
into one table (pairs/s, ms/query, GFLOP/s, % of fp32 peak, ratio rerank / reference) on
stdout, in Markdown, and one JSON file with everything.

Usage: bench_report.py --out results.json NAME=RERANK.json,REFERENCE.json[,RERANK_BF16.json] [...]

The optional third file is ``rerank bench --precision bf16 --json``: it adds a row and a column
"rerank bf16 ÷ this".

Under load the engines get different CPU shares: each row also shows CPU/wall and pairs per
CPU-second. GFLOP/s of every engine use the model-FLOP count of ``rerank bench`` (the same pairs,
the same tokenizer: the token totals are checked to agree). Standard library only.
"""

import argparse
import json
import os
import platform
import sys
import time

LABELS = {
    "rerank": "rerank (f32)",
    "rerank_bf16": "rerank --precision bf16",
    "st_fp32": "sentence-transformers predict, fp32, batch 32",
    "st_fp32_sorted": "  same, input sorted by token length",
    "torch_bf16": "PyTorch bf16 autocast (predict)",
    "ort_fp32": "ONNX Runtime fp32, batch 32",
    "causal_fp32": "PyTorch AutoModelForCausalLM fp32, batch 8",
    "causal_bf16": "  same under bf16 autocast",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("runs", nargs="+", help="NAME=RERANK_JSON,REFERENCE_JSON")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    results = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
               "machine": platform.machine(), "cpus": os.cpu_count(), "models": {}}
    lines = []
    for run in args.runs:
        name, files = run.split("=", 1)
        rerank_path, ref_path, *bf16_path = files.split(",")
        with open(rerank_path) as f:
            rr = json.load(f)
        with open(ref_path) as f:
            ref = json.load(f)
        if rr["tokens"] != ref["tokens"]:
            print(f"warning: {name}: rerank counts {rr['tokens']} tokens, the reference "
                  f"{ref['tokens']}", file=sys.stderr)
        gflop, peak = rr["gflop"], rr["peak_gflops"]
        rows = [("rerank", rr["pairs_per_second"], rr["ms_per_query_median"], rr["median_seconds"],
                 rr.get("cpu_over_wall"))]
        bf = None
        if bf16_path:
            with open(bf16_path[0]) as f:
                bf = json.load(f)
            rows.append(("rerank_bf16", bf["pairs_per_second"], bf["ms_per_query_median"],
                         bf["median_seconds"], bf.get("cpu_over_wall")))
        for v, r in ref["variants"].items():
            rows.append((v, r["pairs_per_second"], r["ms_per_query_median"], r["median_seconds"],
                         r.get("cpu_over_wall")))
        table = []
        lines.append(f"### {name}: {rr['architecture']} {rr['shape']['layers']}×{rr['shape']['hidden']}, "
                     f"{rr['pairs']} pairs of 1 query, {rr['tokens']} tokens "
                     f"({rr['tokens_per_pair']['min']}–{rr['tokens_per_pair']['max']} per pair), "
                     f"{gflop:.0f} GFLOP per query")
        lines.append("")
        lines.append("| engine | pairs/s | ms/query | GFLOP/s | % of fp32 peak | rerank ÷ this | "
                     "rerank bf16 ÷ this | CPU/wall | pairs per CPU-s | rerank ÷ this per CPU-s |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rerank_cw = rr.get("cpu_over_wall")
        rerank_pcpu = rr["pairs_per_second"] / rerank_cw if rerank_cw else None
        rerank_pps = rr["pairs_per_second"]
        for v, pps, ms, secs, cw in rows:
            gfs = gflop / secs
            ratio = rerank_pps / pps
            bf_ratio = bf["pairs_per_second"] / pps if bf else None
            pcpu = pps / cw if cw else None
            pratio = rerank_pcpu / pcpu if pcpu and rerank_pcpu else None
            table.append({"engine": v, "pairs_per_second": pps, "ms_per_query": ms,
                          "gflops": round(gfs, 1), "fraction_of_peak": round(gfs / peak, 3),
                          "rerank_over_this": round(ratio, 2),
                          "rerank_bf16_over_this": bf_ratio and round(bf_ratio, 2),
                          "cpu_over_wall": cw,
                          "pairs_per_cpu_second": pcpu and round(pcpu, 2),
                          "rerank_over_this_per_cpu_second": pratio and round(pratio, 2)})
            fmt = lambda x, f: "" if x is None else format(x, f)
            lines.append(f"| {LABELS.get(v, v)} | {pps:.1f} | {ms:.0f} | {gfs:.0f} | "
                         f"{100 * gfs / peak:.0f} % | {ratio:.2f}× | "
                         f"{fmt(bf_ratio, '.2f')}{'' if bf_ratio is None else '×'} | {fmt(cw, '.2f')} | "
                         f"{fmt(pcpu, '.1f')} | {fmt(pratio, '.2f')}{'' if pratio is None else '×'} |")
        acc = ref.get("accuracy_vs_torch_fp32")
        if acc:
            lines.append("")
            lines.append("Against PyTorch fp32 logits: " + "; ".join(
                f"{LABELS.get(n, n)} max |Δlogit| {a['max_abs_logit_diff']:.2g}, "
                f"Spearman {a['spearman']:.4f}" for n, a in acc.items()))
        lines.append("")
        results["models"][name] = {"table": table, "rerank": rr, "rerank_bf16": bf,
                                   "reference": ref}
        results["peak_gflops"] = peak
        results["peak_source"] = rr["peak_source"]
    lines.append(f"fp32 peak {results['peak_gflops']:.0f} GFLOP/s ({results['peak_source']}). "
                 "CPU/wall: process CPU seconds per wall second (2.00 = both cores were ours); "
                 "per CPU-s figures divide by it (engines that spin while waiting look worse).")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
