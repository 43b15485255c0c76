#!/usr/bin/env python3
"""Write a deterministic JSONL file of (query, document) pairs for reranker benchmarks.

Each output line is ``{"query": ..., "document": ...}``. The documents are
consecutive word windows of a text (the 2022 State of the Union by default),
each grown word by word until the pair ``(query, document)`` encodes, with
special tokens ([CLS] q [SEP] d [SEP]), to its target length +- ``--tolerance``
(default 5) tokens for the given ``tokenizer.json``. The target is
``--target-tokens`` (default 150) for every pair, or, with ``--min-tokens`` and
``--max-tokens``, drawn per pair uniformly from that range with ``--seed``
(mixed lengths: ``--min-tokens 64 --max-tokens 256`` is what ``scripts/bench.sh``
uses; the same seed gives the same targets for every tokenizer).
The next window starts right after the previous one; the text wraps around
when it runs out, so any N works.

Dependencies: Python standard library + the ``tokenizers`` package.

Example (from the repository root):

    python scripts/make_bench_pairs.py -n 100 --out /tmp/bench_pairs_100.jsonl

Default paths are resolved relative to the repository root (the parent of
this script's directory); paths given on the command line are used as given.
"""

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from tokenizers import Tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEXT = REPO_ROOT / ".." / "shared" / "data" / "state_of_the_union.txt"
DEFAULT_TOKENIZER = (
    REPO_ROOT / ".." / "shared" / "models" / "minilm-l6-sotu-ce" / "tokenizer.json"
)
DEFAULT_QUERY = "What is the plan for the economy?"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT,
                   help="plain-text source (default: ../shared/data/state_of_the_union.txt from the repo root)")
    p.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER,
                   help="tokenizer.json used to size the windows (default: the minilm-l6-sotu-ce tokenizer)")
    p.add_argument("-n", "--num-pairs", type=int, default=100, help="number of lines to write (default 100)")
    p.add_argument("--query", default=DEFAULT_QUERY, help=f"query for every pair (default {DEFAULT_QUERY!r})")
    p.add_argument("--target-tokens", type=int, default=150,
                   help="pair length in tokens, special tokens included (default 150)")
    p.add_argument("--min-tokens", type=int, default=None,
                   help="with --max-tokens: draw each pair's target uniformly from [min, max] (mixed lengths)")
    p.add_argument("--max-tokens", type=int, default=None, help="upper end of the mixed-length range")
    p.add_argument("--seed", type=int, default=0, help="seed of the mixed-length targets (default 0)")
    p.add_argument("--tolerance", type=int, default=5, help="allowed deviation from the target (default 5)")
    p.add_argument("--out", type=Path, default=None, help="output JSONL file (default: stdout)")
    return p.parse_args(argv)


def load_tokenizer(path: Path) -> Tokenizer:
    tok = Tokenizer.from_file(str(path))
    # Measure the real length: no truncation (tokenizer.json caps at 256), no padding.
    tok.no_truncation()
    tok.no_padding()
    return tok


def pair_len(tok: Tokenizer, query: str, doc: str) -> int:
    return len(tok.encode(query, doc, add_special_tokens=True).ids)


def make_windows(words, tok, query, targets, tol):
    """Return a list of (document, token_count, start_word), one consecutive window per target."""
    nwords = len(words)
    out = []
    start = 0
    for i, target in enumerate(targets):
        lo, hi = target - tol, target + tol
        count = 0
        length = pair_len(tok, query, "")
        # Grow word by word until the pair reaches the target length.
        while length < target:
            count += 1
            if count > nwords:
                raise SystemExit("text too short to reach the target length")
            doc = " ".join(words[(start + j) % nwords] for j in range(count))
            length = pair_len(tok, query, doc)
        if length > hi and count > 1:
            # The last word overshot the window; drop it if the shorter one is in range.
            shorter = " ".join(words[(start + j) % nwords] for j in range(count - 1))
            slen = pair_len(tok, query, shorter)
            if slen >= lo:
                count, length = count - 1, slen
        doc = " ".join(words[(start + j) % nwords] for j in range(count))
        if not lo <= length <= hi:
            raise SystemExit(f"window {i} (word {start}) has {length} tokens, outside {lo}..{hi}")
        out.append((doc, length, start))
        start = (start + count) % nwords
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.num_pairs < 1:
        raise SystemExit("--num-pairs must be >= 1")
    words = args.text.read_text(encoding="utf-8").split()
    if not words:
        raise SystemExit(f"{args.text}: no words")
    tok = load_tokenizer(args.tokenizer)
    if (args.min_tokens is None) != (args.max_tokens is None):
        raise SystemExit("--min-tokens and --max-tokens go together")
    if args.min_tokens is not None:
        if not 0 < args.min_tokens <= args.max_tokens:
            raise SystemExit("need 0 < --min-tokens <= --max-tokens")
        rng = random.Random(args.seed)
        targets = [rng.randint(args.min_tokens, args.max_tokens) for _ in range(args.num_pairs)]
    else:
        targets = [args.target_tokens] * args.num_pairs
    windows = make_windows(words, tok, args.query, targets, args.tolerance)

    lines = [json.dumps({"query": args.query, "document": doc}, ensure_ascii=False) + "\n"
             for doc, _, _ in windows]
    if args.out is None:
        sys.stdout.writelines(lines)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(lines)

    lengths = [n for _, n, _ in windows]
    wrapped = windows[-1][2] + len(windows[-1][0].split()) > len(words) or any(
        b[2] < a[2] for a, b in zip(windows, windows[1:]))
    print(
        f"wrote {len(lines)} pairs to {args.out or 'stdout'}: tokens/pair min {min(lengths)} "
        f"median {statistics.median(lengths)} max {max(lengths)} total {sum(lengths)}; "
        f"source {len(words)} words, wrapped around: {'yes' if wrapped else 'no'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
