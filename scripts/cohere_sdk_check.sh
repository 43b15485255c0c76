#!/usr/bin/env bash
# Drop-in check with real third-party clients: starts `rerank serve` with the real
# minilm-l6-sotu-ce reranker and an API key on a free loopback port, runs the unmodified
# `cohere` Python SDK (v1 + v2 clients) and a plain TEI-style POST against it
# (scripts/cohere_sdk_check.py), then LangChain's InfinityRerank (langchain-community +
# infinity_client) and CohereRerank (langchain-cohere) on the same documents
# (scripts/langchain_rerank_check.py), then stops the server with SIGTERM and checks it exits 0.
# LangChain gets a venv of its own: langchain-cohere pins cohere < 6, and the cohere check
# should run the newest SDK.
#
# Never skips: when the model, python3, venv or a `pip install` is unavailable it prints
# "FAIL: cannot run the client check: ..." and exits 2, so CI cannot count a missing check as a pass.
# Env: RERANK_BIN (a built `rerank`; default: cargo build the dev binary), RERANK_SHARED
# (default ../shared beside the clone), COHERE_VENV (default target/cohere-venv), LANGCHAIN_VENV
# (default target/langchain-venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RERANK_SHARED:-$ROOT/../shared}
MODEL=$SHARED/models/minilm-l6-sotu-ce
REFERENCE=$SHARED/reference/expected-minilm-l6-sotu-ce.json
VENV=${COHERE_VENV:-$ROOT/target/cohere-venv}
LC_VENV=${LANGCHAIN_VENV:-$ROOT/target/langchain-venv}

cannot_run() { echo "FAIL: cannot run the client check: $1" >&2; exit 2; }
if [ ! -d "$MODEL" ]; then cannot_run "$MODEL not found"; fi
if ! command -v python3 >/dev/null; then cannot_run "no python3"; fi
# venv_with VENV IMPORTS PACKAGES...: a venv where `import IMPORTS` works, pip-installing PACKAGES.
venv_with() {
  local venv=$1 imports=$2
  shift 2
  if [ ! -x "$venv/bin/python" ]; then
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      rm -rf "$venv"; cannot_run "python3 -m venv $venv failed"
    fi
  fi
  if ! "$venv/bin/python" -c "import $imports" 2>/dev/null; then
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >"$venv.pip.log" 2>&1; then
      cannot_run "pip install $* failed (see $venv.pip.log)"
    fi
  fi
}
venv_with "$VENV" cohere cohere
echo "cohere SDK $("$VENV/bin/python" -c 'import cohere; print(cohere.__version__)')"
venv_with "$LC_VENV" "langchain_community, infinity_client, langchain_cohere" \
  langchain-community infinity_client langchain-cohere
echo "LangChain: $("$LC_VENV/bin/python" -c '
from importlib.metadata import version
print(", ".join(p + " " + version(p) for p in
      ["langchain-community", "infinity_client", "langchain-cohere", "cohere"]))')"

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
RERANK_URL=$URL RERANK_API_KEY=$KEY RERANK_REFERENCE=$REFERENCE "$LC_VENV/bin/python" scripts/langchain_rerank_check.py
kill -TERM "$PID"
set +e
wait "$PID"
RC=$?
set -e
trap - EXIT
if [ "$RC" -ne 0 ]; then cat "$LOG"; rm -f "$LOG"; echo "FAIL: rerank serve exited with $RC after SIGTERM"; exit 1; fi
rm -f "$LOG"
echo "cohere_sdk_check: ok (server stopped cleanly on SIGTERM)"
