//! A small Prometheus registry: counters, gauges and histograms rendered in the text
//! exposition format (version 0.0.4) by `GET /metrics`.
//!
//! Series:
//! - `rerank_requests_total{route, status}` — counter of answered requests;
//! - `rerank_queue_size` — gauge, requests waiting for the inference thread;
//! - `rerank_truncated_inputs_total` — counter of inputs cut to the model's `max_length`
//!   ([`Metrics::truncated_inputs`]);
//! - `rerank_batch_size` — histogram, inputs (pairs or texts) per model batch;
//! - `rerank_batch_tokens` — histogram, padded tokens per model batch;
//! - `rerank_tokenization_duration_seconds`, `rerank_queue_duration_seconds`,
//!   `rerank_inference_duration_seconds` — latency histograms (seconds).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Buckets of the latency histograms, in seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the batch size histogram (inputs).
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Buckets of the batch token histogram.
const TOKEN_BUCKETS: &[f64] = &[
    64.0, 256.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (b, c) in self.bounds.iter().zip(self.counts.iter_mut()) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, u16), u64>,
    queue_size: i64,
    truncated_inputs: u64,
    histograms: BTreeMap<&'static str, Histogram>,
}

/// The server's metrics; cheap to update from any thread.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Registry>,
}

/// Names of the histograms, for [`Metrics::observe`].
#[derive(Debug, Clone, Copy)]
pub enum Hist {
    /// Inputs per model batch.
    BatchSize,
    /// Padded tokens per model batch.
    BatchTokens,
    /// Time to tokenize one request.
    Tokenization,
    /// Time a request waited in the queue.
    Queue,
    /// Time of one model batch.
    Inference,
}

impl Hist {
    fn name(self) -> &'static str {
        match self {
            Hist::BatchSize => "rerank_batch_size",
            Hist::BatchTokens => "rerank_batch_tokens",
            Hist::Tokenization => "rerank_tokenization_duration_seconds",
            Hist::Queue => "rerank_queue_duration_seconds",
            Hist::Inference => "rerank_inference_duration_seconds",
        }
    }

    fn bounds(self) -> &'static [f64] {
        match self {
            Hist::BatchSize => SIZE_BUCKETS,
            Hist::BatchTokens => TOKEN_BUCKETS,
            _ => SECONDS_BUCKETS,
        }
    }

    fn help(self) -> &'static str {
        match self {
            Hist::BatchSize => "Inputs (pairs or texts) per model batch",
            Hist::BatchTokens => "Padded tokens per model batch",
            Hist::Tokenization => "Tokenization time per request",
            Hist::Queue => "Time a request waited for the inference thread",
            Hist::Inference => "Time of one model batch",
        }
    }

    const ALL: [Hist; 5] = [
        Hist::BatchSize,
        Hist::BatchTokens,
        Hist::Tokenization,
        Hist::Queue,
        Hist::Inference,
    ];
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // A panic while holding the lock cannot leave the counters inconsistent in a way that
        // matters; keep serving metrics.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one answered request of `route` (the matched path) with `status`.
    pub fn request(&self, route: &str, status: u16) {
        *self
            .lock()
            .requests
            .entry((route.to_string(), status))
            .or_default() += 1;
    }

    /// Adds `delta` to the queue size gauge.
    pub fn queue_add(&self, delta: i64) {
        self.lock().queue_size += delta;
    }

    /// Counts `n` inputs (documents, texts or queries) that were cut to the model's
    /// `max_length` before inference (`rerank_truncated_inputs_total`).
    pub fn truncated_inputs(&self, n: u64) {
        self.lock().truncated_inputs += n;
    }

    /// Records one value of a histogram.
    pub fn observe(&self, h: Hist, value: f64) {
        self.lock()
            .histograms
            .entry(h.name())
            .or_insert_with(|| Histogram::new(h.bounds()))
            .observe(value);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, h: Hist, d: Duration) {
        self.observe(h, d.as_secs_f64());
    }

    /// Requests counted so far for `route` and `status` (for tests and `/info`).
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        self.lock()
            .requests
            .get(&(route.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let r = self.lock();
        let mut out = String::new();
        out.push_str("# HELP rerank_requests_total Answered HTTP requests by route and status\n");
        out.push_str("# TYPE rerank_requests_total counter\n");
        for ((route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "rerank_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                route.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        out.push_str("# HELP rerank_queue_size Requests waiting for the inference thread\n");
        out.push_str("# TYPE rerank_queue_size gauge\n");
        let _ = writeln!(out, "rerank_queue_size {}", r.queue_size);
        out.push_str(
            "# HELP rerank_truncated_inputs_total Inputs cut to the model's max_length\n",
        );
        out.push_str("# TYPE rerank_truncated_inputs_total counter\n");
        let _ = writeln!(
            out,
            "rerank_truncated_inputs_total {}",
            r.truncated_inputs
        );
        for h in Hist::ALL {
            let name = h.name();
            let empty = Histogram::new(h.bounds());
            let hist = r.histograms.get(name).unwrap_or(&empty);
            let _ = writeln!(out, "# HELP {name} {}", h.help());
            let _ = writeln!(out, "# TYPE {name} histogram");
            for (b, c) in hist.bounds.iter().zip(&hist.counts) {
                let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
            }
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", hist.count);
            let _ = writeln!(out, "{name}_sum {}", hist.sum);
            let _ = writeln!(out, "{name}_count {}", hist.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_render() {
        let m = Metrics::default();
        m.observe(Hist::BatchSize, 3.0);
        m.observe(Hist::BatchSize, 100.0);
        m.request("/rerank", 200);
        m.request("/rerank", 200);
        let text = m.render();
        assert!(
            text.contains("rerank_batch_size_bucket{le=\"4\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rerank_batch_size_bucket{le=\"128\"} 2"),
            "{text}"
        );
        assert!(text.contains("rerank_batch_size_count 2"), "{text}");
        assert!(text.contains("rerank_requests_total{route=\"/rerank\",status=\"200\"} 2"));
        assert_eq!(m.requests("/rerank", 200), 2);
    }
}
