#!/usr/bin/env python3
"""Reference speed and accuracy of an LLM reranker (Qwen3-Reranker shape) on the same pairs as
``rerank bench``: PyTorch ``AutoModelForCausalLM`` in fp32 and under bf16 autocast, scoring
``logit(yes) − logit(no)`` at the last position, as the Qwen3-Reranker model card does.

sentence-transformers' ``CrossEncoder`` is not used: on folders without a chat template it
scores the bare ``query + document`` text (see ``../shared/reference/README.md``). Instead the
model card's prompt (``prompt`` of ``../shared/reference/expected-llm.json``) is applied here:
``prefix_ids + ids(format(instruction, query, document))[: max_length − len(prefix) −
len(suffix)] + suffix_ids``, every piece tokenized without special tokens. Tokenization is done
once, before timing (it is < 0.1 % of a 0.6B forward). ``--check-ids`` (the JSONL of ``rerank
score --json``) asserts that rerank feeds the model the very same ids.

Each variant runs the pairs in batches of ``--batch-size``, sorted by length (longest first),
left-padded, with explicit position ids (so padding never moves a position), only the last
position through the LM head (``logits_to_keep=1``); a warm-up batch first, then
``--repeat`` timed runs (median reported).

``--compare NAME=FILE`` (repeatable; FILE = ``rerank score --json`` output) adds, for each,
the max |logit − PyTorch fp32 logit| and the Spearman rank correlation to PyTorch fp32; the
bf16-autocast variant gets the same figures.

Prints one JSON object like ``scripts/bench_reference.py``. Needs torch, transformers,
tokenizers and numpy; the Hugging Face hub is never contacted.
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_reference import read_pairs, time_runs  # noqa: E402  (one pair reader, one timing loop)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROMPT = REPO_ROOT / ".." / "shared" / "reference" / "expected-llm.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="local Qwen3ForCausalLM folder")
    p.add_argument("--pairs", required=True, help="JSONL file with query/document objects")
    p.add_argument("--repeat", type=int, default=1, help="timed runs (default 1)")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per forward pass (default 8)")
    p.add_argument("--variants", default="causal_fp32,causal_bf16")
    p.add_argument("--prompt", type=Path, default=DEFAULT_PROMPT,
                   help="JSON file whose `prompt` holds prefix, suffix, default_instruction, format")
    p.add_argument("--check-ids", default=None, help="rerank score --json output to compare ids with")
    p.add_argument("--compare", action="append", default=[], metavar="NAME=FILE",
                   help="rerank score --json output whose logits to compare with PyTorch fp32")
    return p.parse_args(argv)


def read_scores(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows.sort(key=lambda r: r["index"])
    return rows


def spearman(a, b):
    import numpy as np

    def ranks(x):
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        return r

    ra, rb = ranks(np.asarray(a)), ranks(np.asarray(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(argv=None):
    args = parse_args(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import numpy as np
    import torch
    import transformers
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass

    prompt = json.loads(args.prompt.read_text())["prompt"]
    model_dir = Path(args.model)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok_cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    max_length = int(tok_cfg.get("model_max_length", 8192))
    pad_id = tok.token_to_id(tok_cfg.get("pad_token") or "<|endoftext|>")
    yes_id, no_id = tok.token_to_id("yes"), tok.token_to_id("no")
    ids_of = lambda text: tok.encode(text, add_special_tokens=False).ids
    prefix, suffix = ids_of(prompt["prefix"]), ids_of(prompt["suffix"])
    fmt = prompt["format"].replace("\\n", "\n")
    pairs = read_pairs(args.pairs)
    budget = max_length - len(prefix) - len(suffix)
    input_ids = [prefix + ids_of(fmt.format(instruction=prompt["default_instruction"], query=q,
                                            document=d))[:budget] + suffix for q, d in pairs]
    if args.check_ids:
        theirs = [r["input_ids"] for r in read_scores(args.check_ids)]
        bad = [i for i, (a, b) in enumerate(zip(input_ids, theirs)) if a != b]
        if bad or len(theirs) != len(input_ids):
            raise SystemExit(f"input ids differ from {args.check_ids} at pairs {bad[:10]}")
        print(f"  input ids identical to {args.check_ids}", file=sys.stderr)
    lengths = [len(x) for x in input_ids]
    order = sorted(range(len(pairs)), key=lambda i: -lengths[i])
    bs = args.batch_size

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 local_files_only=True).eval()

    def run(idx_list, bf16):
        out = np.empty(len(pairs), dtype=np.float64)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(idx_list), bs):
                idx = idx_list[start:start + bs]
                width = max(lengths[i] for i in idx)
                ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for r, i in enumerate(idx):
                    ids[r, width - lengths[i]:] = torch.tensor(input_ids[i])
                    mask[r, width - lengths[i]:] = 1
                pos = (mask.cumsum(1) - 1).clamp(min=0)
                logits = model(input_ids=ids, attention_mask=mask, position_ids=pos,
                               logits_to_keep=1).logits[:, -1, :].float()
                out[idx] = (logits[:, yes_id] - logits[:, no_id]).numpy()
        return out

    result = {
        "model": str(model_dir.resolve()),
        "pairs_file": os.path.abspath(args.pairs),
        "pairs": len(pairs),
        "queries": len({q for q, _ in pairs}),
        "tokens": sum(lengths),
        "threads": torch.get_num_threads(),
        "batch_size": bs,
        "repeat": args.repeat,
        "variants": {},
    }
    logits = {}
    for name in [v for v in args.variants.split(",") if v]:
        if name not in ("causal_fp32", "causal_bf16"):
            raise SystemExit(f"unknown variant {name!r}")
        bf16 = name == "causal_bf16"
        print(f"  reference {name} ...", file=sys.stderr, flush=True)
        timing, logits[name] = time_runs(lambda: run(order, bf16), args.repeat,
                                         result["queries"], lambda: run(order[:bs], bf16))
        result["variants"][name] = {
            **timing,
            "pairs_per_second": round(len(pairs) / timing["median_seconds"], 3),
            "first_scores": [float(x) for x in logits[name][:5]],
        }
    if "causal_fp32" in logits:
        ref = logits["causal_fp32"]
        others = {n: v for n, v in logits.items() if n != "causal_fp32"}
        for spec in args.compare:
            n, path = spec.split("=", 1)
            others[n] = np.array([r["logits"][0] for r in read_scores(path)], dtype=np.float64)
        result["accuracy_vs_torch_fp32"] = {
            n: {"max_abs_logit_diff": round(float(np.abs(v - ref).max()), 6),
                "spearman": round(spearman(v, ref), 6)}
            for n, v in others.items()
        }
    result["versions"] = {"python": platform.python_version(), "torch": torch.__version__,
                          "transformers": transformers.__version__, "numpy": np.__version__}
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
