//! `Precision::Bf16` against the PyTorch fp32 reference of the real `minilm-l6-sotu-ce`
//! (`../shared/reference/expected-minilm-l6-sotu-ce.json`): the same ranking of the reference
//! cases and of every rank case, logits within a stated bound, and batched = single.

mod common;

use common::*;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, Precision};
use serde_json::Value;

/// Largest |logit − PyTorch fp32 logit| accepted under `Precision::Bf16`. Measured max over the
/// 20 cases and 3 rank cases: 0.0249 (AMX kernel), 0.0216 (`RERANK_KERNEL_ISA=avx512bf16`);
/// the bound leaves 4× headroom. (The logits span −3.8 … 3.4; the two closest reference
/// cases are 0.002 apart and kept their order under both kernels.)
const BF16_LOGIT_BOUND: f32 = 0.1;

/// Indices sorted by `key` descending, ties by lower index.
fn order_by(keys: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]).then(a.cmp(&b)));
    idx
}

#[test]
fn minilm_l6_sotu_ce_bf16_keeps_the_reference_ranking() {
    let name = "minilm-l6-sotu-ce";
    let reference = load_json("reference/expected-minilm-l6-sotu-ce.json");
    let entry = &reference["models"][name];
    let ce = CrossEncoder::from_dir(
        model_dir(name),
        CrossEncoderOptions {
            precision: Precision::Bf16,
            ..Default::default()
        },
    )
    .unwrap();

    let cases = entry["cases"].as_array().unwrap();
    let mut encoded = Vec::new();
    for case in cases {
        let pair = (
            case["query"].as_str().unwrap(),
            case["document"].as_str().unwrap(),
        );
        let max_length = case
            .get("max_length")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        encoded.push(ce.encode(&[pair], max_length).unwrap().remove(0));
    }
    let singles: Vec<f32> = encoded
        .iter()
        .map(|e| ce.predict_encoded(std::slice::from_ref(e), 1).unwrap()[0].logits[0])
        .collect();
    let want: Vec<f32> = cases.iter().map(|c| f32s(&c["logits"])[0]).collect();
    let max_diff = singles
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    eprintln!(
        "bf16 max |logit diff| over {} cases: {max_diff}",
        cases.len()
    );
    assert!(
        max_diff <= BF16_LOGIT_BOUND,
        "bf16 logits moved by {max_diff} > {BF16_LOGIT_BOUND}"
    );
    assert_eq!(
        order_by(&singles),
        order_by(&want),
        "bf16 orders the reference cases differently: got {singles:?}, want {want:?}"
    );

    // A pair's logits do not depend on the batch it lands in.
    for batch_size in [cases.len(), 5] {
        let batched = ce.predict_encoded(&encoded, batch_size).unwrap();
        for (i, (b, s)) in batched.iter().zip(&singles).enumerate() {
            assert_close(
                &b.logits,
                &[*s],
                1e-5,
                &format!("case {i} batched({batch_size}) vs single"),
            );
        }
    }

    let mut rank_diff = 0f32;
    for (k, rc) in entry["rank_cases"].as_array().unwrap().iter().enumerate() {
        let docs: Vec<&str> = rc["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let top_n = rc["top_n"].as_u64().unwrap() as usize;
        let ranked = ce
            .rank(rc["query"].as_str().unwrap(), &docs, top_n)
            .unwrap();
        let expected = rc["expected"].as_array().unwrap();
        let got: Vec<u64> = ranked.iter().map(|r| r.index as u64).collect();
        let want: Vec<u64> = expected
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(got, want, "rank case {k}: order");
        for (r, e) in ranked.iter().zip(expected) {
            rank_diff = rank_diff.max((r.logits[0] - f32s(&e["logit"])[0]).abs());
        }
    }
    eprintln!("bf16 max |logit diff| over the rank cases: {rank_diff}");
    assert!(
        rank_diff <= BF16_LOGIT_BOUND,
        "bf16 rank-case logits moved by {rank_diff} > {BF16_LOGIT_BOUND}"
    );
}

/// Smallest cosine similarity accepted between a `Precision::Bf16` embedding of
/// all-MiniLM-L6-v2 and the PyTorch fp32 one (`../shared/reference/expected.json`). Measured
/// minimum over the 15 texts: 0.999967 (AMX and AVX512-BF16 kernels), i.e. 1 − cos = 3.3e-5;
/// the bound allows 6× that.
const BF16_MIN_COSINE: f64 = 0.9998;

#[test]
fn all_minilm_l6_v2_bf16_embeddings_stay_close_to_pytorch() {
    let name = "all-MiniLM-L6-v2";
    let reference = load_json("reference/expected.json");
    let cases = reference["models"][name]["cases"].as_array().unwrap();
    let embedder = rerank_engine::Embedder::from_dir(
        model_dir(name),
        rerank_engine::EmbedderOptions {
            precision: Precision::Bf16,
            ..Default::default()
        },
    )
    .unwrap();
    let texts: Vec<&str> = cases.iter().map(|c| c["text"].as_str().unwrap()).collect();
    let got = embedder.embed(&texts).unwrap();
    let mut min_cos = f64::MAX;
    for (g, case) in got.iter().zip(cases) {
        let want = f32s(&case["embedding"]);
        let dot: f64 = g
            .iter()
            .zip(&want)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        min_cos = min_cos.min(dot / (norm(g) * norm(&want)));
    }
    eprintln!(
        "bf16 embeddings: min cosine to PyTorch fp32 over {} texts: {min_cos}",
        cases.len()
    );
    assert!(
        min_cos >= BF16_MIN_COSINE,
        "min cosine {min_cos} < {BF16_MIN_COSINE}"
    );
}
