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

import json

from random_model import SHARED, already_there, parse_args, write_model

DEFAULT_CONFIG = SHARED / "models" / "configs" / "ModernBERT-base-reranker.config.json"
DEFAULT_TOKENIZER = SHARED / "models" / "tiny-modernbert-ce"


def main(argv=None):
    args = parse_args(__doc__, DEFAULT_TOKENIZER, DEFAULT_CONFIG, argv)
    if already_there(args.out):
        return
    import torch
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    fields = json.loads(args.config.read_text())
    config = ModernBertConfig(**fields)
    torch.manual_seed(args.seed)
    model = ModernBertForSequenceClassification(config).eval()
    tok_cfg = json.loads((args.tokenizer / "tokenizer_config.json").read_text())
    tok_cfg["model_max_length"] = fields.get("max_position_embeddings", 8192)
    write_model(
        args.out, model, args.tokenizer, ["tokenizer.json"],
        "Random weights (torch seed %d) in the ModernBERT-base reranker shape (%s), written by "
        "scripts/make_random_modernbert.py for speed benchmarks; tokenizer copied from %s.\n"
        % (args.seed, args.config.name, args.tokenizer.name),
        tokenizer_config=tok_cfg)


if __name__ == "__main__":
    main()
