//! The server's Prometheus metrics, recorded through the `metrics` crate into a
//! `metrics-exporter-prometheus` recorder owned by each [`Metrics`] (not the global one, so
//! that several servers in one process keep apart), rendered in the text exposition format
//! (version 0.0.4) by `GET /metrics`.
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
//! - `rerank_score_cache_hits_total`, `rerank_score_cache_misses_total` — counters of pairs
//!   found in / missing from the rerank score cache ([`crate::score_cache`]; only misses go to
//!   the model, so the batch histograms keep counting real forward passes);
//!   `rerank_score_cache_evictions_total` — pairs evicted by its bound;
//! - `rerank_score_cache_entries`, `rerank_score_cache_bytes` — gauges, pairs held and heap
//!   bytes counted for them; `rerank_score_cache_max_bytes` — gauge, its bound (0: disabled).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

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

const REQUESTS: &str = "rerank_requests_total";
const QUEUE_SIZE: &str = "rerank_queue_size";
const TRUNCATED: &str = "rerank_truncated_inputs_total";
const CACHE_HITS: &str = "rerank_score_cache_hits_total";
const CACHE_MISSES: &str = "rerank_score_cache_misses_total";
const CACHE_EVICTIONS: &str = "rerank_score_cache_evictions_total";
const CACHE_ENTRIES: &str = "rerank_score_cache_entries";
const CACHE_BYTES: &str = "rerank_score_cache_bytes";
const CACHE_MAX_BYTES: &str = "rerank_score_cache_max_bytes";

/// The server's metrics; cheap to update from any thread.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Answered requests by (route, status), kept for [`Metrics::requests`].
    requests: Mutex<BTreeMap<(String, u16), u64>>,
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

impl Default for Metrics {
    fn default() -> Self {
        let mut builder = PrometheusBuilder::new();
        for h in Hist::ALL {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(h.name().into()), h.bounds())
                .expect("bucket lists are not empty");
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let m = Metrics {
            recorder,
            handle,
            requests: Mutex::new(BTreeMap::new()),
        };
        m.with(|| {
            metrics::describe_counter!(REQUESTS, "Answered HTTP requests by route and status");
            metrics::describe_gauge!(QUEUE_SIZE, "Requests waiting for the inference thread");
            metrics::describe_counter!(TRUNCATED, "Inputs cut to the model's max_length");
            metrics::describe_counter!(CACHE_HITS, "Pairs answered from the rerank score cache");
            metrics::describe_counter!(
                CACHE_MISSES,
                "Pairs looked up in the rerank score cache and sent to the model"
            );
            metrics::describe_counter!(
                CACHE_EVICTIONS,
                "Pairs evicted from the rerank score cache by its bound"
            );
            metrics::describe_gauge!(CACHE_ENTRIES, "Pairs held by the rerank score cache");
            metrics::describe_gauge!(
                CACHE_BYTES,
                "Heap bytes counted for the pairs of the rerank score cache"
            );
            metrics::describe_gauge!(
                CACHE_MAX_BYTES,
                "Byte bound of the rerank score cache (0: disabled)"
            );
            for h in Hist::ALL {
                metrics::describe_histogram!(h.name(), h.help());
            }
            // Present from the start, at 0.
            metrics::gauge!(QUEUE_SIZE).set(0.0);
            metrics::counter!(TRUNCATED).absolute(0);
            for c in [CACHE_HITS, CACHE_MISSES, CACHE_EVICTIONS] {
                metrics::counter!(c).absolute(0);
            }
            for g in [CACHE_ENTRIES, CACHE_BYTES, CACHE_MAX_BYTES] {
                metrics::gauge!(g).set(0.0);
            }
            for h in Hist::ALL {
                let _ = metrics::histogram!(h.name());
            }
        });
        m
    }
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// Counts one answered request of `route` (the matched path) with `status`.
    pub fn request(&self, route: &str, status: u16) {
        let (r, s) = (route.to_string(), status.to_string());
        self.with(|| metrics::counter!(REQUESTS, "route" => r, "status" => s).increment(1));
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route.to_string(), status))
            .or_default() += 1;
    }

    /// Adds `delta` to the queue size gauge.
    pub fn queue_add(&self, delta: i64) {
        self.with(|| metrics::gauge!(QUEUE_SIZE).increment(delta as f64));
    }

    /// Counts `n` inputs (documents, texts or queries) that were cut to the model's
    /// `max_length` before inference (`rerank_truncated_inputs_total`).
    pub fn truncated_inputs(&self, n: u64) {
        self.with(|| metrics::counter!(TRUNCATED).increment(n));
    }

    /// Counts the lookups of one request in the score cache: `hits` pairs found, `misses`
    /// sent to the model.
    pub fn score_cache_lookups(&self, hits: u64, misses: u64) {
        self.with(|| {
            metrics::counter!(CACHE_HITS).increment(hits);
            metrics::counter!(CACHE_MISSES).increment(misses);
        });
    }

    /// Sets the score cache's gauges (`entries` pairs held, `bytes` counted for them, bound
    /// `max_bytes`) and counts `evicted` more evictions.
    pub fn score_cache_state(&self, entries: usize, bytes: usize, max_bytes: usize, evicted: u64) {
        self.with(|| {
            metrics::gauge!(CACHE_ENTRIES).set(entries as f64);
            metrics::gauge!(CACHE_BYTES).set(bytes as f64);
            metrics::gauge!(CACHE_MAX_BYTES).set(max_bytes as f64);
            metrics::counter!(CACHE_EVICTIONS).increment(evicted);
        });
    }

    /// Records one value of a histogram.
    pub fn observe(&self, h: Hist, value: f64) {
        self.with(|| metrics::histogram!(h.name()).record(value));
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, h: Hist, d: Duration) {
        self.observe(h, d.as_secs_f64());
    }

    /// Requests counted so far for `route` and `status` (for tests and `/info`).
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(route.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        self.handle.render()
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
