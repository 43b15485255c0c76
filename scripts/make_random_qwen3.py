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

import json

from random_model import SHARED, already_there, parse_args, write_model

DEFAULT_CONFIG = SHARED / "models" / "configs" / "Qwen3-Reranker-0.6B.config.json"
DEFAULT_TOKENIZER = SHARED / "models" / "tiny-qwen3-reranker"


def main(argv=None):
    args = parse_args(__doc__, DEFAULT_TOKENIZER, DEFAULT_CONFIG, argv)
    if already_there(args.out):
        return
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(**json.loads(args.config.read_text()))
    torch.manual_seed(args.seed)
    model = Qwen3ForCausalLM(config).to(torch.bfloat16).eval()
    write_model(
        args.out, model, args.tokenizer, ["tokenizer.json", "tokenizer_config.json"],
        "Random weights (torch seed %d, BF16) in the Qwen3-Reranker-0.6B shape (%s), written by "
        "scripts/make_random_qwen3.py for speed benchmarks; tokenizer copied from %s.\n"
        % (args.seed, args.config.name, args.tokenizer.name))


if __name__ == "__main__":
    main()
