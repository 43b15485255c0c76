//! A bounded load generator: N connections POST the same JSON body for S seconds, then print
//! requests/s, p50/p99/max latency, errors and (with `--pid`) the server's peak RSS.
//!
//! ```sh
//! cargo run --release -p rerank-server --example load -- \
//!     --url http://127.0.0.1:3000/rerank --body body.json --connections 16 --seconds 30 --pid PID
//! ```
//! Without `--body`, the body is `{"query": "What is the plan for the economy?", "texts": [...]}`
//! with the first 20 paragraphs (≥ 200 bytes) of `../shared/data/state_of_the_union.txt`
//! and `"truncate": true`.

use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn default_body() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/state_of_the_union.txt"
    );
    let text = std::fs::read_to_string(path).expect("read the State of the Union text");
    let texts: Vec<&str> = text
        .split("\n\n")
        .map(str::trim)
        .filter(|p| p.len() >= 200)
        .take(20)
        .collect();
    serde_json::json!({"query": "What is the plan for the economy?", "texts": texts, "truncate": true})
        .to_string()
}

fn vm_hwm_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--url").unwrap_or_else(|| "http://127.0.0.1:3000/rerank".into());
    let connections: usize = arg(&args, "--connections").map_or(16, |v| v.parse().unwrap());
    let seconds: u64 = arg(&args, "--seconds").map_or(30, |v| v.parse().unwrap());
    let key = arg(&args, "--api-key");
    let body = match arg(&args, "--body") {
        Some(path) => std::fs::read_to_string(path).expect("read --body"),
        None => default_body(),
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (url, body, key) = (url.clone(), body.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if let Some(k) = &key {
                    req = req.bearer_auth(k);
                }
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "url {url} connections {connections} duration {elapsed:.1} s\nrequests {} ok, {errors} errors, {:.1} requests/s\nlatency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    if let Some(pid) = arg(&args, "--pid") {
        match vm_hwm_kb(&pid) {
            Some(kb) => println!("server peak RSS (VmHWM) {:.1} MiB", kb as f64 / 1024.0),
            None => println!("server peak RSS: cannot read /proc/{pid}/status"),
        }
    }
}
