//! `rerank serve` as a process (issue 14 item 2): every flag reads a `RERANK_*` environment
//! variable, and SIGTERM drains (readiness 503 at once, requests still answered for
//! `--drain-seconds`) before a graceful exit with code 0.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{model, shared};

/// The options of `rerank serve --help`, each with its help text (the lines up to the next
/// option).
fn help_options(help: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        let flag = if (1..=6).contains(&indent) && t.starts_with("--") {
            Some(t)
        } else if (1..=6).contains(&indent) && t.starts_with('-') && t.get(2..4) == Some(", ") {
            Some(&t[4..])
        } else {
            None
        };
        match flag {
            Some(f) if f.starts_with("--") => {
                let name = f[2..].split([' ', '=', '<']).next().unwrap().to_string();
                out.push((name, String::new()));
            }
            _ => {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(line);
                    last.1.push('\n');
                }
            }
        }
    }
    out
}

#[test]
fn every_serve_flag_shows_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(["serve", "--help"])
        .env("RERANK_API_KEY", "secret-value-not-shown")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let options = help_options(&help);
    // The flags of serve and of the shared reranker flags, at least.
    for must in [
        "reranker",
        "port",
        "api-key",
        "drain-seconds",
        "max-batch-tokens",
        "precision",
    ] {
        assert!(
            options.iter().any(|(n, _)| n == must),
            "--{must} missing from:\n{help}"
        );
    }
    let mut checked = 0;
    for (name, text) in &options {
        if name == "help" || name == "version" {
            continue;
        }
        let var = format!("[env: RERANK_{}", name.to_uppercase().replace('-', "_"));
        assert!(
            text.contains(&var),
            "--{name} does not show {var}]:\n{text}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "{checked} flags in:\n{help}");
    assert!(
        !help.contains("secret-value-not-shown"),
        "--help must not print the API key"
    );
}

/// One HTTP/1.1 request on a new connection: (status, body as JSON).
fn http(addr: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(payload.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn sigterm_turns_readiness_off_keeps_answering_for_the_drain_then_exits_zero() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("reference/expected.json")).unwrap(),
    )
    .unwrap();
    let case = reference["models"]["tiny-bert-ce"]["rank_cases"][0].clone();
    // Configured by the environment only.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .arg("serve")
        .env("RERANK_RERANKER", model("tiny-bert-ce"))
        .env("RERANK_PORT", "0")
        .env("RERANK_DRAIN_SECONDS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(a) = line
            .trim()
            .strip_prefix("rerank serve: listening on http://")
        {
            addr = a.to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "no listening line");
    let (st, ready) = http(&addr, "GET", "/ready", None);
    assert_eq!(st, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
    let body =
        serde_json::json!({"query": case["query"], "texts": case["documents"], "truncate": true});
    let sent = Instant::now();
    let rc = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    // Readiness turns 503 at once (give the signal handler a moment).
    let mut not_ready = None;
    while sent.elapsed() < Duration::from_secs(2) {
        let r = http(&addr, "GET", "/ready", None);
        if r.0 == 503 {
            not_ready = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, v) = not_ready.expect("/ready did not turn 503 within 2 s of SIGTERM");
    assert_eq!(v["error_type"], "unhealthy", "{v}");
    assert!(v["error"].as_str().unwrap().contains("draining"), "{v}");
    // Liveness stays up and new requests are still answered during the drain.
    assert_eq!(http(&addr, "GET", "/health", None).0, 200);
    let (st, got) = http(&addr, "POST", "/rerank", Some(&body));
    assert_eq!(st, 200, "{got}");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "answered after the drain"
    );
    for (g, e) in got
        .as_array()
        .unwrap()
        .iter()
        .zip(case["expected"].as_array().unwrap())
    {
        assert_eq!(g["index"], e["index"]);
        let d = (g["score"].as_f64().unwrap() - e["score"].as_f64().unwrap()).abs();
        assert!(d <= 1e-5, "{g} vs {e}");
    }
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    assert!(status.success(), "exit {status:?}");
    assert!(
        took >= Duration::from_millis(2900),
        "stopped after {took:?}, before the drain"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("rerank serve: stopped"), "{rest}");
    assert!(TcpStream::connect(&addr).is_err(), "still listening");
}

/// Issue 15 item 3: `--score-cache-mb` (here from `RERANK_SCORE_CACHE_MB`) and
/// `--score-cache-entries` reach the server (`/info` limits), a repeated request is a cache hit
/// on `/metrics`, and an over-large `--score-cache-mb` is refused before anything loads.
#[test]
fn score_cache_flags_reach_the_server_and_a_repeat_is_a_hit() {
    let refused = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(["serve", "--score-cache-mb", "2000000"])
        .env("RERANK_RERANKER", model("tiny-bert-ce"))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("--score-cache-mb must be at most"), "{err}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_rerank"))
        .args(["serve", "--port", "0", "--drain-seconds", "0"])
        .args(["--score-cache-entries", "100"])
        .env("RERANK_RERANKER", model("tiny-bert-ce"))
        .env("RERANK_SCORE_CACHE_MB", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = String::new();
    for _ in 0..50 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(a) = line
            .trim()
            .strip_prefix("rerank serve: listening on http://")
        {
            addr = a.to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "no listening line");
    let (st, info) = http(&addr, "GET", "/info", None);
    assert_eq!(st, 200, "{info}");
    assert_eq!(info["limits"]["score_cache_bytes"], 1 << 20);
    assert_eq!(info["limits"]["score_cache_entries"], 100);
    let body = serde_json::json!({"query": "economy", "texts": ["jobs are back", "bridges"]});
    let (st, first) = http(&addr, "POST", "/rerank", Some(&body));
    assert_eq!(st, 200, "{first}");
    let (st, again) = http(&addr, "POST", "/rerank", Some(&body));
    assert_eq!(st, 200, "{again}");
    assert_eq!(first, again);
    // /metrics is text: read it raw.
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut metrics = String::new();
    s.read_to_string(&mut metrics).unwrap();
    assert!(
        metrics.contains("rerank_score_cache_hits_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rerank_score_cache_misses_total 2\n"),
        "{metrics}"
    );
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(child.wait().unwrap().success());
}
