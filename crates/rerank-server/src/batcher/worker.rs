//! The inference thread: takes queued requests, merges them into model batches by token
//! budget and answers each through its oneshot.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use rerank_engine::tokenize::Encoded;

use super::{plan, BatchModels, Queued, Shared, Work};
use crate::error::ApiError;
use crate::metrics::Hist;

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Rerank,
    Embed,
    Task,
}

fn kind(w: &Work) -> Kind {
    match w {
        Work::Rerank { .. } => Kind::Rerank,
        Work::Embed { .. } => Kind::Embed,
        Work::Task { .. } => Kind::Task,
    }
}

/// Takes the next round of work: the first queued request plus following requests of the
/// same kind while their tokens fit in `budget`. Blocks while the queue is empty; `None` once
/// it is closed and drained.
fn next_round(shared: &Shared, budget: usize) -> Option<Vec<Queued>> {
    let mut st = shared.lock();
    loop {
        if let Some(first) = st.items.pop_front() {
            let k = kind(&first.work);
            let mut tokens = first.tokens;
            let mut round = vec![first];
            if k != Kind::Task {
                while let Some(next) = st.items.front() {
                    if kind(&next.work) != k || tokens + next.tokens > budget {
                        break;
                    }
                    tokens += next.tokens;
                    match st.items.pop_front() {
                        Some(q) => round.push(q),
                        None => break,
                    }
                }
            }
            drop(st);
            shared.metrics.queue_add(-(round.len() as i64));
            return Some(round);
        }
        if st.closed {
            return None;
        }
        st = shared.ready.wait(st).unwrap_or_else(|p| p.into_inner());
    }
}

/// The thread's main loop. A panic while handling one round is caught here, so the thread
/// outlives any request: the requests of that round see their reply dropped (answered 500
/// by [`crate::routes`]) and the next round runs as usual.
pub(super) fn run(shared: Arc<Shared>, models: BatchModels, budget: usize) {
    while let Some(round) = next_round(&shared, budget) {
        if catch_unwind(AssertUnwindSafe(|| {
            run_round(&shared, &models, round, budget)
        }))
        .is_err()
        {
            tracing::error!(
                "the inference thread caught a panic; the requests of that round failed"
            );
        }
    }
}

/// Handles one round of work taken by [`next_round`].
fn run_round(shared: &Shared, models: &BatchModels, round: Vec<Queued>, budget: usize) {
    let now = Instant::now();
    let live: Vec<Queued> = round
        .into_iter()
        .filter(|q| !q.work.is_cancelled())
        .collect();
    for q in &live {
        shared
            .metrics
            .observe_duration(Hist::Queue, now - q.enqueued);
    }
    if live.is_empty() {
        return;
    }
    match kind(&live[0].work) {
        Kind::Task => {
            for q in live {
                if let Work::Task { run, .. } = q.work {
                    if catch_unwind(AssertUnwindSafe(run)).is_err() {
                        tracing::error!("a search task panicked");
                    }
                }
            }
        }
        Kind::Rerank => run_rerank(shared, models, live, budget),
        Kind::Embed => run_embed(shared, models, live, budget),
    }
}

/// Runs `infer` on merged inputs cut by token budget — each planned batch is exactly one
/// forward pass (`infer` must not re-plan), so `rerank_batch_size` / `rerank_batch_tokens`
/// count real forward passes; returns one output per input (in the merged order) or the error
/// of the batch that failed (a panic of the model is that batch's error only).
fn merged<T: Send>(
    shared: &Shared,
    items: &[Encoded],
    budget: usize,
    infer: impl Fn(&[Encoded]) -> Result<Vec<T>, ApiError>,
) -> Vec<Result<T, ApiError>> {
    let lengths: Vec<usize> = items.iter().map(|e| e.input_ids.len()).collect();
    let mut out: Vec<Option<Result<T, ApiError>>> = (0..items.len()).map(|_| None).collect();
    for batch in plan::by_token_budget(&lengths, budget) {
        let inputs: Vec<Encoded> = batch.iter().map(|&i| items[i].clone()).collect();
        shared.metrics.observe(Hist::BatchSize, batch.len() as f64);
        shared.metrics.observe(
            Hist::BatchTokens,
            plan::padded_tokens(&lengths, &batch) as f64,
        );
        let start = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| infer(&inputs)))
            .unwrap_or_else(|_| Err(ApiError::Backend("the model panicked on this batch".into())));
        shared
            .metrics
            .observe_duration(Hist::Inference, start.elapsed());
        match result {
            Ok(values) if values.len() == batch.len() => {
                for (&i, v) in batch.iter().zip(values) {
                    out[i] = Some(Ok(v));
                }
            }
            Ok(_) => {
                for &i in &batch {
                    out[i] = Some(Err(ApiError::Internal("the model lost an output".into())));
                }
            }
            Err(e) => {
                for &i in &batch {
                    out[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(ApiError::Internal(
                    "an input was left out of every batch".into(),
                ))
            })
        })
        .collect()
}

/// Flattens the rounds' inputs, runs them merged, and answers each request with its slice.
fn dispatch<T: Send>(
    shared: &Shared,
    round: Vec<Queued>,
    budget: usize,
    infer: impl Fn(&[Encoded]) -> Result<Vec<T>, ApiError>,
    take: impl Fn(Work) -> Option<(Vec<Encoded>, super::Reply<Vec<T>>)>,
) {
    let mut requests = Vec::new();
    let mut all: Vec<Encoded> = Vec::new();
    for q in round {
        if let Some((items, reply)) = take(q.work) {
            let n = items.len();
            all.extend(items);
            requests.push((n, reply));
        }
    }
    let mut results = merged(shared, &all, budget, infer).into_iter();
    for (n, reply) in requests {
        // Take exactly this request's n outputs first, so an error cannot misalign the rest.
        let slice: Vec<Result<T, ApiError>> = results.by_ref().take(n).collect();
        let mine: Result<Vec<T>, ApiError> = slice.into_iter().collect();
        // The client may have gone away meanwhile: nothing to do then.
        let _ = reply.send(mine);
    }
}

fn run_rerank(shared: &Shared, models: &BatchModels, round: Vec<Queued>, budget: usize) {
    let Some(model) = models.reranker.clone() else {
        for q in round {
            if let Work::Rerank { reply, .. } = q.work {
                let _ = reply.send(Err(ApiError::ModelUnavailable(
                    "no reranker is loaded".into(),
                )));
            }
        }
        return;
    };
    dispatch(
        shared,
        round,
        budget,
        // Exactly the planned batch: the engine does not re-plan (its own 16,384-token cap
        // would silently override --max-batch-tokens).
        |inputs| model.predict_batch(inputs).map_err(ApiError::from),
        |w| match w {
            Work::Rerank { items, reply } => Some((items, reply)),
            _ => None,
        },
    );
}

fn run_embed(shared: &Shared, models: &BatchModels, round: Vec<Queued>, budget: usize) {
    let Some(model) = models.embedder.clone() else {
        for q in round {
            if let Work::Embed { reply, .. } = q.work {
                let _ = reply.send(Err(ApiError::ModelUnavailable(
                    "no embedder is loaded".into(),
                )));
            }
        }
        return;
    };
    dispatch(
        shared,
        round,
        budget,
        |inputs| model.embed_batch(inputs, 0).map_err(ApiError::from),
        |w| match w {
            Work::Embed { items, reply } => Some((items, reply)),
            _ => None,
        },
    );
}
