//! ModernBERT cross-encoders against the PyTorch reference in
//! `../shared/reference/expected-llm.json` (transformers 5.24, fp32, eager attention):
//! `tiny-modernbert-ce` (F32, cls pooling, window 16, global every 3rd layer; tolerance 1e-5)
//! and `tiny-modernbert-ce-mean` (F16 on disk, mean pooling, window 8, global every 2nd layer;
//! 1e-4). Token ids exact, logits and scores within tolerance, every case alone equal to its
//! value inside one batch of all cases within 1e-5, and the ranking of the cases that share a
//! query in the reference order.

mod common;

use common::*;
use rerank_engine::config::Family;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, Embedder, Precision};
use serde_json::Value;

/// Indices sorted by `key` descending, ties by lower index.
fn order_by(keys: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..keys.len()).collect();
    idx.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]).then(a.cmp(&b)));
    idx
}

fn load(name: &str, precision: Precision) -> CrossEncoder {
    CrossEncoder::from_dir(
        model_dir(name),
        CrossEncoderOptions {
            precision,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Checks every case of one ModernBERT entry of `expected-llm.json`.
fn check_model(name: &str, tol: f32) {
    let reference = load_json("reference/expected-llm.json");
    let entry = &reference["models"][name];
    let ce = load(name, Precision::F32);
    let info = ce.info();
    assert_eq!(info.architecture, "ModernBertForSequenceClassification");
    assert_eq!(info.family, Family::named("ModernBert"));
    assert_eq!(
        info.num_labels as u64,
        entry["num_labels"].as_u64().unwrap(),
        "{name}: num_labels"
    );
    assert_eq!(
        info.max_length as u64,
        entry["max_length"].as_u64().unwrap(),
        "{name}: max_length"
    );
    assert_eq!(
        info.num_hidden_layers as u64,
        entry["layers"].as_u64().unwrap(),
        "{name}: layers"
    );

    let cases = entry["cases"].as_array().unwrap();
    assert!(cases.len() >= 10, "{name}: reference cases missing");
    let mut encoded = Vec::new();
    let mut singles = Vec::new();
    for case in cases {
        let case_name = format!("{name}/{}", case["name"].as_str().unwrap());
        let pair = (
            case["query"].as_str().unwrap(),
            case["document"].as_str().unwrap(),
        );
        let max_length = case
            .get("max_length")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let enc = ce.encode(&[pair], max_length).unwrap().remove(0);
        assert_eq!(
            enc.input_ids,
            u32s(&case["input_ids"]),
            "{case_name}: input_ids"
        );
        let single = ce
            .predict_batch(std::slice::from_ref(&enc))
            .unwrap()
            .remove(0);
        assert_close(
            &single.logits,
            &f32s(&case["logits"]),
            tol,
            &format!("{case_name}: logits"),
        );
        assert_close(
            &[single.score],
            &f32s(&case["score"]),
            tol,
            &format!("{case_name}: score"),
        );
        singles.push(single);
        encoded.push(enc);
    }

    // One batch of every case (lengths 7 … 512: the local windows of the short ones must
    // not reach into anything else), then the library's own length-sorted planning.
    let batched = ce.predict_batch(&encoded).unwrap();
    let planned = ce.predict_encoded(&encoded, 5).unwrap();
    for (i, s) in singles.iter().enumerate() {
        assert_close(
            &batched[i].logits,
            &s.logits,
            1e-5,
            &format!("{name} case {i} in one batch vs alone"),
        );
        assert_close(
            &planned[i].logits,
            &s.logits,
            1e-5,
            &format!("{name} case {i} batches of 5 vs alone"),
        );
    }

    // The cases that share a query, ranked: the reference logits give the order.
    let query = cases[0]["query"].as_str().unwrap();
    let same: Vec<&Value> = cases
        .iter()
        .filter(|c| c["query"].as_str() == Some(query))
        .collect();
    assert!(same.len() >= 3, "{name}: cases sharing the first query");
    let docs: Vec<&str> = same
        .iter()
        .map(|c| c["document"].as_str().unwrap())
        .collect();
    let want_logits: Vec<f32> = same.iter().map(|c| f32s(&c["logits"])[0]).collect();
    let ranked = ce.rank(query, &docs, docs.len()).unwrap();
    let got: Vec<usize> = ranked.iter().map(|r| r.index).collect();
    assert_eq!(got, order_by(&want_logits), "{name}: rank order");
    for r in &ranked {
        assert_close(
            &r.logits,
            &[want_logits[r.index]],
            tol,
            &format!("{name}: rank logit of document {}", r.index),
        );
    }
}

/// TEI #590/#591: the sequence-classification head (`head.dense` → act → `head.norm` →
/// `classifier`) on the `[CLS]` token, with global and sliding-window layers.
#[test]
fn tei_591_modernbert_cls_classifier_head_matches_pytorch() {
    check_model("tiny-modernbert-ce", 1e-5);
}

/// TEI #615/#616: `classifier_pooling: "mean"` pools over the real tokens before the head
/// (TEI first used the first token whatever the config said). F16 weights upcast.
#[test]
fn tei_616_modernbert_mean_classifier_pooling_matches_pytorch() {
    check_model("tiny-modernbert-ce-mean", 1e-4);
}

/// bf16 linear layers: not PyTorch parity, but close to it and the same ranking of the cases
/// that share a query; batch = single holds in every precision.
#[test]
fn modernbert_bf16_stays_close_and_batch_equals_single() {
    let reference = load_json("reference/expected-llm.json");
    for name in ["tiny-modernbert-ce", "tiny-modernbert-ce-mean"] {
        let ce = load(name, Precision::Bf16);
        let cases = reference["models"][name]["cases"].as_array().unwrap();
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
        let batched = ce.predict_batch(&encoded).unwrap();
        for (i, (enc, case)) in encoded.iter().zip(cases).enumerate() {
            let single = ce
                .predict_batch(std::slice::from_ref(enc))
                .unwrap()
                .remove(0);
            assert_close(
                &batched[i].logits,
                &single.logits,
                1e-5,
                &format!("{name} bf16 case {i}: batch vs single"),
            );
            // Random tiny weights with logits spanning −5.5 … 3.4; bf16 rounds every
            // linear input to 8 bits of mantissa.
            assert_close(
                &single.logits,
                &f32s(&case["logits"]),
                0.25,
                &format!("{name} bf16 case {i}: logits vs PyTorch fp32"),
            );
        }
    }
}

/// The ModernBERT body as a bi-encoder: loads through the registry, pools (mean by default,
/// no `1_Pooling` folder), and one batch equals each text alone.
#[test]
fn modernbert_body_embeds_and_batch_equals_single() {
    let emb = Embedder::from_dir(model_dir("tiny-modernbert-ce"), Default::default()).unwrap();
    let texts = [
        "What is the plan for the economy?",
        "jobs",
        "A longer sentence about infrastructure, bridges, roads and the ports of the nation, long enough to pass the local window several times over.",
    ];
    let all = emb.embed(&texts).unwrap();
    assert_eq!(all.len(), texts.len());
    for (i, t) in texts.iter().enumerate() {
        let one = emb.embed(&[*t]).unwrap().remove(0);
        assert_eq!(one.len(), 48);
        assert_close(&all[i], &one, 1e-5, &format!("text {i}: batch vs alone"));
    }
}

/// Bad input is refused with an error, not a panic: a sequence beyond
/// `max_position_embeddings` and a token id outside the vocabulary.
#[test]
fn modernbert_out_of_range_input_is_an_error() {
    let ce = load("tiny-modernbert-ce", Precision::F32);
    let mut enc = ce.encode(&[("q", "d")], None).unwrap().remove(0);
    enc.input_ids[1] = 1_000_000;
    let e = ce.predict_batch(std::slice::from_ref(&enc)).unwrap_err();
    assert!(e.to_string().contains("1000000"), "{e}");
    let mut long = ce.encode(&[("q", "d")], None).unwrap().remove(0);
    long.input_ids = vec![5; 513];
    long.token_type_ids = vec![0; 513];
    assert!(ce.predict_batch(std::slice::from_ref(&long)).is_err());
}
