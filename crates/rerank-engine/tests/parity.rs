//! Parity with the PyTorch reference in `../shared/reference`: token ids exact, logits and
//! scores within the tolerances of `../shared/reference/README.md`, batched = single.

mod common;

use common::*;
use rerank_engine::{CrossEncoder, CrossEncoderOptions};
use serde_json::Value;

/// Checks every case and rank case of one cross-encoder entry of a reference file.
fn check_model(reference: &Value, name: &str, tol: f32) {
    let entry = &reference["models"][name];
    let ce = CrossEncoder::from_dir(model_dir(name), CrossEncoderOptions::default()).unwrap();
    let info = ce.info();
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

    let cases = entry["cases"].as_array().unwrap();
    let mut all_encoded = Vec::new();
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
        assert_eq!(
            enc.token_type_ids,
            u32s(&case["token_type_ids"]),
            "{case_name}: token_type_ids"
        );

        let single = ce
            .predict_encoded(std::slice::from_ref(&enc), 1)
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
        all_encoded.push(enc);
    }

    // One padded batch of every case, and small batches: each pair's logits must not depend
    // on the batch it lands in.
    for batch_size in [cases.len(), 5] {
        let batched = ce.predict_encoded(&all_encoded, batch_size).unwrap();
        for (i, (b, s)) in batched.iter().zip(&singles).enumerate() {
            assert_close(
                &b.logits,
                &s.logits,
                1e-5,
                &format!("{name} case {i} batched({batch_size}) vs single"),
            );
        }
    }

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
        assert_eq!(got, want, "{name} rank case {k}: order");
        for (r, e) in ranked.iter().zip(expected) {
            assert_close(
                &[r.score],
                &f32s(&e["score"]),
                tol,
                &format!("{name} rank case {k}: score"),
            );
            assert_close(
                &r.logits,
                &f32s(&e["logit"]),
                tol,
                &format!("{name} rank case {k}: logits"),
            );
        }
    }
}

#[test]
fn tiny_bert_ce_matches_pytorch() {
    check_model(&load_json("reference/expected.json"), "tiny-bert-ce", 1e-5);
}

#[test]
fn tiny_bert_ce_2label_bf16_sharded_matches_pytorch() {
    check_model(
        &load_json("reference/expected.json"),
        "tiny-bert-ce-2label",
        1e-4,
    );
}

#[test]
fn tiny_xlmr_ce_f16_matches_pytorch() {
    check_model(&load_json("reference/expected.json"), "tiny-xlmr-ce", 1e-4);
}

#[test]
fn minilm_l6_sotu_ce_matches_pytorch() {
    check_model(
        &load_json("reference/expected-minilm-l6-sotu-ce.json"),
        "minilm-l6-sotu-ce",
        1e-4,
    );
}
