"""What the ``make_random_*.py`` scripts share: their command line and the atomic write of a
random-weight model folder (``save_pretrained`` into ``OUT.tmp``, tokenizer files copied, a
README saying what the folder is, then one rename, so an interrupted run never leaves a
half-written ``OUT``). Speed does not depend on weight values: these folders serve benchmarks.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT / ".." / "shared"


def parse_args(doc, default_tokenizer, default_config=None, argv=None):
    """``--out`` (required), ``--tokenizer`` and ``--seed``; ``--config`` when the shape comes
    from a config.json (``default_config``)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    if default_config is not None:
        p.add_argument("--config", type=Path, default=default_config,
                       help="config.json of the shape")
    p.add_argument("--tokenizer", type=Path, default=default_tokenizer,
                   help="folder with the tokenizer files to copy")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the weights (default 0)")
    return p.parse_args(argv)


def already_there(out):
    """True (and says so) when ``out`` already holds a model.safetensors."""
    if (Path(out) / "model.safetensors").exists():
        print(f"{out}: already there", file=sys.stderr)
        return True
    return False


def write_model(out, model, tokenizer_dir, tokenizer_files, readme, tokenizer_config=None):
    """Saves ``model`` (safetensors) with the ``tokenizer_files`` found in ``tokenizer_dir``
    and ``readme`` as README.md into ``out``, atomically. ``tokenizer_config`` (a dict), when
    given, is written as tokenizer_config.json instead of the copied one."""
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for name in tokenizer_files:
        src = Path(tokenizer_dir) / name
        if src.exists():
            shutil.copy(src, tmp / name)
    if tokenizer_config is not None:
        (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=1))
    (tmp / "README.md").write_text(readme)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: {n / 1e6:.1f} M parameters", file=sys.stderr)
