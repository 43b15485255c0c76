//! Dynamic batching: requests from many clients, already tokenized, wait in one bounded FIFO
//! queue; a single dedicated inference OS thread takes the queued requests of the same kind up
//! to `max_batch_tokens`, merges their inputs, cuts them into length-grouped model batches
//! within the token budget ([`plan::by_token_budget`]) and answers each request through a
//! oneshot channel. Requests whose client went away (receiver dropped) are skipped.
//!
//! The queue is bounded by the caller ([`crate::state::AppState`] hands out
//! `max_concurrent_requests` permits; no permit → 429), so memory cannot grow without bound.
//! Only one model batch runs at a time; the engine parallelises inside a batch.

pub mod plan;
mod worker;

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use rerank_engine::score::Prediction;
use rerank_engine::tokenize::Encoded;
use rerank_engine::{CrossEncoder, Embedder};
use tokio::sync::oneshot;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Result of one request as the inference thread answers it.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A unit of work for the inference thread.
pub enum Work {
    /// Score tokenized `(query, document)` pairs with the reranker; answers one
    /// [`Prediction`] per pair, in input order.
    Rerank {
        items: Vec<Encoded>,
        reply: Reply<Vec<Prediction>>,
    },
    /// Embed tokenized texts with the embedder; answers `[n][dims]` in input order.
    Embed {
        items: Vec<Encoded>,
        reply: Reply<Vec<Vec<f32>>>,
    },
    /// Any other model work (e.g. a two-stage search), run alone on the inference thread.
    /// `is_cancelled` is checked before running it.
    Task {
        run: Box<dyn FnOnce() + Send>,
        is_cancelled: Box<dyn Fn() -> bool + Send>,
    },
}

impl Work {
    fn tokens(&self) -> usize {
        match self {
            Work::Rerank { items, .. } | Work::Embed { items, .. } => {
                items.iter().map(|e| e.input_ids.len()).sum()
            }
            Work::Task { .. } => 0,
        }
    }

    fn is_cancelled(&self) -> bool {
        match self {
            Work::Rerank { reply, .. } => reply.is_closed(),
            Work::Embed { reply, .. } => reply.is_closed(),
            Work::Task { is_cancelled, .. } => is_cancelled(),
        }
    }
}

pub(crate) struct Queued {
    work: Work,
    enqueued: Instant,
    tokens: usize,
}

#[derive(Default)]
pub(crate) struct QueueState {
    items: VecDeque<Queued>,
    closed: bool,
}

pub(crate) struct Shared {
    state: Mutex<QueueState>,
    ready: Condvar,
    metrics: Arc<Metrics>,
}

/// The models the inference thread runs.
#[derive(Clone, Default)]
pub struct BatchModels {
    pub reranker: Option<Arc<CrossEncoder>>,
    pub embedder: Option<Arc<Embedder>>,
}

/// Handle to the queue and its inference thread. Dropping it closes the queue; the thread
/// finishes what is queued and exits.
pub struct Batcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Batcher {
    /// Starts the inference thread. `max_batch_tokens` bounds the padded tokens of one model
    /// batch and the tokens of requests merged in one round.
    pub fn start(models: BatchModels, max_batch_tokens: usize, metrics: Arc<Metrics>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            metrics,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("rerank-inference".into())
            .spawn(move || worker::run(s, models, max_batch_tokens.max(1)))
            .expect("spawn the inference thread");
        Batcher {
            shared,
            thread: Some(thread),
        }
    }

    /// Queues work. Errors with [`ApiError::Internal`] when the queue was closed.
    pub fn submit(&self, work: Work) -> Result<(), ApiError> {
        let tokens = work.tokens();
        let mut st = self.shared.lock();
        if st.closed {
            return Err(ApiError::Internal("the inference queue is closed".into()));
        }
        st.items.push_back(Queued {
            work,
            enqueued: Instant::now(),
            tokens,
        });
        drop(st);
        self.shared.metrics.queue_add(1);
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Requests waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.shared.lock().items.len()
    }

    /// Whether the inference thread is running and the queue takes work (false once the
    /// thread has ended, e.g. after a panic outside a request's round).
    pub fn is_alive(&self) -> bool {
        !self.shared.lock().closed && self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn tiny() -> Arc<CrossEncoder> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/models/tiny-bert-ce"
        );
        Arc::new(CrossEncoder::from_dir(dir, Default::default()).unwrap())
    }

    /// Blocks the inference thread until the returned sender fires, so that work queued
    /// meanwhile is taken in one round.
    fn hold(b: &Batcher) -> std::sync::mpsc::Sender<()> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        b.submit(Work::Task {
            run: Box::new(move || {
                let _ = started_tx.send(());
                let _ = rx.recv();
            }),
            is_cancelled: Box::new(|| false),
        })
        .unwrap();
        started.recv().unwrap();
        tx
    }

    #[test]
    fn queued_requests_are_merged_into_one_batch_and_answered_in_order() {
        let model = tiny();
        let metrics = Arc::new(Metrics::default());
        let b = Batcher::start(
            BatchModels {
                reranker: Some(model.clone()),
                embedder: None,
            },
            1 << 20,
            metrics.clone(),
        );
        let release = hold(&b);
        let requests: Vec<Vec<(&str, &str)>> = vec![
            vec![
                ("economy", "jobs are back"),
                (
                    "economy",
                    "a much longer passage about the economy and inflation",
                ),
            ],
            vec![("ukraine", "freedom")],
            vec![("q", "dropped by its client")],
            vec![("cancer", "research moonshot"), ("cancer", "x")],
        ];
        let mut receivers = Vec::new();
        for (i, pairs) in requests.iter().enumerate() {
            let (reply, rx) = oneshot::channel();
            b.submit(Work::Rerank {
                items: model.encode(pairs, None).unwrap(),
                reply,
            })
            .unwrap();
            // The client of request 2 goes away before its turn.
            receivers.push(if i == 2 { None } else { Some(rx) });
        }
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        b.submit(Work::Task {
            run: Box::new(move || flag.store(true, Ordering::SeqCst)),
            is_cancelled: Box::new(|| true),
        })
        .unwrap();
        assert_eq!(b.queue_len(), 5);
        release.send(()).unwrap();
        for (pairs, rx) in requests.iter().zip(receivers) {
            let Some(rx) = rx else { continue };
            let got = rx.blocking_recv().unwrap().unwrap();
            let alone = model.predict(pairs).unwrap();
            assert_eq!(got.len(), alone.len());
            for (g, a) in got.iter().zip(&alone) {
                assert!((g.logits[0] - a.logits[0]).abs() <= 1e-5, "{g:?} vs {a:?}");
            }
        }
        drop(b); // joins the thread: everything queued has been handled
        assert!(!ran.load(Ordering::SeqCst), "a cancelled task must not run");
        // The three live rerank requests (5 pairs) went through the model as one batch.
        let text = metrics.render();
        assert!(text.contains("rerank_batch_size_count 1\n"), "{text}");
        assert!(text.contains("rerank_batch_size_sum 5\n"), "{text}");
        assert!(text.contains("rerank_queue_size 0\n"), "{text}");
    }
}
