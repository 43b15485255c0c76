"""The playground page of `rerank serve` in headless Chromium (run by scripts/playground_check.sh).

Env: RERANK_URL (a server with the 2022 speech's index, minilm-l6-sotu-ce and an API key),
RERANK_API_KEY, RERANK_REFERENCE (expected-minilm-l6-sotu-ce.json), CHROMIUM (the browser
binary; Playwright never downloads one), PLAYGROUND_OUT (where playground.png goes).

Checks, each against something the page did not compute itself:
  1. GET / answers 200 text/html without the key, with a Content-Security-Policy; every request
     the page makes goes to the server's own origin (no CDN); without the key it says so.
  2. Loaded-index mode: "What is the plan for the economy?" with the key shows 3 first-stage
     rows and 3 reranked rows; the reranked texts, in order, are those of a direct POST /search
     (top_k 20, top_n 3) and each is about the economy; the first-stage rows are the direct
     answer's first_stage_rank 1..3; each reranked row has a rank-movement badge; the
     per-stage timing chips show numbers. Screenshot.
  3. Documents mode: the reference's 20 passages for the same question (newlines as spaces,
     which the BERT tokenizer treats alike) — the top 3 shown are PyTorch's top 3, scores within
     1e-4 as displayed.
  4. A wrong key shows the server's JSON error message ("invalid API key").
"""

import json
import os
import sys
import urllib.request

from playwright.sync_api import sync_playwright

URL = os.environ["RERANK_URL"]
KEY = os.environ["RERANK_API_KEY"]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUT = os.environ.get("PLAYGROUND_OUT", "target/playground")
QUERY = "What is the plan for the economy?"
with open(os.environ["RERANK_REFERENCE"]) as f:
    REFERENCE = json.load(f)["models"]["minilm-l6-sotu-ce"]

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def post(path, body):
    req = urllib.request.Request(
        URL + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer " + KEY},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def texts(page, list_id):
    return page.eval_on_selector_all(
        f"#{list_id} li:not(.empty) .text", "els => els.map(e => e.textContent)"
    )


def run(page):
    page.click("#run")
    # Selectors, not wait_for_function: its polling evals strings, which the page's CSP forbids.
    page.wait_for_selector("body[data-state]", state="attached", timeout=60_000)
    state = page.evaluate("document.body.dataset.state")
    error = page.text_content("#error")
    page.evaluate("delete document.body.dataset.state")
    return state, error


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
    )
    page = browser.new_page(viewport={"width": 1280, "height": 640})
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    console_errors = []
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
    page.on("pageerror", lambda e: console_errors.append(str(e)))

    # 1. The page, without the key.
    resp = page.goto(URL + "/", wait_until="load", timeout=30_000)
    check(resp.status == 200, f"GET / without the key answers 200 (got {resp.status})")
    check(
        resp.headers.get("content-type", "").startswith("text/html"),
        "GET / is text/html: " + resp.headers.get("content-type", ""),
    )
    check(
        "connect-src 'self'" in resp.headers.get("content-security-policy", ""),
        "GET / has a Content-Security-Policy limiting requests to the server",
    )
    page.wait_for_selector("#server:not(:text-is('connecting…'))", timeout=10_000)
    check(
        "API key" in page.text_content("#server"),
        "without the key the page says the server needs one: " + page.text_content("#server"),
    )

    # 2. Loaded-index mode with the key.
    page.fill("#api-key", KEY)
    page.fill("#query", QUERY)
    page.fill("#top-k", "20")
    page.fill("#top-n", "3")
    state, error = run(page)
    check(state == "done", f"the search ran (state {state}, error {error!r})")
    check(page.is_checked("#mode-index"), "the loaded-index mode is chosen when the server has an index")
    shown = texts(page, "reranked")
    first = texts(page, "first-stage")
    check(len(shown) == 3, f"3 reranked results are shown (got {len(shown)})")
    check(len(first) == 3, f"3 first-stage results are shown beside them (got {len(first)})")
    direct = post("/search", {"query": QUERY, "top_k": 20, "top_n": 3})
    check(
        shown == [d["text"] for d in direct["documents"]],
        "the reranked list is the direct POST /search answer, in order",
    )
    check(all("econom" in t.lower() for t in shown), "each reranked passage is about the economy")
    full = post("/search", {"query": QUERY, "top_k": 20, "top_n": 20})["documents"]
    by_first = sorted(full, key=lambda d: d["metadata"]["first_stage_rank"])
    check(
        first == [d["text"] for d in by_first[:3]],
        "the first-stage list is first_stage_rank 1, 2, 3 of the direct answer",
    )
    badges = page.eval_on_selector_all(
        "#reranked li .move", "els => els.map(e => e.textContent)"
    )
    after = page.eval_on_selector_all(
        "#first-stage li .move", "els => els.map(e => e.textContent)"
    )
    reranked_rank = {d["text"]: i for i, d in enumerate(full, 1)}
    check(
        after == [f"→ #{reranked_rank[d['text']]}" for d in by_first[:3]],
        f"each first-stage row says where the reranker put it: {after}",
    )
    expected_badges = []
    for rank, d in enumerate(direct["documents"], 1):
        before = d["metadata"]["first_stage_rank"]
        if before > 3:
            expected_badges.append(f"new ↑{before - rank}")
        elif before == rank:
            expected_badges.append("=")
        else:
            expected_badges.append(("↑" if before > rank else "↓") + str(abs(before - rank)))
    check(badges == expected_badges, f"rank movement badges {badges} == {expected_badges}")
    chips = page.eval_on_selector_all(
        "#timings .chip", "els => els.map(e => [e.dataset.stage, e.querySelector('b').textContent])"
    )
    print("     timings:", chips)
    stages = {name.split(" (")[0]: value for name, value in chips}
    for stage in ["first stage", "rerank", "server total", "round trip"]:
        value = stages.get(stage, "")
        check(value.endswith(" ms") and value[:-3].replace(".", "").isdigit(), f"timing '{stage}' shown: {value!r}")
    os.makedirs(OUT, exist_ok=True)
    shot = os.path.join(OUT, "playground.png")
    page.screenshot(path=shot, full_page=True)
    check(os.path.getsize(shot) > 10_000, f"screenshot written to {shot}")

    # 3. Documents mode against the PyTorch reference.
    case = next(c for c in REFERENCE["rank_cases"] if c["query"] == QUERY)
    page.check("#mode-docs")
    page.fill("#docs", "\n".join(" ".join(d.split()) for d in case["documents"]))
    state, error = run(page)
    check(state == "done", f"the documents rerank ran (state {state}, error {error!r})")
    shown = texts(page, "reranked")
    want = [" ".join(case["documents"][e["index"]].split()) for e in case["expected"][:3]]
    check(shown == want, "documents mode: the top 3 are PyTorch's top 3, in order")
    scores = page.eval_on_selector_all("#reranked li .score", "els => els.map(e => e.textContent)")
    check(
        len(scores) == 3
        and all(abs(float(s) - e["score"]) <= 1e-4 for s, e in zip(scores, case["expected"])),
        f"documents mode: scores {scores} match the reference within 1e-4",
    )
    check(len(texts(page, "first-stage")) == 3, "documents mode: the input order is shown as the first stage")

    # 4. A wrong key: the server's JSON error is shown.
    page.fill("#api-key", KEY + "-wrong")
    state, error = run(page)
    check(state == "error" and "invalid API key" in (error or ""), f"a wrong key shows the JSON error: {error!r}")

    foreign = [u for u in requested if not u.startswith(URL + "/")]
    check(not foreign, f"every request goes to the server itself ({len(requested)} requests; foreign: {foreign})")
    check(not console_errors or all("401" in e for e in console_errors),
          f"no script errors in the console: {console_errors}")
    browser.close()

if failures:
    print(f"playground_check.py: {len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("playground_check.py: all checks passed")
