#!/usr/bin/env bash
# Drop-in check with real third-party clients: starts `rerank serve` with the real
# minilm-l6-sotu-ce reranker and an API key on a free loopback port, runs the unmodified
# `cohere` Python SDK (v1 + v2 clients) and a plain TEI-style POST against it
# (scripts/cohere_sdk_check.py), then stops the server with SIGTERM and checks it exits 0.
#
# Never skips: when the model, python3, venv or `pip install cohere` is unavailable it prints
# "FAIL: cannot run the client check: ..." and exits 2, so CI cannot count a missing check as a pass.
# Env: RERANK_BIN (a built `rerank`; default: cargo build the dev binary), RERANK_SHARED
# (default ../shared beside the clone), COHERE_VENV (default target/cohere-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RERANK_SHARED:-$ROOT/../shared}
MODEL=$SHARED/models/minilm-l6-sotu-ce
REFERENCE=$SHARED/reference/expected-minilm-l6-sotu-ce.json
VENV=${COHERE_VENV:-$ROOT/target/cohere-venv}

cannot_run() { echo "FAIL: cannot run the client check: $1" >&2; exit 2; }
if [ ! -d "$MODEL" ]; then cannot_run "$MODEL not found"; fi
if ! command -v python3 >/dev/null; then cannot_run "no python3"; fi
if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"; cannot_run "python3 -m venv failed"
  fi
fi
if ! "$VENV/bin/python" -c "import cohere" 2>/dev/null; then
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check cohere >"$VENV.pip.log" 2>&1; then
    cannot_run "pip install cohere failed (see $VENV.pip.log)"
  fi
fi
echo "cohere SDK $("$VENV/bin/python" -c 'import cohere; print(cohere.__version__)')"

BIN=${RERANK_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --locked -p rerank-cli --quiet
  BIN=$ROOT/target/debug/rerank
fi
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY="check-$RANDOM$RANDOM"
LOG=$(mktemp)
"$BIN" serve --reranker "$MODEL" --host 127.0.0.1 --port "$PORT" --api-key "$KEY" 2>"$LOG" &
PID=$!
cleanup() { kill "$PID" 2>/dev/null || true; rm -f "$LOG"; }
trap cleanup EXIT
URL=http://127.0.0.1:$PORT
for _ in $(seq 1 300); do
  if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('$URL/health', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 "$PID" 2>/dev/null; then cat "$LOG"; echo "FAIL: the server exited before answering /health"; exit 1; fi
  sleep 0.2
done
RERANK_URL=$URL RERANK_API_KEY=$KEY RERANK_REFERENCE=$REFERENCE "$VENV/bin/python" scripts/cohere_sdk_check.py
kill -TERM "$PID"
set +e
wait "$PID"
RC=$?
set -e
trap - EXIT
if [ "$RC" -ne 0 ]; then cat "$LOG"; rm -f "$LOG"; echo "FAIL: rerank serve exited with $RC after SIGTERM"; exit 1; fi
rm -f "$LOG"
echo "cohere_sdk_check: ok (server stopped cleanly on SIGTERM)"
