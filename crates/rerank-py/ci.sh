#!/usr/bin/env bash
# CI for the Python package (called by .ci/run after `cargo test --workspace`): builds the
# extension the way users install it (pip + maturin as PEP 517 backend), in the workspace's dev
# profile so that it reuses what `cargo test` already compiled (the engine, kernels and all
# dependencies are opt-level 3 in that profile) instead of compiling the workspace again in
# release; installs it with numpy, pytest, langchain-core and langchain-classic (no torch) in a
# fresh venv and runs the pytest suite against ../shared/reference.
#
# Env: RERANK_PY_VENV (default target/py-ci-venv), PYTHON (default python3),
#      RERANK_PY_PROFILE (default dev; "release" for a release build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${RERANK_PY_VENV:-$ROOT/target/py-ci-venv}"
PROFILE="${RERANK_PY_PROFILE:-dev}"
start=$(date +%s)

rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
export PATH="$VENV/bin:$PATH"  # the PEP 517 backend runs the `maturin` executable
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.9.4,<2" numpy pytest langchain-core langchain-classic
MATURIN_PEP517_ARGS="--profile $PROFILE --locked" \
  "$VENV/bin/python" -m pip install --disable-pip-version-check --no-cache-dir --no-build-isolation "$ROOT/crates/rerank-py"
echo "rerank-py: venv and extension ready in $(( $(date +%s) - start )) s" >&2

cd "$ROOT/crates/rerank-py"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests
echo "rerank-py: ci.sh took $(( $(date +%s) - start )) s" >&2
