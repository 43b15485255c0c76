//! Issue 13 finding 3: one 1.95 MB document cost ~130 MB while tokenizing and 32 at once
//! reached 4.5 GB RSS. With the global tokenization budget (`--max-tokenization-bytes`) the
//! peak stays bounded. Alone in its binary so that no other test moves the process's peak.

mod common;

use common::*;
use rerank_server::ServerConfig;
use serde_json::json;

fn status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// 32 concurrent `/embed` requests of one 1.9 MB text each, with a 4 MB tokenization budget
/// (two such texts at a time): the peak RSS grows by less than 1.2 GB (the ~130 MB per text
/// measured in the issue, times two, plus the 32 request bodies and their copies), where
/// unbounded it grew by ~4.5 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_large_documents_stay_under_the_memory_bound() {
    let s = Server::tiny(ServerConfig {
        payload_limit: 4_000_000,
        max_input_chars: 2_000_000,
        max_tokenization_bytes: 4_000_000,
        ..Default::default()
    })
    .await;
    let c = client();
    let doc = "economy jobs inflation freedom ".repeat(64_000);
    assert!(doc.len() > 1_900_000);
    // Warm up (allocator arenas, tokenizer caches), then reset the peak to the current RSS.
    let (st, v) = post(&c, &s.at("/embed"), &json!({"inputs": ["warm up"]})).await;
    assert_eq!(st, 200, "{v}");
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM (Linux)");
    let base = status_kb("VmHWM:");
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let c = c.clone();
        let url = s.at("/embed");
        let body = json!({"inputs": [doc.clone()], "truncate": true});
        tasks.push(tokio::spawn(async move { post(&c, &url, &body).await }));
    }
    for t in tasks {
        let (st, v) = t.await.unwrap();
        assert_eq!(st, 200, "{v}");
    }
    let peak = status_kb("VmHWM:");
    let grew_mb = peak.saturating_sub(base) / 1024;
    eprintln!(
        "VmHWM {} MB -> {} MB (+{grew_mb} MB); VmRSS after {} MB",
        base / 1024,
        peak / 1024,
        status_kb("VmRSS:") / 1024
    );
    assert!(grew_mb < 1200, "peak RSS grew by {grew_mb} MB");
    s.shutdown().await;
}
