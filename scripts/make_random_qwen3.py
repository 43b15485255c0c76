#!/usr/bin/env python3
"""Write a random-weight LLM reranker with the Qwen3-Reranker-0.6B shape.

``Qwen3ForCausalLM`` with the configuration of
``../shared/models/configs/Qwen3-Reranker-0.6B.config.json`` (28 layers × 1024, 16 query / 8
key-value heads of 128, SwiGLU 3072, 151,669-row tied vocabulary). Weights come from
transformers' own initializer with ``torch.manual_seed(--seed)`` and are saved as BF16
``model.safetensors``, like the real checkpoint; the tokenizer files are copied from
``--tokenizer`` (by default ``../shared/models/tiny-qwen3-reranker``: a Qwen-style BPE whose ids,
``yes`` / ``no`` included, are all valid rows of the big vocabulary). rerank recognises the
folder as a Qwen3 reranker (yes − no logit at the last token, the model card's prompt). Speed
does not depend on the weight values, so this folder serves speed benchmarks only.

Example (from the repository root):

    /work/venv-ref/bin/python scripts/make_random_qwen3.py --out target/bench/models/qwen3-reranker-0.6b-random

Needs torch and transformers (>= 4.51). Does nothing when ``--out`` already holds a
model.safetensors (delete the folder to regenerate).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT / ".." / "shared"
DEFAULT_CONFIG = SHARED / "models" / "configs" / "Qwen3-Reranker-0.6B.config.json"
DEFAULT_TOKENIZER = SHARED / "models" / "tiny-qwen3-reranker"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="config.json of the shape")
    p.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER,
                   help="folder with tokenizer.json / tokenizer_config.json to copy")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the weights (default 0)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if (args.out / "model.safetensors").exists():
        print(f"{args.out}: already there", file=sys.stderr)
        return
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    fields = json.loads(args.config.read_text())
    config = Qwen3Config(**fields)
    torch.manual_seed(args.seed)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16).eval()
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in ["tokenizer.json", "tokenizer_config.json"]:
        shutil.copy(args.tokenizer / f, tmp / f)
    (tmp / "README.md").write_text(
        "Random weights (torch seed %d, BF16) in the Qwen3-Reranker-0.6B shape (%s), written by "
        "scripts/make_random_qwen3.py for speed benchmarks; tokenizer copied from %s.\n"
        % (args.seed, args.config.name, args.tokenizer.name))
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {n / 1e6:.1f} M parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
