#!/usr/bin/env bash
# The playground page (`GET /` of `rerank serve`, issue 15 item 4) in a real headless browser:
# indexes the 2022 State of the Union speech (../shared/data/state_of_the_union.txt) with the
# real all-MiniLM-L6-v2 bi-encoder, starts `rerank serve` with that index, the real
# minilm-l6-sotu-ce reranker and an API key on a free loopback port, and drives Debian's
# Chromium (/usr/bin/chromium, headless) with Playwright for Python
# (scripts/playground_check.py): the page loads without the key, a search for "What is the
# plan for the economy?" with the key shows the first-stage list and 3 reranked results, the
# documents mode reproduces the PyTorch reference order, a wrong key shows the JSON error.
# The screenshot goes to $PLAYGROUND_OUT/playground.png (default target/playground/). Then it
# stops the server with SIGTERM and checks it exits 0.
#
# Playwright never downloads a browser here (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1; the script
# launches the system Chromium by path). Never skips: without chromium, the models, python3,
# venv or `pip install playwright` it prints "FAIL: cannot run the playground check: ..." and
# exits 2. Bounded: the browser part has 180 s (`timeout`), the server start 120 s.
# Env: RERANK_BIN (a built `rerank`; default: cargo build the release binary), RERANK_SHARED
# (default ../shared beside the clone), CHROMIUM (default /usr/bin/chromium), PLAYGROUND_VENV
# (default target/playground-venv), PLAYGROUND_OUT (default target/playground).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RERANK_SHARED:-$ROOT/../shared}
RERANKER=$SHARED/models/minilm-l6-sotu-ce
EMBEDDER=$SHARED/models/all-MiniLM-L6-v2
SPEECH=$SHARED/data/state_of_the_union.txt
REFERENCE=$SHARED/reference/expected-minilm-l6-sotu-ce.json
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
VENV=${PLAYGROUND_VENV:-$ROOT/target/playground-venv}
OUT=${PLAYGROUND_OUT:-$ROOT/target/playground}
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

cannot_run() { echo "FAIL: cannot run the playground check: $1" >&2; exit 2; }
for f in "$RERANKER" "$EMBEDDER" "$SPEECH" "$REFERENCE"; do
  if [ ! -e "$f" ]; then cannot_run "$f not found"; fi
done
if [ ! -x "$CHROMIUM" ]; then cannot_run "$CHROMIUM not found (apt-get install chromium; .ci/run does)"; fi
if ! "$CHROMIUM" --headless --no-sandbox --disable-gpu --dump-dom about:blank >/dev/null 2>&1; then
  cannot_run "$CHROMIUM does not start headless"
fi
if ! command -v python3 >/dev/null; then cannot_run "no python3"; fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then rm -rf "$VENV"; cannot_run "python3 -m venv $VENV failed"; fi
fi
if ! "$VENV/bin/python" -c "import playwright.sync_api" 2>/dev/null; then
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check playwright >"$VENV.pip.log" 2>&1; then
    cannot_run "pip install playwright failed (see $VENV.pip.log)"
  fi
fi
echo "$("$CHROMIUM" --version 2>/dev/null | tail -n 1), playwright $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("playwright"))')"

BIN=${RERANK_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --locked --release -p rerank-cli --quiet
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/rerank
fi
WORK=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
"$BIN" index --index "$WORK/index" --embedder "$EMBEDDER" "$SPEECH" 2>"$WORK/index.log" \
  || { cat "$WORK/index.log"; echo "FAIL: rerank index failed" >&2; exit 1; }
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY="playground-$RANDOM$RANDOM"
"$BIN" serve --reranker "$RERANKER" --embedder "$EMBEDDER" --index "$WORK/index" \
  --host 127.0.0.1 --port "$PORT" --api-key "$KEY" 2>"$WORK/serve.log" &
PID=$!
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 600); do
  if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$URL/health', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then cat "$WORK/serve.log"; echo "FAIL: the server exited before answering /health" >&2; exit 1; fi
  sleep 0.2
done
mkdir -p "$OUT"
RERANK_URL=$URL RERANK_API_KEY=$KEY RERANK_REFERENCE=$REFERENCE CHROMIUM=$CHROMIUM PLAYGROUND_OUT=$OUT \
  timeout 180 "$VENV/bin/python" scripts/playground_check.py \
  || { tail -n 20 "$WORK/serve.log"; echo "FAIL: the playground check failed" >&2; exit 1; }
kill -TERM "$PID"
set +e
wait "$PID"
RC=$?
set -e
PID=""
if [ "$RC" -ne 0 ]; then cat "$WORK/serve.log"; echo "FAIL: rerank serve exited with $RC after SIGTERM" >&2; exit 1; fi
echo "playground_check: ok (screenshot $OUT/playground.png; server stopped cleanly on SIGTERM)"
