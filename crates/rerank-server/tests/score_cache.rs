//! Issue 15 item 3: the rerank score cache of `rerank serve`. A cached score is bit for bit
//! the score the model computes for the pair alone (`CrossEncoder::predict_batch` of that one
//! pair, an independent computation), whether the pair was first computed alone or inside
//! another request's batch; only misses reach the model (the batch histograms count real
//! forward passes, and a fully cached request never waits in the queue); anything that
//! changes the model input — a Cohere `max_tokens_per_doc`, an instruction, the precision, the
//! max length — is a miss; `--score-cache-mb 0` disables it.

mod common;

use common::*;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, Precision};
use rerank_server::score_cache::{ModelId, PairKey};
use rerank_server::{Models, ServerConfig};
use serde_json::{json, Value};

/// The value of an unlabelled series in the Prometheus text (panics when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

async fn metrics(s: &Server) -> String {
    client()
        .get(s.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The raw logit the model gives `(query, document)` scored alone, as the TEI route
/// tokenizes it.
fn alone(model: &CrossEncoder, query: &str, document: &str) -> f32 {
    let e = model
        .encode_query_documents(query, &[document], Some(model.info().max_length))
        .unwrap();
    model.predict_batch(&e).unwrap()[0].logits[0]
}

/// `/rerank` answers as `document → raw logit`.
fn logits(v: &Value, texts: &[&str]) -> Vec<(String, f32)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let i = r["index"].as_u64().unwrap() as usize;
            (texts[i].to_string(), r["score"].as_f64().unwrap() as f32)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_scores_are_the_computed_bits_and_skip_the_model() {
    let s = Server::tiny(ServerConfig::default()).await;
    let model = s.state.models.reranker.as_ref().unwrap().model.clone();
    let c = client();
    let q = "what about the economy and jobs";
    let first = [
        "jobs are back",
        "inflation is coming down",
        "we will fix the bridges",
    ];
    let second = ["inflation is coming down", "cancer research moonshot"];
    let rerank = |texts: &[&str]| json!({"query": q, "texts": texts, "raw_scores": true});

    let (st, v1) = post(&c, &s.at("/rerank"), &rerank(&first)).await;
    assert_eq!(st, 200, "{v1}");
    let m = metrics(&s).await;
    assert_eq!(series(&m, "rerank_score_cache_misses_total"), 3.0);
    assert_eq!(series(&m, "rerank_score_cache_hits_total"), 0.0);
    assert_eq!(series(&m, "rerank_score_cache_entries"), 3.0);
    assert_eq!(series(&m, "rerank_batch_size_sum"), 3.0);
    let bytes = series(&m, "rerank_score_cache_bytes");
    assert_eq!(
        bytes as usize,
        rerank_server::score_cache::ScoreCache::bytes_for(3)
    );
    assert_eq!(
        series(&m, "rerank_score_cache_max_bytes"),
        (64u64 << 20) as f64
    );

    // "inflation is coming down" was computed inside the first request's batch of 3; here it
    // is a hit beside a miss.
    let (st, v2) = post(&c, &s.at("/rerank"), &rerank(&second)).await;
    assert_eq!(st, 200, "{v2}");
    let m = metrics(&s).await;
    assert_eq!(series(&m, "rerank_score_cache_hits_total"), 1.0);
    assert_eq!(series(&m, "rerank_score_cache_misses_total"), 4.0);
    // Only the miss went through the model.
    assert_eq!(series(&m, "rerank_batch_size_sum"), 4.0);
    assert_eq!(series(&m, "rerank_batch_size_count"), 2.0);
    let queued = series(&m, "rerank_queue_duration_seconds_count");

    // The first request again: all three from the cache, no forward pass, no queue.
    let (st, v3) = post(&c, &s.at("/rerank"), &rerank(&first)).await;
    assert_eq!(st, 200, "{v3}");
    let m = metrics(&s).await;
    assert_eq!(series(&m, "rerank_score_cache_hits_total"), 4.0);
    assert_eq!(series(&m, "rerank_score_cache_misses_total"), 4.0);
    assert_eq!(series(&m, "rerank_batch_size_count"), 2.0);
    assert_eq!(series(&m, "rerank_queue_duration_seconds_count"), queued);
    assert_eq!(series(&m, "rerank_score_cache_entries"), 4.0);

    // Every answer, computed or cached, is bit for bit the pair scored alone.
    for (v, texts) in [(&v1, &first[..]), (&v2, &second[..]), (&v3, &first[..])] {
        for (doc, got) in logits(v, texts) {
            let want = alone(&model, q, &doc);
            assert_eq!(got.to_bits(), want.to_bits(), "{doc}: {got} vs {want}");
        }
    }
    assert_eq!(v1, v3);

    // Cohere's route shares the cache (same tokenization): a hit, the same score bits.
    let (st, v) = post(
        &c,
        &s.at("/v2/rerank"),
        &json!({"query": q, "documents": ["jobs are back"]}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let m = metrics(&s).await;
    assert_eq!(series(&m, "rerank_score_cache_hits_total"), 5.0);
    let e = model
        .encode_query_documents(q, &["jobs are back"], Some(model.info().max_length))
        .unwrap();
    let want = model.predict_batch(&e).unwrap()[0].score;
    let got = v["results"][0]["relevance_score"].as_f64().unwrap() as f32;
    assert_eq!(got.to_bits(), want.to_bits());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_per_doc_is_a_miss_and_the_truncated_pair_is_then_a_hit() {
    let s = Server::tiny(ServerConfig::default()).await;
    let c = client();
    let body = |max: Option<i64>| {
        let mut b = json!({"query": "economy", "documents": ["the economy is growing and jobs are back in every state"]});
        if let Some(m) = max {
            b["max_tokens_per_doc"] = json!(m);
        }
        b
    };
    let mut scores = Vec::new();
    for (max, hits, misses) in [(None, 0.0, 1.0), (Some(3), 0.0, 2.0), (Some(3), 1.0, 2.0)] {
        let (st, v) = post(&c, &s.at("/v2/rerank"), &body(max)).await;
        assert_eq!(st, 200, "{v}");
        scores.push(v["results"][0]["relevance_score"].as_f64().unwrap());
        let m = metrics(&s).await;
        assert_eq!(series(&m, "rerank_score_cache_hits_total"), hits, "{max:?}");
        assert_eq!(
            series(&m, "rerank_score_cache_misses_total"),
            misses,
            "{max:?}"
        );
    }
    // The truncated document is another input: another score, and its hit gives it back.
    assert_ne!(scores[0], scores[1]);
    assert_eq!(scores[1], scores[2]);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instruction_is_a_miss() {
    let s = Server::start(
        ServerConfig::default(),
        Models {
            reranker: Some(reranker("tiny-qwen3-reranker")),
            ..Default::default()
        },
    )
    .await;
    let c = client();
    let body = |instruction: &str| json!({"query": "economy", "documents": ["jobs are back", "bridges"], "instruction": instruction});
    for (instruction, hits, misses) in [
        ("Judge relevance to the economy", 0.0, 2.0),
        ("Judge relevance to foreign policy", 0.0, 4.0),
        ("Judge relevance to the economy", 2.0, 4.0),
    ] {
        let (st, v) = post(&c, &s.at("/v2/rerank"), &body(instruction)).await;
        assert_eq!(st, 200, "{v}");
        let m = metrics(&s).await;
        assert_eq!(
            series(&m, "rerank_score_cache_hits_total"),
            hits,
            "{instruction}"
        );
        assert_eq!(
            series(&m, "rerank_score_cache_misses_total"),
            misses,
            "{instruction}"
        );
    }
    s.shutdown().await;
}

#[test]
fn precision_and_max_length_change_every_key() {
    let dir = model_dir("tiny-bert-ce");
    let load = |precision, max_length| {
        CrossEncoder::from_dir(
            &dir,
            CrossEncoderOptions {
                precision,
                max_length,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let f32_model = load(Precision::F32, None);
    let e = f32_model
        .encode(&[("economy", "jobs are back")], None)
        .unwrap();
    let key = |m: &CrossEncoder| PairKey::new(&ModelId::of(m), &e[0]);
    // The same model loaded twice: the same key (the fingerprint reads the files).
    assert_eq!(key(&f32_model), key(&load(Precision::F32, None)));
    assert_ne!(key(&f32_model), key(&load(Precision::Bf16, None)));
    assert_ne!(key(&f32_model), key(&load(Precision::F32, Some(64))));
    // Another model on the same ids.
    let other =
        CrossEncoder::from_dir(model_dir("tiny-bert-ce-2label"), Default::default()).unwrap();
    assert_ne!(key(&f32_model), key(&other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_bound_disables_the_cache() {
    let s = Server::tiny(ServerConfig {
        score_cache_bytes: 0,
        ..Default::default()
    })
    .await;
    assert!(s.state.score_cache.is_none());
    let c = client();
    let body = json!({"query": "economy", "texts": ["jobs are back", "bridges"]});
    let (st, a) = post(&c, &s.at("/rerank"), &body).await;
    assert_eq!(st, 200, "{a}");
    let (st, b) = post(&c, &s.at("/rerank"), &body).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(a, b);
    let m = metrics(&s).await;
    // Both requests ran the model; the cache series stay at 0.
    assert_eq!(series(&m, "rerank_batch_size_count"), 2.0);
    assert_eq!(series(&m, "rerank_batch_size_sum"), 4.0);
    for name in [
        "rerank_score_cache_hits_total",
        "rerank_score_cache_misses_total",
        "rerank_score_cache_entries",
        "rerank_score_cache_max_bytes",
    ] {
        assert_eq!(series(&m, name), 0.0, "{name}");
    }
    let info: Value = c
        .get(s.at("/info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["limits"]["score_cache_bytes"], 0);
    assert_eq!(info["limits"]["score_cache_entries"], 0);
    s.shutdown().await;
}
