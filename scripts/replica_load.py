#!/usr/bin/env python3
"""Load generator and helpers of scripts/replica_test.sh (rerank serve replicas behind HAProxy).

Standard library only (threading + http.client), loopback only.

The request set is fixed: 6 queries, each with 8 passages of ../shared/data/state_of_the_union.txt
(blank-line-separated paragraphs), each sent in 3 shapes — TEI `POST /rerank {query, texts}`,
Cohere `POST /v1/rerank {model, query, documents, top_n: 3}` and `POST /v2/rerank {model, query,
documents}` — so 18 distinct requests whose answers can be compared.

Commands:
  reference   --url URL --out FILE       ask one replica every distinct request, store the answers
  load        --url URL --reference FILE --duration S --clients N [--json FILE] [--label L] [--pid P...]
              N threads send the mixed set for S seconds, one new connection per request; every
              answer must be 200 and match the reference (same indices, scores within 1e-5).
              Prints the counts (and, with --pid, the CPU seconds of those processes, of this one
              and of the rest of the machine); exit 1 on any failure (non-200, connection error,
              mismatch).
  wait-ready  --url URL... [--pid PID...] [--timeout S]   until every /ready is 200
  wait-haproxy --stats URL --up r1,r3 [--down r2] [--timeout S]   until HAProxy shows that
  stats       --stats URL                 per-replica HAProxy counters (status, requests, retries)
  drain-probe --url URL --reference FILE --pid PID --term-time FILE   sends SIGTERM to PID (and
              writes its Unix time to FILE); /ready must then be 503 within 1 s and a request
              sent directly must still be answered (and match)
  haproxy-log FILE [--show N]             requests HAProxy retried or did not answer 200 (its log)
  table       FILE...                     the requests/s table of `load --json` results
Env: RERANK_API_KEY (sent as a bearer token when set), RERANK_SHARED (default ../shared).
"""

import argparse
import csv
import http.client
import io
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load_test import SHARED, request  # noqa: E402  (one request on a new connection)

MODEL = "minilm-l6-sotu-ce"
TOLERANCE = 1e-5
QUERIES = [
    "What is the plan for the economy?",
    "How are we helping Ukraine?",
    "What will be done about inflation and prices?",
    "What is the plan to beat cancer?",
    "How will jobs come back to America?",
    "What did the president say about the police and gun violence?",
]
DOCS_PER_QUERY = 8


def key_headers():
    key = os.environ.get("RERANK_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def request_set():
    """The 18 distinct (name, path, body) requests."""
    with open(os.path.join(SHARED, "data", "state_of_the_union.txt"), encoding="utf-8") as f:
        paragraphs = [p.strip() for p in f.read().split("\n\n") if len(p.strip()) > 80]
    reqs = []
    for q, query in enumerate(QUERIES):
        # A fixed, spread-out choice of passages per query (the same on every run).
        docs = [paragraphs[(q * 19 + j * 13) % len(paragraphs)] for j in range(DOCS_PER_QUERY)]
        reqs.append((f"tei/q{q}", "/rerank", {"query": query, "texts": docs, "truncate": True}))
        reqs.append((f"v1/q{q}", "/v1/rerank",
                     {"model": MODEL, "query": query, "documents": docs, "top_n": 3}))
        reqs.append((f"v2/q{q}", "/v2/rerank", {"model": MODEL, "query": query, "documents": docs}))
    return reqs


def split_url(url):
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"loopback only, not {url}")
    return u.hostname, u.port


def post(host, port, path, body, timeout=60):
    """One POST on a new connection → (status, parsed JSON or raw bytes)."""
    status, data, _ = request(host, port, "POST", path, body, key_headers(), timeout=timeout)
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data


def get(host, port, path, timeout=5):
    status, data, _ = request(host, port, "GET", path, timeout=timeout)
    return status, data


def scores(path, answer):
    """{index: score} of an answer of either shape."""
    if path == "/rerank":
        return {int(x["index"]): float(x["score"]) for x in answer}
    return {int(x["index"]): float(x["relevance_score"]) for x in answer["results"]}


def mismatch(expected, got):
    """None when `got` ({index: score}) matches `expected` (keys as strings from JSON)."""
    exp = {int(k): v for k, v in expected.items()}
    if set(exp) != set(got):
        return f"indices {sorted(got)} vs {sorted(exp)}"
    worst = max(abs(exp[i] - got[i]) for i in exp)
    if worst > TOLERANCE:
        return f"score differs by {worst:.3g}"
    return None


def cmd_reference(args):
    host, port = split_url(args.url)
    out = {}
    for name, path, body in request_set():
        status, answer = post(host, port, path, body)
        if status != 200:
            sys.exit(f"reference {name}: HTTP {status} {answer!r:.300}")
        out[name] = scores(path, answer)
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(f"reference: {len(out)} distinct requests answered by {args.url} directly")


def cpu_snapshot(pids):
    """(machine busy seconds, {pid: CPU seconds}, this process's CPU seconds) from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(v[:8]) - v[3] - v[4]) / tick  # user..steal, without idle and iowait
    per_pid = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            per_pid[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    t = os.times()
    return busy, per_pid, t.user + t.system


def cmd_load(args):
    host, port = split_url(args.url)
    cpu0 = cpu_snapshot(args.pid)
    with open(args.reference) as f:
        reference = json.load(f)
    reqs = request_set()
    lock = threading.Lock()
    counts = {"ok": 0, "non_200": 0, "conn_error": 0, "mismatch": 0}
    per_route = {}
    latencies = []
    examples = []
    t0 = time.monotonic()
    deadline = t0 + args.duration

    def client(c):
        i = c * 5  # each client starts at another place of the set
        local_lat = []
        while time.monotonic() < deadline:
            name, path, body = reqs[i % len(reqs)]
            i += 1
            start = time.monotonic()
            kind, detail = "ok", None
            try:
                status, answer = post(host, port, path, body, timeout=60)
                if status != 200:
                    kind, detail = "non_200", f"HTTP {status} {answer!r:.200}"
                else:
                    try:
                        detail = mismatch(reference[name], scores(path, answer))
                    except (KeyError, TypeError, ValueError) as e:
                        detail = f"unreadable answer: {e!r}"
                    if detail:
                        kind = "mismatch"
            except (OSError, http.client.HTTPException) as e:
                kind, detail = "conn_error", repr(e)
            end = time.monotonic()
            local_lat.append(end - start)
            route = name.split("/")[0]
            with lock:
                counts[kind] += 1
                r = per_route.setdefault(route, {"ok": 0, "failed": 0})
                r["ok" if kind == "ok" else "failed"] += 1
                if kind != "ok" and len(examples) < 10:
                    examples.append(f"t={start - t0:.2f}s {name}: {kind}: {detail}")
        with lock:
            latencies.extend(local_lat)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    cpu1 = cpu_snapshot(args.pid)
    total = sum(counts.values())
    failed = total - counts["ok"]
    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0.0
    result = {
        "label": args.label, "clients": args.clients, "seconds": round(elapsed, 2),
        "requests": total, "failed": failed, **counts,
        "req_per_s": round(counts["ok"] / elapsed, 1),
        "p50_ms": round(pct(0.50), 1), "p99_ms": round(pct(0.99), 1), "max_ms": round(pct(1.0), 1),
        "routes": per_route,
    }
    print(f"load[{args.label}]: {total} requests in {elapsed:.1f} s by {args.clients} clients: "
          f"{counts['ok']} ok, {failed} failed (non-200 {counts['non_200']}, connection errors "
          f"{counts['conn_error']}, mismatches {counts['mismatch']}); {result['req_per_s']} req/s; "
          f"latency p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    print("  by route: " + ", ".join(f"{k} {v['ok']} ok / {v['failed']} failed"
                                     for k, v in sorted(per_route.items())))
    if args.pid:
        busy = cpu1[0] - cpu0[0]
        servers = sum(cpu1[1][p] - cpu0[1][p] for p in cpu1[1] if p in cpu0[1])
        own = cpu1[2] - cpu0[2]
        cores = os.cpu_count() or 1
        result["cpu"] = {"cores": cores, "busy_core_s": round(busy, 1), "servers_core_s": round(servers, 1),
                         "loadgen_core_s": round(own, 1), "other_core_s": round(busy - servers - own, 1)}
        print(f"  CPU: {busy:.1f} of {cores * elapsed:.1f} core-seconds busy: replicas + HAProxy "
              f"{servers:.1f}, this load generator {own:.1f}, other processes {busy - servers - own:.1f}")
    for e in examples:
        print("  failure:", e)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    if failed or total == 0:
        sys.exit(1)


def cmd_wait_ready(args):
    targets = [split_url(u) for u in args.url]
    deadline = time.monotonic() + args.timeout
    pending = list(targets)
    while pending:
        for pid in args.pid:
            if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                sys.exit(f"wait-ready: process {pid} exited before /ready answered 200")
        still = []
        for host, port in pending:
            try:
                status, _ = get(host, port, "/ready", timeout=2)
            except (OSError, http.client.HTTPException):
                status = None
            if status != 200:
                still.append((host, port))
        pending = still
        if pending:
            if time.monotonic() > deadline:
                sys.exit(f"wait-ready: no 200 from /ready of {pending} within {args.timeout} s")
            time.sleep(0.1)


def haproxy_servers(stats_url):
    host, port = split_url(stats_url)
    status, data = get(host, port, "/stats;csv")
    if status != 200:
        raise OSError(f"stats: HTTP {status}")
    text = data.decode().lstrip("# ")
    rows = list(csv.DictReader(io.StringIO(text)))
    return {r["svname"]: r for r in rows
            if r["pxname"] == "rerank_replicas" and r["svname"] not in ("FRONTEND", "BACKEND")}


def cmd_wait_haproxy(args):
    up = [s for s in args.up.split(",") if s]
    down = [s for s in (args.down or "").split(",") if s]
    deadline = time.monotonic() + args.timeout
    while True:
        try:
            servers = haproxy_servers(args.stats)
            state = {name: s["status"] for name, s in servers.items()}
            if all(state.get(n, "").startswith("UP") and not state[n].startswith("UP ") for n in up) \
                    and all(state.get(n, "").startswith("DOWN") for n in down):
                return
        except (OSError, http.client.HTTPException) as e:
            state = repr(e)
        if time.monotonic() > deadline:
            sys.exit(f"wait-haproxy: want up {up} down {down}, HAProxy shows {state}")
        time.sleep(0.1)


def cmd_stats(args):
    servers = haproxy_servers(args.stats)
    for name, s in sorted(servers.items()):
        print(f"  haproxy {name}: {s['status']:<5} requests {s['stot']:>6}, connection errors "
              f"{s['econ'] or 0}, response errors {s['eresp'] or 0}, retries {s['wretr'] or 0}, "
              f"redispatches {s['wredis'] or 0}, downs {s['chkdown'] or 0}")


def cmd_drain_probe(args):
    host, port = split_url(args.url)
    status, _ = get(host, port, "/ready", timeout=5)
    if status != 200:
        sys.exit(f"drain-probe: /ready is {status} before the SIGTERM")
    t0 = time.time()
    os.kill(args.pid, signal.SIGTERM)
    with open(args.term_time, "w") as f:
        f.write(f"{t0:.6f}\n")
    while True:
        status, ready_body = get(host, port, "/ready", timeout=2)
        if status == 503:
            break
        if time.time() - t0 > 1.0:
            sys.exit(f"drain-probe: /ready still {status} 1 s after SIGTERM")
        time.sleep(0.01)
    ready_ms = (time.time() - t0) * 1000
    with open(args.reference) as f:
        reference = json.load(f)
    name, path, body = request_set()[0]
    status, answer = post(host, port, path, body)
    if status != 200:
        sys.exit(f"drain-probe: a request sent directly while draining got HTTP {status}")
    bad = mismatch(reference[name], scores(path, answer))
    if bad:
        sys.exit(f"drain-probe: the answer while draining differs: {bad}")
    print(f"  draining: /ready 503 within {ready_ms:.0f} ms of SIGTERM (body {ready_body.decode()[:80]}); "
          "a request sent to it directly while draining: 200, same answer")


def cmd_haproxy_log(args):
    """Requests of an `option httplog` log that HAProxy retried or did not answer 200."""
    retried, bad, total = [], [], 0
    with open(args.file, errors="replace") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 13 or not fields[-1].startswith("HTTP/") or "/" not in fields[3]:
                continue
            total += 1
            status, retries = fields[5], fields[10].rsplit("/", 1)[-1]
            if status != "200":
                bad.append(line.rstrip())
            if retries not in ("0", ""):
                retried.append(line.rstrip())
    print(f"  haproxy log: {total} requests, {len(retried)} retried (\"+\" = on another replica), "
          f"{len(bad)} not answered 200")
    for line in (bad + retried)[: args.show]:
        print("   ", line)


def cmd_table(args):
    rows = []
    for path in args.files:
        with open(path) as f:
            rows.append(json.load(f))
    print("| healthy replicas | clients | seconds | requests | failed | req/s | p50 ms | p99 ms "
          "| CPU busy, core-s | of it other processes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cpu = r.get("cpu", {})
        print(f"| {r['label']} | {r['clients']} | {r['seconds']} | {r['requests']} | {r['failed']} "
              f"| {r['req_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {cpu.get('busy_core_s', '-')} "
              f"| {cpu.get('other_core_s', '-')} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("reference")
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("load")
    p.add_argument("--url", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--label", default="load")
    p.add_argument("--json")
    p.add_argument("--pid", type=int, action="append", default=[],
                   help="replica / HAProxy PIDs whose CPU time to report")
    p = sub.add_parser("wait-ready")
    p.add_argument("--url", action="append", required=True)
    p.add_argument("--pid", type=int, action="append", default=[])
    p.add_argument("--timeout", type=float, default=60)
    p = sub.add_parser("wait-haproxy")
    p.add_argument("--stats", required=True)
    p.add_argument("--up", required=True)
    p.add_argument("--down")
    p.add_argument("--timeout", type=float, default=15)
    p = sub.add_parser("stats")
    p.add_argument("--stats", required=True)
    p = sub.add_parser("drain-probe")
    p.add_argument("--url", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--pid", type=int, required=True, help="the replica to send SIGTERM to")
    p.add_argument("--term-time", required=True, help="file to write the Unix time of the SIGTERM to")
    p = sub.add_parser("haproxy-log")
    p.add_argument("file")
    p.add_argument("--show", type=int, default=5)
    p = sub.add_parser("table")
    p.add_argument("files", nargs="+")
    args = ap.parse_args()
    {"reference": cmd_reference, "load": cmd_load, "wait-ready": cmd_wait_ready,
     "wait-haproxy": cmd_wait_haproxy, "stats": cmd_stats, "drain-probe": cmd_drain_probe,
     "table": cmd_table, "haproxy-log": cmd_haproxy_log}[args.cmd](args)


if __name__ == "__main__":
    main()
