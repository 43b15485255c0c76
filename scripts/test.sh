#!/usr/bin/env bash
# The test command (README "Run the tests"; `.ci/run` calls it on a clean clone with CI=true).
# Everything fails loudly, nothing is skipped:
#   1. cargo fmt --check, clippy with warnings denied, rustdoc with warnings denied;
#   2. every Rust test of the workspace in ONE release build, the #[ignore]d heavy ones included
#      (whole-set SOTU-ICT eval against its reference, real-size random models, the 20k-vector index);
#   3. the Python package (crates/rerank-py/ci.sh: pip/maturin build reusing the release artifacts,
#      pytest against ../shared/reference);
#   4. real third-party clients against `rerank serve` (scripts/cohere_sdk_check.sh: the cohere SDK v1/v2
#      and a TEI-style request); it fails, never skips, when its client cannot be installed;
#   5. three `rerank serve` replicas behind HAProxy (scripts/replica_test.sh, deploy/haproxy.cfg):
#      60 s of mixed load with one replica killed and one drained, then requests/s with 1, 2 and 3
#      replicas; any failed request fails it, and it fails, never skips, without haproxy;
#   6. the playground page of `rerank serve` in headless Chromium (scripts/playground_check.sh,
#      Playwright from PyPI driving /usr/bin/chromium): it fails, never skips, without chromium.
# Needs ../shared beside the clone, the Rust toolchain, python3 with venv, haproxy and chromium
# (.ci/run installs them with apt-get), and PyPI/crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d ../shared/models ]; then
  echo "error: ../shared (models, reference outputs, data) must sit beside the clone" >&2
  exit 1
fi
t0=$(date +%s)
step() { echo; echo "== $1 (+$(( $(date +%s) - t0 )) s)"; }

step "cargo fmt --check"
cargo fmt --all --check
# clippy and rustdoc run in the release profile like the tests: build scripts (the C/C++ of
# usearch, onig, esaxx) and proc-macros are then compiled once for all three steps.
step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked --release -- -D warnings
step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --release --quiet
step "cargo test --release, ignored tests included"
cargo test --workspace --locked --release -- --include-ignored
step "Python package"
RERANK_PY_PROFILE=release crates/rerank-py/ci.sh
step "third-party clients against rerank serve"
RERANK_BIN="$PWD/target/release/rerank" scripts/cohere_sdk_check.sh
step "replicas behind HAProxy (kill, drain, requests/s)"
RERANK_BIN="$PWD/target/release/rerank" scripts/replica_test.sh
step "playground page in headless Chromium"
RERANK_BIN="$PWD/target/release/rerank" scripts/playground_check.sh
step "all checks passed"
