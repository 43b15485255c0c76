"""The GIL is released while the engine computes.

The assertions are structural, not speed thresholds (each native call already uses both cores
through the engine's thread pool, so a CPU-time or speed-up ratio would prove nothing here and
would flake on a shared machine):

1. While one thread is inside a long `predict` / `encode`, the main thread keeps executing
   Python bytecode. Were the GIL held by the native call, not one iteration of the main thread's
   loop could run inside the middle half of the long call's span (the call's own Python work
   before and after the native part takes microseconds of a span of seconds).
2. Two threads scoring at once progress together: their calls interleave in the engine's pool,
   so they finish close together. Were the GIL held, the second call's native part could only
   start when the first had returned, and the two would finish a whole call's duration apart.
"""

from __future__ import annotations

import threading
import time

import pytest

from conftest import SEED_QUESTION, SPEECH


def _passages(n):
    paragraphs = [p.strip() for p in SPEECH.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 400]
    return [paragraphs[i % len(paragraphs)] for i in range(n)]


@pytest.mark.parametrize("kind", ["predict", "encode"])
def test_python_runs_while_engine_computes(sotu_ce, minilm, kind):
    docs = _passages(48)
    if kind == "predict":
        long_call = lambda: sotu_ce.predict([(SEED_QUESTION, d) for d in docs])  # noqa: E731
    else:
        long_call = lambda: minilm.encode(docs)  # noqa: E731
    span = {}

    def run():
        t0 = time.perf_counter()
        long_call()
        span["call"] = (t0, time.perf_counter())

    worker = threading.Thread(target=run)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0)  # a bytecode loop; sleep(0) only yields
    worker.join()
    t0, t1 = span["call"]
    quarter = (t1 - t0) / 4
    inside = sum(1 for t in ticks if t0 + quarter < t < t1 - quarter)
    assert inside > 0, f"the main thread ran no Python during the middle half of a {t1 - t0:.2f} s {kind}: the GIL is held"


def test_two_threads_scoring_at_once_progress_together(sotu_ce):
    docs = _passages(32)
    pairs = [(SEED_QUESTION, d) for d in docs]
    barrier = threading.Barrier(2)
    spans = {}

    def run(name):
        barrier.wait()
        t0 = time.perf_counter()
        sotu_ce.predict(pairs)
        spans[name] = (t0, time.perf_counter())

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    longest = max(a1 - a0, b1 - b0)
    assert abs(a1 - b1) < longest / 2, (
        f"the calls finished {abs(a1 - b1):.2f} s apart (calls of {a1 - a0:.2f} s and {b1 - b0:.2f} s): "
        "they ran one after the other"
    )
