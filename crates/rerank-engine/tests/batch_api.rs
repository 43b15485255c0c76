//! The "run exactly this batch" calls (`CrossEncoder::predict_batch`, `Embedder::embed_batch`)
//! and the library's own planning: every way of batching gives each input the same bits as
//! scoring it alone, the token cap is a load option of the library path only, and bad inputs
//! are errors. Expected numbers come from `../shared/reference`.

mod common;

use common::*;
use rerank_engine::tokenize::Encoded;
use rerank_engine::{
    CrossEncoder, CrossEncoderOptions, Embedder, EmbedderOptions, EngineError, Precision,
};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The cases of a cross-encoder reference entry as pairs.
fn pairs(entry: &serde_json::Value) -> Vec<(String, String)> {
    entry["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("max_length").is_none())
        .map(|c| {
            (
                c["query"].as_str().unwrap().to_string(),
                c["document"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn predict_batch_gives_every_pair_its_single_bits() {
    let reference = load_json("reference/expected-minilm-l6-sotu-ce.json");
    let entry = &reference["models"]["minilm-l6-sotu-ce"];
    for precision in [Precision::F32, Precision::Bf16] {
        let options = CrossEncoderOptions {
            precision,
            ..Default::default()
        };
        let ce = CrossEncoder::from_dir(model_dir("minilm-l6-sotu-ce"), options).unwrap();
        let owned = pairs(entry);
        let refs: Vec<(&str, &str)> = owned
            .iter()
            .map(|(q, d)| (q.as_str(), d.as_str()))
            .collect();
        let encoded = ce.encode(&refs, None).unwrap();
        let whole = ce.predict_batch(&encoded).unwrap();
        let planned = ce.predict_encoded(&encoded, 3).unwrap();
        assert_eq!(whole.len(), encoded.len());
        for (i, e) in encoded.iter().enumerate() {
            let alone = ce.predict_batch(std::slice::from_ref(e)).unwrap().remove(0);
            assert_eq!(
                bits(&whole[i].logits),
                bits(&alone.logits),
                "{precision:?} pair {i}"
            );
            assert_eq!(
                bits(&planned[i].logits),
                bits(&alone.logits),
                "{precision:?} pair {i}"
            );
        }
        if precision == Precision::F32 {
            let cases = entry["cases"].as_array().unwrap();
            let kept: Vec<_> = cases
                .iter()
                .filter(|c| c.get("max_length").is_none())
                .collect();
            for (p, c) in whole.iter().zip(kept) {
                assert_close(
                    &p.logits,
                    &f32s(&c["logits"]),
                    1e-4,
                    c["name"].as_str().unwrap(),
                );
            }
        }
    }
}

#[test]
fn predict_batch_has_no_token_cap_and_the_library_cap_is_an_option() {
    // 40 pairs truncated to 512 tokens: 20,480 tokens, above the library's default cap of
    // 16,384 padded tokens per pass.
    let speech = std::fs::read_to_string(shared().join("data/state_of_the_union.txt")).unwrap();
    let doc = &speech[..6000];
    let pairs: Vec<(&str, &str)> = (0..40)
        .map(|i| (if i % 2 == 0 { "economy" } else { "jobs" }, doc))
        .collect();
    let ce =
        CrossEncoder::from_dir(model_dir("tiny-bert-ce"), CrossEncoderOptions::default()).unwrap();
    let encoded = ce.encode(&pairs, None).unwrap();
    assert!(encoded.iter().all(|e| e.input_ids.len() == 512));
    let one_pass = ce.predict_batch(&encoded).unwrap();
    let small_cap = CrossEncoder::from_dir(
        model_dir("tiny-bert-ce"),
        CrossEncoderOptions {
            max_batch_tokens: 1024,
            ..Default::default()
        },
    )
    .unwrap();
    let planned = small_cap.predict_encoded(&encoded, 64).unwrap();
    for (i, (a, b)) in one_pass.iter().zip(&planned).enumerate() {
        assert_eq!(bits(&a.logits), bits(&b.logits), "pair {i}");
    }
    assert_eq!(
        bits(&one_pass[0].logits),
        bits(&one_pass[2].logits),
        "same pair, same bits"
    );
}

#[test]
fn embed_batch_gives_every_text_its_single_bits() {
    let reference = load_json("reference/expected.json");
    let entry = &reference["models"]["all-MiniLM-L6-v2"];
    let texts: Vec<&str> = entry["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    let emb =
        Embedder::from_dir(model_dir("all-MiniLM-L6-v2"), EmbedderOptions::default()).unwrap();
    let encoded = emb
        .tokenizer()
        .encode_texts(&texts, emb.info().max_length)
        .unwrap();
    let whole = emb.embed_batch(&encoded, 0).unwrap();
    let planned = emb.embed_encoded(&encoded, 0).unwrap();
    for (i, e) in encoded.iter().enumerate() {
        let alone = emb
            .embed_batch(std::slice::from_ref(e), 0)
            .unwrap()
            .remove(0);
        assert_eq!(bits(&whole[i]), bits(&alone), "text {i}");
        assert_eq!(bits(&planned[i]), bits(&alone), "text {i}");
        let want = f32s(&entry["cases"][i]["embedding"]);
        assert_close(&whole[i], &want, 1e-5, &format!("text {i}"));
    }
    assert!(emb.embed_batch(&[], 0).unwrap().is_empty());
}

#[test]
fn an_input_without_tokens_is_an_error_not_a_panic() {
    let ce =
        CrossEncoder::from_dir(model_dir("tiny-bert-ce"), CrossEncoderOptions::default()).unwrap();
    let good = ce.encode(&[("q", "d")], None).unwrap().remove(0);
    let empty = Encoded {
        input_ids: vec![],
        token_type_ids: vec![],
        truncated: false,
    };
    for batch in [vec![empty.clone()], vec![good.clone(), empty.clone()]] {
        match ce.predict_batch(&batch) {
            Err(EngineError::InvalidArgument(msg)) => assert!(msg.contains("no tokens"), "{msg}"),
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        assert!(matches!(
            ce.predict_encoded(&batch, 8),
            Err(EngineError::InvalidArgument(_))
        ));
    }
    let bad_id = Encoded {
        input_ids: vec![101, 9_999_999, 102],
        token_type_ids: vec![0; 3],
        truncated: false,
    };
    match ce.predict_batch(&[good, bad_id]) {
        Err(EngineError::InvalidArgument(msg)) => assert!(msg.contains("9999999"), "{msg}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert!(ce.predict_batch(&[]).unwrap().is_empty());
}
