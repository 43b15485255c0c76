//! Shared helpers of the integration tests: where `../shared` is, and JSON access.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// `../shared` beside the repository clone (override with `RERANK_SHARED`).
pub fn shared() -> PathBuf {
    std::env::var_os("RERANK_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

pub fn model_dir(name: &str) -> PathBuf {
    shared().join("models").join(name)
}

pub fn load_json(rel: &str) -> Value {
    let path = shared().join(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn f32s(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
        other => vec![other.as_f64().unwrap() as f32],
    }
}

pub fn assert_close(actual: &[f32], expected: &[f32], tol: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "{what}[{i}]: got {a}, expected {e} (|diff| {} > {tol})",
            (a - e).abs()
        );
    }
}
