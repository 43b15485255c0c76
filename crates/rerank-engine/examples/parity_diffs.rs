//! Prints the largest differences between this engine and the PyTorch reference
//! (`../shared/reference`): logits of every cross-encoder case scored alone and in one batch,
//! and embeddings of the bi-encoders — the numbers behind the parity tests' tolerances.
//!
//! ```text
//! cargo run --release -p rerank-engine --example parity_diffs [SHARED_DIR=../shared]
//! ```

use std::path::{Path, PathBuf};

use rerank_engine::{CrossEncoder, CrossEncoderOptions, Embedder, EmbedderOptions};
use serde_json::Value;

fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
        other => vec![other.as_f64().unwrap() as f32],
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn cross_encoder(shared: &Path, reference: &Value, name: &str) {
    let entry = &reference["models"][name];
    let ce = CrossEncoder::from_dir(
        shared.join("models").join(name),
        CrossEncoderOptions::default(),
    )
    .unwrap();
    let mut encoded = Vec::new();
    let mut want = Vec::new();
    let (mut single_vs_ref, mut batch_vs_ref, mut batch_vs_single) = (0f32, 0f32, 0f32);
    let mut singles = Vec::new();
    for case in entry["cases"].as_array().unwrap() {
        let pair = (
            case["query"].as_str().unwrap(),
            case["document"].as_str().unwrap(),
        );
        let max_length = case
            .get("max_length")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let enc = ce.encode(&[pair], max_length).unwrap().remove(0);
        let single = ce
            .predict_encoded(std::slice::from_ref(&enc), 1)
            .unwrap()
            .remove(0);
        let expected = f32s(&case["logits"]);
        single_vs_ref = single_vs_ref.max(max_diff(&single.logits, &expected));
        singles.push(single.logits);
        want.push(expected);
        encoded.push(enc);
    }
    let batched = ce.predict_encoded(&encoded, encoded.len()).unwrap();
    for ((b, w), s) in batched.iter().zip(&want).zip(&singles) {
        batch_vs_ref = batch_vs_ref.max(max_diff(&b.logits, w));
        batch_vs_single = batch_vs_single.max(max_diff(&b.logits, s));
    }
    println!(
        "{name:22} {:3} cases  max |logit − ref|: single {single_vs_ref:.2e}, batched \
         {batch_vs_ref:.2e};  max |batched − single| {batch_vs_single:.2e}",
        encoded.len()
    );
}

fn embedder(shared: &Path, reference: &Value, name: &str) {
    let entry = &reference["models"][name];
    let e =
        Embedder::from_dir(shared.join("models").join(name), EmbedderOptions::default()).unwrap();
    let texts: Vec<&str> = entry["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    let batched = e.embed(&texts).unwrap();
    let (mut single_vs_ref, mut batch_vs_ref, mut batch_vs_single) = (0f32, 0f32, 0f32);
    for (case, b) in entry["cases"].as_array().unwrap().iter().zip(&batched) {
        let want = f32s(&case["embedding"]);
        let single = e
            .embed(&[case["text"].as_str().unwrap()])
            .unwrap()
            .remove(0);
        single_vs_ref = single_vs_ref.max(max_diff(&single, &want));
        batch_vs_ref = batch_vs_ref.max(max_diff(b, &want));
        batch_vs_single = batch_vs_single.max(max_diff(b, &single));
    }
    println!(
        "{name:22} {:3} texts  max |emb − ref|:   single {single_vs_ref:.2e}, batched \
         {batch_vs_ref:.2e};  max |batched − single| {batch_vs_single:.2e}",
        texts.len()
    );
}

fn main() {
    let shared = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared".into()),
    );
    let reference = load(&shared.join("reference/expected.json"));
    for name in ["tiny-bert-ce", "tiny-bert-ce-2label", "tiny-xlmr-ce"] {
        cross_encoder(&shared, &reference, name);
    }
    let minilm = load(&shared.join("reference/expected-minilm-l6-sotu-ce.json"));
    cross_encoder(&shared, &minilm, "minilm-l6-sotu-ce");
    for name in ["tiny-bert-embedder", "all-MiniLM-L6-v2"] {
        embedder(&shared, &reference, name);
    }
}
