#!/usr/bin/env python3
"""Write a random-weight cross-encoder with the shape of BAAI/bge-reranker-base.

XLMRobertaForSequenceClassification: hidden 768, 12 layers, 12 heads, intermediate 3072,
vocab 250002, max_position_embeddings 514, 1 label, GELU (erf), layer norm eps 1e-5 —
the published bge-reranker-base config. Weights come from transformers' own initializer
with ``torch.manual_seed(--seed)`` and are saved as F32 ``model.safetensors``; the
tokenizer files are copied from ``--tokenizer`` (by default the offline stand-in
``../shared/models/xlm-roberta-tokenizer``: same pipeline and id layout as XLM-R, 8,002
ids, so every id it produces is a valid row of the 250,002-row embedding table). Speed does
not depend on the weight values, so this folder serves speed benchmarks only.

Example (from the repository root):

    /work/venv-ref/bin/python scripts/make_random_xlmr.py --out target/bench/models/bge-reranker-base-random

Needs torch and transformers. Does nothing when ``--out`` already holds a model.safetensors
(delete the folder to regenerate).
"""

from random_model import SHARED, already_there, parse_args, write_model

DEFAULT_TOKENIZER = SHARED / "models" / "xlm-roberta-tokenizer"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "sentencepiece.bpe.model"]


def main(argv=None):
    args = parse_args(__doc__, DEFAULT_TOKENIZER, argv=argv)
    if already_there(args.out):
        return
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    config = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        hidden_act="gelu",
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=1,
        architectures=["XLMRobertaForSequenceClassification"],
    )
    torch.manual_seed(args.seed)
    model = XLMRobertaForSequenceClassification(config).eval()
    write_model(
        args.out, model, args.tokenizer, TOKENIZER_FILES,
        "Random weights (torch seed %d) in the shape of BAAI/bge-reranker-base, written by "
        "scripts/make_random_xlmr.py for speed benchmarks; tokenizer copied from %s.\n"
        % (args.seed, args.tokenizer.name))


if __name__ == "__main__":
    main()
