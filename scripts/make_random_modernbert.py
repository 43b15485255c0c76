#!/usr/bin/env python3
"""Write a random-weight cross-encoder with the ModernBERT-base reranker shape.

ModernBertForSequenceClassification with the configuration of
``../shared/models/configs/ModernBERT-base-reranker.config.json`` (22 layers × 768, 12 heads,
GeGLU intermediate 1152, vocab 50368, 8192 positions, local window 128 with every 3rd layer
global, mean classifier pooling, no biases but the classifier's) — the shape of
gte-reranker-modernbert-base-class models. Weights come from transformers' own initializer
with ``torch.manual_seed(--seed)`` and are saved as F32 ``model.safetensors``; the tokenizer
files are copied from ``--tokenizer`` (by default ``../shared/models/tiny-modernbert-ce``: a
BPE vocabulary with ``[CLS] q [SEP] d [SEP]`` pairs whose 4,160 ids are all valid rows of the
50,368-row embedding table), with ``model_max_length`` 8192. Speed does not depend on the
weight values, so this folder serves speed benchmarks only.

Example (from the repository root):

    /work/venv-ref/bin/python scripts/make_random_modernbert.py --out target/bench/models/modernbert-base-random

Needs torch and transformers (>= 4.48). Does nothing when ``--out`` already holds a
model.safetensors (delete the folder to regenerate).
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT / ".." / "shared"
DEFAULT_CONFIG = SHARED / "models" / "configs" / "ModernBERT-base-reranker.config.json"
DEFAULT_TOKENIZER = SHARED / "models" / "tiny-modernbert-ce"


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
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    fields = json.loads(args.config.read_text())
    config = ModernBertConfig(**fields)
    torch.manual_seed(args.seed)
    model = ModernBertForSequenceClassification(config).eval()
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    shutil.copy(args.tokenizer / "tokenizer.json", tmp / "tokenizer.json")
    tok_cfg = json.loads((args.tokenizer / "tokenizer_config.json").read_text())
    tok_cfg["model_max_length"] = fields.get("max_position_embeddings", 8192)
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=1))
    (tmp / "README.md").write_text(
        "Random weights (torch seed %d) in the ModernBERT-base reranker shape (%s), written by "
        "scripts/make_random_modernbert.py for speed benchmarks; tokenizer copied from %s.\n"
        % (args.seed, args.config.name, args.tokenizer.name))
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {n / 1e6:.1f} M parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
