//! One test per reported finding, named after it (issue 13, "Hardening", item 1: the
//! engine-side panics found while attacking the server).
//!
//! Each builds a broken copy of a `../shared/models` folder and checks that loading it is a
//! typed error naming the file at fault — never a panic, and never a read outside the folder.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::*;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, EngineError};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// The error of `CrossEncoder::from_dir`, turning a panic or a successful load into a test
/// failure that says so.
fn load_err(dir: &Path) -> EngineError {
    let loaded = catch_unwind(AssertUnwindSafe(|| {
        CrossEncoder::from_dir(dir, CrossEncoderOptions::default())
    }))
    .unwrap_or_else(|_| panic!("CrossEncoder::from_dir panicked on {}", dir.display()));
    match loaded {
        Ok(_) => panic!("{} loaded but should have been refused", dir.display()),
        Err(e) => e,
    }
}

/// A writable copy of `../shared/models/<name>` at `<tmp>/<name>`.
fn copy_model(tmp: &Path, name: &str) -> PathBuf {
    let dst = tmp.join(name);
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(model_dir(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let to = dst.join(entry.file_name());
            std::fs::write(&to, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
    dst
}

fn write_index(dir: &Path, weight_map: serde_json::Value) {
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_string_pretty(&index).unwrap(),
    )
    .unwrap();
}

// Issue 13 item 1: "An empty `weight_map` in a sharded index (`weights.rs` `files[0]`) …
// panic[s]". With no shard, the first missing tensor indexed an empty file list.
#[test]
fn empty_weight_map_is_an_error_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model(tmp.path(), "tiny-bert-ce-2label");
    write_index(&dir, serde_json::json!({}));
    let e = load_err(&dir);
    let msg = e.to_string();
    assert!(
        matches!(&e, EngineError::BadFile { path, .. } if path == &dir.join("model.safetensors.index.json")),
        "expected BadFile for the index, got {e:?}"
    );
    assert!(msg.contains("weight_map"), "{msg}");
}

/// Rewrites `dir/model.safetensors` with tensor `name` replaced by a 0-dimensional F32
/// scalar.
fn make_scalar(dir: &Path, name: &str) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let scalar = 0.5f32.to_le_bytes();
    let mut views: Vec<(String, TensorView<'_>)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != name)
        .collect();
    assert_eq!(views.len() + 1, st.len(), "{name} is in the checkpoint");
    views.push((
        name.to_string(),
        TensorView::new(Dtype::F32, vec![], &scalar).unwrap(),
    ));
    let out = safetensors::serialize(views, None).unwrap();
    std::fs::write(&path, out).unwrap();
}

// Issue 13 item 1: "a 0-dimensional classifier tensor (`bert.rs`, `xlm_roberta.rs` `d[0]`)
// panic[s]": the label count was read as the first dimension of a shape with none.
#[test]
fn zero_dim_classifier_tensor_is_an_error() {
    for (model, tensor) in [
        ("tiny-bert-ce", "classifier.weight"),
        ("tiny-xlmr-ce", "classifier.out_proj.weight"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = copy_model(tmp.path(), model);
        make_scalar(&dir, tensor);
        let e = load_err(&dir);
        match &e {
            EngineError::ShapeMismatch {
                path,
                tensor: t,
                actual,
                ..
            } => {
                assert_eq!(t, tensor, "{model}: {e}");
                assert!(actual.is_empty(), "{model}: {e}");
                assert_eq!(path, &dir.join("model.safetensors"), "{model}: {e}");
            }
            other => panic!("{model}: expected ShapeMismatch for {tensor}, got {other:?}"),
        }
    }
}

// Issue 13 item 1: "shard names are not checked for `..` in `weights.rs` (they are in
// `hub.rs`)": an index could make the engine read any file on the machine.
#[test]
fn shard_name_with_dotdot_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_model(tmp.path(), "tiny-bert-ce-2label");
    // Valid shards one level up, so that following the names would succeed.
    let index_text = std::fs::read_to_string(dir.join("model.safetensors.index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_str(&index_text).unwrap();
    let map = index["weight_map"].as_object().unwrap();
    let mut shards: Vec<&str> = map.values().map(|v| v.as_str().unwrap()).collect();
    shards.sort_unstable();
    shards.dedup();
    assert_eq!(shards.len(), 2);
    for shard in shards {
        std::fs::rename(dir.join(shard), tmp.path().join(shard)).unwrap();
    }
    for escape in [
        |s: &str, _: &Path| format!("../{s}"),
        |s: &str, parent: &Path| parent.join(s).to_string_lossy().into_owned(),
    ] {
        let escaped: serde_json::Map<String, serde_json::Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), escape(v.as_str().unwrap(), tmp.path()).into()))
            .collect();
        write_index(&dir, serde_json::Value::Object(escaped));
        let e = load_err(&dir);
        let msg = e.to_string();
        assert!(
            matches!(&e, EngineError::BadFile { path, .. } if path == &dir.join("model.safetensors.index.json")),
            "expected BadFile for the index, got {e:?}"
        );
        assert!(msg.contains("not a plain relative file name"), "{msg}");
    }
}
