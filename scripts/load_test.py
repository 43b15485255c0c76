#!/usr/bin/env python3
"""Bounded loopback load test of `rerank serve` (issue 13, "Done when"). Standard library only.

Phases (each prints one line of figures):
  1. fuzz     N fuzzed requests over every route (default 2,000): counts aborts (server gone),
              non-JSON error answers, 5xx answers, connection failures; /health must be 200
              after every 50 requests.
  2. idle     300 idle TCP connections held open; /health latency measured 20 times (new
              connection each) while they are open (target: under 100 ms).
  3. memory   32 concurrent /v1/rerank requests each with one 1.9 MB document; server RSS from
              /proc/PID/status before, peak (sampled every 20 ms) and 3 s after.
  4. longq    one /search with a 1.9 MB query while small /v1/rerank requests run; their latency.

Without --url it builds an index of ../shared/data/state_of_the_union.txt with tiny-bert-embedder
and starts `rerank serve --reranker tiny-bert-ce --index ...` on a free loopback port itself
(binary: --binary, default target/release/rerank). With --url it only needs the server's PID for
phase 3 (--pid; phase 3 reports no RSS without it). Exit status 1 when a target is missed.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("RERANK_SHARED", os.path.join(os.path.dirname(REPO), "shared"))
WORDS = ("economy jobs inflation Ukraine bridges cancer schools taxes workers families "
         "prices energy climate health care veterans democracy freedom").split()


def request(host, port, method, path, body=None, headers=None, timeout=60):
    """One request on a fresh connection → (status, body bytes, seconds)."""
    t = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        h = {"content-type": "application/json"}
        h.update(headers or {})
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        return r.status, data, time.monotonic() - t
    finally:
        conn.close()


def is_json_error(data):
    try:
        v = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(v, dict) and isinstance(v.get("error"), str) and isinstance(v.get("error_type"), str)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fuzz_case(rng):
    """A (method, path, body, headers) drawn from valid, malformed and hostile requests."""
    routes = ["/rerank", "/embed", "/predict", "/v1/rerank", "/v2/rerank", "/v1/embeddings", "/search"]
    path = rng.choice(routes + ["/health", "/info", "/metrics", "/openapi.json", "/nope", "/v3/rerank"])
    nums = [0, -1, 1, 2, 7, 10**3, 10**6, 4_000_000_000, 2**63 - 1, -(2**63), 2**64, 1.5, "3", None, True]
    text = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40)))
    weird = ["", " ", "\u0000", "\ud800", "é" * 300, "\u202e" * 50, "😀" * 100, "a" * 20000]
    value = lambda: rng.choice([text(), rng.choice(weird), rng.choice(nums), [], {}, [text()]])
    kind = rng.random()
    method = "POST" if path in routes else "GET"
    headers = {}
    if kind < 0.05:
        method = rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
    if kind < 0.10:
        body = rng.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"query":', os.urandom(64)])
    elif kind < 0.15:
        headers = {"content-type": rng.choice(["text/plain", "application/x-www-form-urlencoded", ""])}
        body = {"query": text(), "texts": [text()]}
    else:
        body = {
            "query": value() if rng.random() < 0.3 else text(),
            "texts": [value() if rng.random() < 0.2 else text() for _ in range(rng.randint(0, 6))],
            "documents": [value() if rng.random() < 0.2 else text() for _ in range(rng.randint(0, 6))],
            "inputs": value() if rng.random() < 0.5 else [text(), text()],
            "input": value() if rng.random() < 0.5 else text(),
        }
        for k in ["top_n", "top_k", "max_tokens_per_doc", "dimensions", "truncate", "raw_scores",
                  "return_text", "normalize", "retriever", "model", "encoding_format", "return_documents"]:
            if rng.random() < 0.3:
                body[k] = rng.choice(nums + ["bm25", "dense", "hybrid", "base64", "float", "x"])
        if rng.random() < 0.1:
            body = rng.choice([[body], "string", 12, None])
    if rng.random() < 0.03:
        headers["x-big"] = "a" * rng.choice([100, 70_000])
    if rng.random() < 0.03:
        path = path + "?" + "q=" + "a" * rng.choice([10, 9000])
    return method, path, body, headers


def phase_fuzz(host, port, n, seed, alive):
    rng = random.Random(seed)
    counts = {"sent": 0, "5xx": 0, "non_json_error": 0, "conn_fail": 0, "health_fail": 0}
    examples = []
    for i in range(n):
        method, path, body, headers = fuzz_case(rng)
        try:
            status, data, _ = request(host, port, method, path, body, headers, timeout=30)
            counts["sent"] += 1
            if status >= 500:
                counts["5xx"] += 1
                examples.append((status, method, path, data[:200]))
            if status >= 400 and not is_json_error(data):
                counts["non_json_error"] += 1
                examples.append((status, method, path, data[:200]))
        except (OSError, http.client.HTTPException) as e:
            counts["conn_fail"] += 1
            examples.append(("conn", method, path, repr(e)[:200]))
        if i % 50 == 49:
            try:
                st, _, _ = request(host, port, "GET", "/health", timeout=10)
                counts["health_fail"] += st != 200
            except (OSError, http.client.HTTPException):
                counts["health_fail"] += 1
    counts["aborts"] = 0 if alive() else 1
    print("fuzz:", json.dumps(counts))
    for e in examples[:10]:
        print("  example:", e)
    return counts["aborts"] == 0 and counts["5xx"] == 0 and counts["non_json_error"] == 0 \
        and counts["health_fail"] == 0 and counts["conn_fail"] == 0


def phase_idle(host, port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=5)
        socks.append(s)
    lat = []
    fails = 0
    for _ in range(20):
        try:
            st, _, dt = request(host, port, "GET", "/health", timeout=5)
            lat.append(dt)
            fails += st != 200
        except (OSError, http.client.HTTPException):
            fails += 1
    for s in socks:
        s.close()
    lat.sort()
    worst = lat[-1] * 1000 if lat else float("inf")
    print(f"idle: {n} idle connections open; /health 20 times: {fails} failed, "
          f"median {lat[len(lat) // 2] * 1000:.1f} ms, max {worst:.1f} ms" if lat else "idle: no answer")
    return fails == 0 and worst < 100


def big_text(rng, size):
    parts, total = [], 0
    while total < size:
        w = rng.choice(WORDS)
        parts.append(w)
        total += len(w) + 1
    return " ".join(parts)[:size]


def phase_memory(host, port, pid, n, size):
    rng = random.Random(1)
    doc = big_text(rng, size)
    body = json.dumps({"query": "economy", "documents": [doc]}).encode()
    before = rss_kb(pid) if pid else None
    peak = [before or 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            r = rss_kb(pid) if pid else None
            if r:
                peak[0] = max(peak[0], r)
            time.sleep(0.02)

    results = []
    lock = threading.Lock()

    def one():
        try:
            st, data, dt = request(host, port, "POST", "/v1/rerank", body, timeout=600)
        except (OSError, http.client.HTTPException) as e:
            st, data, dt = "conn", repr(e).encode(), 0
        with lock:
            results.append((st, dt))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.monotonic() - t
    time.sleep(3)
    done.set()
    sampler.join()
    after = rss_kb(pid) if pid else None
    statuses = {}
    for st, _ in results:
        statuses[str(st)] = statuses.get(str(st), 0) + 1
    mb = lambda kb: f"{kb / 1024:.0f} MB" if kb else "n/a"
    print(f"memory: {n} x {size / 1e6:.1f} MB documents in {wall:.1f} s, statuses {statuses}; "
          f"RSS before {mb(before)}, peak {mb(peak[0] if pid else None)}, after 3 s {mb(after)}")
    return all(st != "conn" and (isinstance(st, int) and st < 500) for st, _ in results)


def phase_long_query(host, port, size, small):
    rng = random.Random(2)
    q = big_text(rng, size)
    out = {}

    def long_one():
        try:
            st, _, dt = request(host, port, "POST", "/search", {"query": q, "top_k": 10, "top_n": 3}, timeout=600)
        except (OSError, http.client.HTTPException) as e:
            st, dt = repr(e), 0
        out["long"] = (st, dt)

    th = threading.Thread(target=long_one)
    th.start()
    time.sleep(0.2)
    lat, statuses = [], {}
    for i in range(small):
        try:
            st, _, dt = request(host, port, "POST", "/v1/rerank",
                                {"query": "economy", "documents": ["jobs and the economy", "bridges"]}, timeout=120)
        except (OSError, http.client.HTTPException):
            st, dt = "conn", float("inf")
        statuses[str(st)] = statuses.get(str(st), 0) + 1
        lat.append(dt)
    th.join()
    lat.sort()
    print(f"longq: /search with a {size / 1e6:.1f} MB query → {out.get('long')}; {small} small /v1/rerank "
          f"alongside: statuses {statuses}, median {lat[len(lat) // 2] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")
    return lat[-1] < 1.0


def start_server(binary, workdir, extra):
    models = os.path.join(SHARED, "models")
    idx = os.path.join(workdir, "index")
    subprocess.run([binary, "index", "--index", idx, "--embedder", os.path.join(models, "tiny-bert-embedder"),
                    os.path.join(SHARED, "data", "state_of_the_union.txt")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(os.path.join(workdir, "serve.log"), "w+")
    proc = subprocess.Popen([binary, "serve", "--reranker", os.path.join(models, "tiny-bert-ce"),
                             "--index", idx, "--host", "127.0.0.1", "--port", "0", *extra],
                            stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"listening on http://([\d.]+):(\d+)", log.read())
        if m:
            return proc, m.group(1), int(m.group(2))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    log.seek(0)
    sys.exit(f"server did not start:\n{log.read()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server (loopback only); default: start one")
    ap.add_argument("--pid", type=int, help="PID of the --url server, for RSS")
    ap.add_argument("--binary", default=os.path.join(REPO, "target", "release", "rerank"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=300)
    ap.add_argument("--big", type=int, default=32)
    ap.add_argument("--big-size", type=int, default=1_900_000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--phases", default="fuzz,idle,memory,longq")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra `rerank serve` argument (repeatable), e.g. --serve-arg=--max-input-chars=2000000")
    args = ap.parse_args()

    proc, workdir = None, None
    if args.url:
        u = urllib.parse.urlparse(args.url)
        host, port, pid = u.hostname, u.port or 80, args.pid
        if host not in ("127.0.0.1", "localhost", "::1"):
            sys.exit("--url must be a loopback address")
    else:
        workdir = tempfile.mkdtemp(prefix="rerank-load-")
        proc, host, port = start_server(args.binary, workdir, args.serve_arg)
        pid = proc.pid
    alive = (lambda: proc.poll() is None) if proc else (lambda: True)
    print(f"server http://{host}:{port} pid {pid}")
    ok = True
    try:
        phases = args.phases.split(",")
        if "fuzz" in phases:
            ok &= phase_fuzz(host, port, args.requests, args.seed, alive)
        if "idle" in phases:
            ok &= phase_idle(host, port, args.idle)
        if "memory" in phases:
            ok &= phase_memory(host, port, pid, args.big, args.big_size)
        if "longq" in phases:
            ok &= phase_long_query(host, port, args.big_size, 20)
        if proc and proc.poll() is not None:
            print(f"server exited with {proc.returncode}")
            ok = False
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print("result:", "all targets met" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
