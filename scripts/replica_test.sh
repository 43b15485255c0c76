#!/usr/bin/env bash
# Replicas behind HAProxy (issue 14): starts 3 `rerank serve` replicas of the real
# minilm-l6-sotu-ce reranker on free loopback ports (configured only by RERANK_* environment
# variables, with an API key) and HAProxy with deploy/haproxy.cfg in front of them, then
#   1. asks one replica directly for each of the 18 distinct requests of scripts/replica_load.py
#      (TEI /rerank, Cohere /v1/rerank and /v2/rerank) and records the answers;
#   2. sends that mix through HAProxy for 60 s with 8 concurrent clients; at 20 s one replica is
#      killed with SIGKILL, at 35 s another gets SIGTERM (drain: /ready 503 at once, requests
#      still answered for --drain-seconds, then exit 0; its exit code and drain time are checked);
#      every answer must be 200 and match the recorded one (same indices, scores within 1e-5);
#   3. measures requests/s of the same mix with 1, 2 and 3 healthy replicas (15 s each,
#      restarting the stopped ones) and prints a table.
# Any failed request, a wrong exit code or a missed probe fails the script (exit 1). It never
# skips: without the model, python3 or haproxy it prints "FAIL: cannot run ..." and exits 2.
# Env: RERANK_BIN (a built `rerank`; default: cargo build the release binary), RERANK_SHARED
# (default ../shared beside the clone). Loopback only; at most 3 replicas, HAProxy and one load
# generator run at once; about 2.5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${RERANK_SHARED:-$ROOT/../shared}
export RERANK_SHARED=$SHARED
MODEL=$SHARED/models/minilm-l6-sotu-ce
CFG=$ROOT/deploy/haproxy.cfg
LOADGEN=$ROOT/scripts/replica_load.py
DRAIN_SECONDS=5
LOAD_SECONDS=60
KILL_AT=20
TERM_AT=35
CLIENTS=8
BENCH_SECONDS=15
T_START=$(date +%s.%N)

cannot_run() { echo "FAIL: cannot run the replica test: $1" >&2; exit 2; }
[ -d "$MODEL" ] || cannot_run "$MODEL not found"
[ -f "$SHARED/data/state_of_the_union.txt" ] || cannot_run "$SHARED/data/state_of_the_union.txt not found"
command -v python3 >/dev/null || cannot_run "no python3"
command -v haproxy >/dev/null || cannot_run "no haproxy (Debian/Ubuntu: apt-get install -y haproxy)"
[ -f "$CFG" ] || cannot_run "$CFG not found"
haproxy -v 2>&1 | sed -n 1p
echo "python $(python3 -c 'import platform; print(platform.python_version())')," \
  "$(nproc) CPU(s): $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"

BIN=${RERANK_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --locked --release -p rerank-cli --quiet
  BIN=$ROOT/target/release/rerank
fi
[ -x "$BIN" ] || cannot_run "$BIN is not an executable"

WORK=$(mktemp -d)
PIDS=("" "" "")
HAPROXY_PID=""
LOAD_PID=""
cleanup() {
  local p
  for p in "$LOAD_PID" "${PIDS[@]}" "$HAPROXY_PID"; do
    if [ -n "$p" ]; then kill -KILL "$p" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  local f
  echo "FAIL: $1" >&2
  for f in "$WORK"/r*.log; do
    if [ -s "$f" ]; then echo "--- last lines of $(basename "$f")" >&2; tail -n 15 "$f" >&2; fi
  done
  if [ -s "$WORK/haproxy.log" ]; then
    echo "--- haproxy.log: health-check events and the requests retried or not answered 200" >&2
    grep -v '^127\.0\.0\.1:' "$WORK/haproxy.log" | tail -n 15 >&2 || true
    python3 "$LOADGEN" haproxy-log "$WORK/haproxy.log" --show 20 >&2 || true
  fi
  exit 1
}
loadgen() { python3 "$LOADGEN" "$@"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# Five distinct free loopback ports: 3 replicas, the HAProxy frontend, its stats page.
read -r -a PORTS <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))')"
HAP_URL=http://127.0.0.1:${PORTS[3]}
STATS_URL=http://127.0.0.1:${PORTS[4]}
replica_url() { echo "http://127.0.0.1:${PORTS[$1]}"; }
export RERANK_API_KEY="replica-$RANDOM$RANDOM"

# Replica i (0-based, HAProxy's r$((i+1))), configured by its environment only.
start_replica() {
  RERANK_RERANKER=$MODEL RERANK_HOST=127.0.0.1 RERANK_PORT=${PORTS[$1]} \
    RERANK_DRAIN_SECONDS=$DRAIN_SECONDS "$BIN" serve 2>>"$WORK/r$(( $1 + 1 )).log" &
  PIDS[$1]=$!
}
wait_ready() {
  local args=() i
  for i in "$@"; do args+=(--url "$(replica_url "$i")" --pid "${PIDS[$i]}"); done
  loadgen wait-ready "${args[@]}" --timeout 120 || fail "replica(s) $* not ready"
}
sleep_until() {  # seconds after $1 (a date +%s.%N)
  python3 -c "import sys, time; time.sleep(max(0.0, float(sys.argv[1]) + float(sys.argv[2]) - time.time()))" "$1" "$2"
}

echo "== 3 replicas of $(basename "$MODEL") on ports ${PORTS[0]} ${PORTS[1]} ${PORTS[2]}, drain ${DRAIN_SECONDS} s"
for i in 0 1 2; do start_replica "$i"; done
wait_ready 0 1 2
echo "== HAProxy $CFG on $HAP_URL (stats $STATS_URL/stats)"
haproxy -c -q -f "$CFG" || fail "haproxy -c rejects $CFG"
HAPROXY_BIND=127.0.0.1:${PORTS[3]} HAPROXY_STATS=127.0.0.1:${PORTS[4]} \
  RERANK_R1=127.0.0.1:${PORTS[0]} RERANK_R2=127.0.0.1:${PORTS[1]} RERANK_R3=127.0.0.1:${PORTS[2]} \
  haproxy -db -f "$CFG" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
loadgen wait-haproxy --stats "$STATS_URL" --up r1,r2,r3 || fail "HAProxy does not see the 3 replicas up"

echo "== reference answers, from r1 directly"
loadgen reference --url "$(replica_url 0)" --out "$WORK/reference.json" || fail "reference requests"

echo "== failover: ${LOAD_SECONDS} s of load through HAProxy, ${CLIENTS} clients; SIGKILL r1 at ${KILL_AT} s, SIGTERM r2 at ${TERM_AT} s"
HAPROXY_LINE=$(wc -l <"$WORK/haproxy.log")
T0=$(date +%s.%N)
# python3 itself in the background (not a shell function), so that $! is the load generator.
python3 "$LOADGEN" load --url "$HAP_URL" --reference "$WORK/reference.json" --duration "$LOAD_SECONDS" \
  --clients "$CLIENTS" --label failover --json "$WORK/failover.json" &
LOAD_PID=$!
sleep_until "$T0" "$KILL_AT"
kill -KILL "${PIDS[0]}"
RC=0; { wait "${PIDS[0]}"; } 2>/dev/null || RC=$?  # (no "Killed" job notice)
PIDS[0]=""
echo "  +$(elapsed "$T0" "$(date +%s.%N)") s: r1 killed with SIGKILL (exit status $RC)"
sleep_until "$T0" "$TERM_AT"
# The probe sends the SIGTERM itself (and writes its time), then polls r2's /ready.
loadgen drain-probe --url "$(replica_url 1)" --reference "$WORK/reference.json" --pid "${PIDS[1]}" \
  --term-time "$WORK/term-time" || fail "r2 does not drain as documented"
RC=0; wait "${PIDS[1]}" || RC=$?
T_EXIT=$(date +%s.%N)
T_TERM=$(cat "$WORK/term-time")
PIDS[1]=""
DRAIN=$(elapsed "$T_TERM" "$T_EXIT")
echo "  +$(elapsed "$T0" "$T_TERM") s: SIGTERM to r2; it exited with status $RC, ${DRAIN} s later (--drain-seconds $DRAIN_SECONDS)"
[ "$RC" -eq 0 ] || fail "r2 exited with status $RC after SIGTERM (want 0)"
RC=0; wait "$LOAD_PID" || RC=$?
LOAD_PID=""
loadgen stats --stats "$STATS_URL" || fail "HAProxy stats"
tail -n +"$((HAPROXY_LINE + 1))" "$WORK/haproxy.log" >"$WORK/haproxy-failover.log"
loadgen haproxy-log "$WORK/haproxy-failover.log" --show 8
[ "$RC" -eq 0 ] || fail "client requests failed during the failover (see above)"
loadgen wait-haproxy --stats "$STATS_URL" --up r3 --down r1,r2 --timeout 5 || fail "HAProxy did not take r1 and r2 out"
echo "failover: 0 failed client requests (SIGKILL of r1, drain of r2 in ${DRAIN} s with exit status 0)"

echo "== throughput: the same mix, ${CLIENTS} clients, ${BENCH_SECONDS} s with 1, 2 and 3 healthy replicas"
loadgen load --url "$HAP_URL" --reference "$WORK/reference.json" --duration "$BENCH_SECONDS" \
  --clients "$CLIENTS" --label 1 --json "$WORK/tp1.json" --pid "${PIDS[2]}" --pid "$HAPROXY_PID" || fail "requests failed with 1 replica"
start_replica 0
wait_ready 0
loadgen wait-haproxy --stats "$STATS_URL" --up r1,r3 --down r2 || fail "HAProxy does not see r1 back"
loadgen load --url "$HAP_URL" --reference "$WORK/reference.json" --duration "$BENCH_SECONDS" \
  --clients "$CLIENTS" --label 2 --json "$WORK/tp2.json" --pid "${PIDS[0]}" --pid "${PIDS[2]}" --pid "$HAPROXY_PID" || fail "requests failed with 2 replicas"
start_replica 1
wait_ready 1
loadgen wait-haproxy --stats "$STATS_URL" --up r1,r2,r3 || fail "HAProxy does not see r2 back"
loadgen load --url "$HAP_URL" --reference "$WORK/reference.json" --duration "$BENCH_SECONDS" \
  --clients "$CLIENTS" --label 3 --json "$WORK/tp3.json" --pid "${PIDS[0]}" --pid "${PIDS[1]}" --pid "${PIDS[2]}" --pid "$HAPROXY_PID" || fail "requests failed with 3 replicas"
loadgen stats --stats "$STATS_URL" || fail "HAProxy stats"
echo
loadgen table "$WORK/tp1.json" "$WORK/tp2.json" "$WORK/tp3.json"
echo
echo "Note: this machine has $(nproc) CPU core(s), shared by the replicas, HAProxy and the load"
echo "generator; each replica's engine already uses every core for a batch, so requests/s cannot"
echo "grow with replicas beyond what the cores allow. Replicas add availability here, throughput"
echo "only when each one gets cores of its own."
echo "replica_test: ok in $(elapsed "$T_START" "$(date +%s.%N)") s"
