//! Loading paths and refusals: `pytorch_model.bin`, bi-encoder folders, broken copies of
//! tiny-bert-ce (architecture, shapes, weights file, config), `max_length` limits and the
//! edge cases of `rank`. Expected numbers come from `../shared/reference/expected.json`.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::*;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, EngineError};
use serde_json::Value;

/// `CrossEncoder::from_dir`, turning a panic into a test failure that says so.
fn try_load(dir: &Path, options: CrossEncoderOptions) -> Result<CrossEncoder, EngineError> {
    catch_unwind(AssertUnwindSafe(|| CrossEncoder::from_dir(dir, options)))
        .unwrap_or_else(|_| panic!("CrossEncoder::from_dir panicked on {}", dir.display()))
}

fn load_err(dir: &Path) -> EngineError {
    match try_load(dir, CrossEncoderOptions::default()) {
        Ok(_) => panic!("{} loaded but should have been refused", dir.display()),
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            e
        }
    }
}

fn tiny_bert_reference() -> Value {
    load_json("reference/expected.json")["models"]["tiny-bert-ce"].clone()
}

fn ref_case<'a>(entry: &'a Value, name: &str) -> &'a Value {
    entry["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("reference has no case {name}"))
}

fn pair(case: &Value) -> (&str, &str) {
    (
        case["query"].as_str().unwrap(),
        case["document"].as_str().unwrap(),
    )
}

/// A writable copy of `../shared/models/<name>` (the shared folder is read-only).
fn copy_model(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(model_dir(name)).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let to = dst.join(entry.file_name());
            std::fs::copy(entry.path(), &to).unwrap();
            // Copies keep the read-only mode of ../shared; make them writable.
            let mut perm = std::fs::metadata(&to).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&to, perm).unwrap();
        }
    }
    (tmp, dst)
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let path = dir.join("config.json");
    let mut cfg: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(cfg.as_object_mut().unwrap());
    std::fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

/// Every reference case of tiny-bert-ce (ids exact, logits and scores within 1e-5).
fn check_against_tiny_bert_reference(ce: &CrossEncoder, what: &str) {
    let entry = tiny_bert_reference();
    assert_eq!(ce.info().num_labels, 1, "{what}: num_labels");
    assert_eq!(
        ce.info().max_length as u64,
        entry["max_length"].as_u64().unwrap(),
        "{what}: max_length"
    );
    for case in entry["cases"].as_array().unwrap() {
        let name = format!("{what}/{}", case["name"].as_str().unwrap());
        let max_length = case
            .get("max_length")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let enc = ce.encode(&[pair(case)], max_length).unwrap();
        assert_eq!(
            enc[0].input_ids,
            u32s(&case["input_ids"]),
            "{name}: input_ids"
        );
        let p = ce.predict_encoded(&enc, 1).unwrap().remove(0);
        assert_close(
            &p.logits,
            &f32s(&case["logits"]),
            1e-5,
            &format!("{name}: logits"),
        );
        assert_close(
            &[p.score],
            &f32s(&case["score"]),
            1e-5,
            &format!("{name}: score"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// pytorch_model.bin

#[test]
fn pytorch_model_bin_loads_through_candle_pickle_and_matches_reference() {
    let dir = model_dir("tiny-bert-ce-bin");
    assert!(dir.join("pytorch_model.bin").is_file());
    assert!(!dir.join("model.safetensors").exists());
    match try_load(&dir, CrossEncoderOptions::default()) {
        Ok(ce) => {
            // candle's pickle reader handles torch.save's zip format: the same numbers as the
            // safetensors copy.
            assert_eq!(ce.info().stored_dtype, "F32");
            assert_eq!(ce.info().architecture, "BertForSequenceClassification");
            check_against_tiny_bert_reference(&ce, "tiny-bert-ce-bin");
        }
        Err(e) => {
            // The other acceptable outcome: a typed refusal that says how to convert. It is
            // not what candle 0.11 does on this file, so fail loudly if it ever changes.
            let msg = e.to_string();
            assert!(
                matches!(e, EngineError::PickleUnsupported { .. })
                    && msg.contains("pytorch_model.bin")
                    && msg.contains("safe_serialization=True"),
                "unexpected error for pytorch_model.bin: {msg}"
            );
            panic!("pytorch_model.bin was refused (candle could read it before): {msg}");
        }
    }
}

#[test]
fn unreadable_pytorch_model_bin_is_pickle_unsupported_with_conversion_hint() {
    let (_tmp, dir) = copy_model("tiny-bert-ce-bin");
    std::fs::write(
        dir.join("pytorch_model.bin"),
        b"this is not a torch checkpoint",
    )
    .unwrap();
    let e = load_err(&dir);
    let msg = e.to_string();
    assert!(
        matches!(e, EngineError::PickleUnsupported { .. }),
        "expected PickleUnsupported, got {e:?}"
    );
    assert!(msg.contains("pytorch_model.bin"), "{msg}");
    assert!(
        msg.contains("safetensors") && msg.contains("save_pretrained"),
        "message must say how to convert: {msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Wrong kind of folder

#[test]
fn bi_encoder_folder_is_refused_naming_the_classifier_and_file() {
    let dir = model_dir("all-MiniLM-L6-v2");
    let e = load_err(&dir);
    let msg = e.to_string();
    match &e {
        EngineError::MissingTensor { path, tensor, .. } => {
            assert_eq!(tensor, "classifier.weight", "{msg}");
            assert_eq!(path.file_name().unwrap(), "model.safetensors", "{msg}");
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    assert!(msg.contains("classifier.weight"), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(msg.contains("bi-encoder"), "{msg}");
}

#[test]
fn missing_folder_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-model");
    let e = load_err(&missing);
    assert!(
        matches!(&e, EngineError::NotFound { path, .. } if path == &missing),
        "expected NotFound for {}, got {e:?}",
        missing.display()
    );
    assert!(e.to_string().contains("no-such-model"), "{e}");
}

#[test]
fn folder_without_weights_is_not_found() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = load_err(&dir);
    assert!(matches!(e, EngineError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Broken copies of tiny-bert-ce

#[test]
fn the_unmodified_copy_loads() {
    // Control for the tests below: the copy itself is fine.
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    let ce = try_load(&dir, CrossEncoderOptions::default()).unwrap();
    let case = ref_case(&tiny_bert_reference(), "short_english").clone();
    let p = ce.predict(&[pair(&case)]).unwrap().remove(0);
    assert_close(
        &p.logits,
        &f32s(&case["logits"]),
        1e-5,
        "copy: short_english",
    );
}

#[test]
fn causal_lm_architecture_is_unsupported_naming_it_and_the_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    edit_config(&dir, |c| {
        c.insert(
            "architectures".into(),
            serde_json::json!(["LlamaForCausalLM"]),
        );
    });
    let e = load_err(&dir);
    let msg = e.to_string();
    match &e {
        EngineError::UnsupportedArchitecture {
            path, architecture, ..
        } => {
            assert_eq!(architecture, "LlamaForCausalLM");
            assert_eq!(path, &dir.join("config.json"));
        }
        other => panic!("expected UnsupportedArchitecture, got {other:?}"),
    }
    assert!(msg.contains("LlamaForCausalLM"), "{msg}");
    assert!(msg.contains("config.json"), "{msg}");
    assert!(
        msg.contains("BertForSequenceClassification"),
        "should list what is supported: {msg}"
    );
}

fn expect_shape_mismatch(dir: &Path, want_tensor: &str) {
    let e = load_err(dir);
    let msg = e.to_string();
    match &e {
        EngineError::ShapeMismatch {
            path,
            tensor,
            actual,
            expected,
        } => {
            assert_eq!(tensor, want_tensor, "{msg}");
            assert_eq!(path, &dir.join("model.safetensors"), "{msg}");
            assert_ne!(actual, expected, "{msg}");
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(msg.contains(want_tensor), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
}

#[test]
fn changed_hidden_size_is_a_shape_mismatch_naming_tensor_and_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    edit_config(&dir, |c| {
        // 64 is still a multiple of the 4 heads, so config.json itself is valid.
        c.insert("hidden_size".into(), 64.into());
        c.insert("intermediate_size".into(), 128.into());
    });
    expect_shape_mismatch(&dir, "bert.embeddings.word_embeddings.weight");
}

#[test]
fn changed_intermediate_size_is_a_shape_mismatch_naming_tensor_and_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    edit_config(&dir, |c| {
        c.insert("intermediate_size".into(), 48.into());
    });
    expect_shape_mismatch(&dir, "bert.encoder.layer.0.intermediate.dense.weight");
}

fn expect_bad_file(dir: &Path, file: &str) {
    let e = load_err(dir);
    let msg = e.to_string();
    assert!(
        matches!(&e, EngineError::BadFile { path, .. } if path == &dir.join(file)),
        "expected BadFile for {file}, got {e:?}"
    );
    assert!(msg.contains(file), "{msg}");
}

#[test]
fn truncated_safetensors_is_a_bad_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    expect_bad_file(&dir, "model.safetensors");
}

#[test]
fn garbage_safetensors_is_a_bad_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    let path = dir.join("model.safetensors");
    // A header length far beyond the file, then noise.
    let mut junk = u64::MAX.to_le_bytes().to_vec();
    junk.extend((0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
    std::fs::write(&path, junk).unwrap();
    expect_bad_file(&dir, "model.safetensors");
    // And an empty file.
    std::fs::write(&path, b"").unwrap();
    expect_bad_file(&dir, "model.safetensors");
}

#[test]
fn malformed_config_json_is_a_bad_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    std::fs::write(dir.join("config.json"), "{\"architectures\": [\"BertForSeq").unwrap();
    expect_bad_file(&dir, "config.json");
}

#[test]
fn config_json_without_a_shape_field_is_a_bad_file() {
    let (_tmp, dir) = copy_model("tiny-bert-ce");
    edit_config(&dir, |c| {
        c.remove("hidden_size");
    });
    expect_bad_file(&dir, "config.json");
    let msg = load_err(&dir).to_string();
    assert!(
        msg.contains("hidden_size"),
        "should name the missing field: {msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// max_length

fn options(max_length: Option<usize>) -> CrossEncoderOptions {
    CrossEncoderOptions {
        max_length,
        ..CrossEncoderOptions::default()
    }
}

#[test]
fn max_length_without_room_for_special_tokens_is_refused() {
    let dir = model_dir("tiny-bert-ce");
    for m in [0, 2, 3] {
        match try_load(&dir, options(Some(m))) {
            Err(EngineError::InvalidArgument(msg)) => {
                assert!(msg.contains(&m.to_string()), "{msg}")
            }
            Err(e) => panic!("max_length {m}: expected InvalidArgument, got {e:?}"),
            Ok(_) => panic!("max_length {m} was accepted: no room for [CLS] q [SEP] d [SEP]"),
        }
    }
    // The smallest usable value: 3 special tokens + 1 text token.
    let ce = try_load(&dir, options(Some(4))).unwrap();
    assert_eq!(ce.info().max_length, 4);
    let enc = ce
        .encode(&[("hello world", "goodbye world")], None)
        .unwrap();
    assert_eq!(enc[0].input_ids.len(), 4);
    assert!(enc[0].truncated);
}

#[test]
fn max_length_beyond_positions_is_refused() {
    let dir = model_dir("tiny-bert-ce");
    match try_load(&dir, options(Some(10_000))) {
        Err(EngineError::InvalidArgument(msg)) => {
            assert!(msg.contains("10000") && msg.contains("512"), "{msg}")
        }
        Err(e) => panic!("expected InvalidArgument, got {e:?}"),
        Ok(_) => panic!("max_length 10000 accepted with 512 positions"),
    }
    match try_load(&dir, options(Some(513))) {
        Err(EngineError::InvalidArgument(_)) => {}
        other => panic!("max_length 513 with 512 positions: {:?}", other.err()),
    }
    assert_eq!(
        try_load(&dir, options(Some(512)))
            .unwrap()
            .info()
            .max_length,
        512
    );
    // Per call as well.
    let ce = try_load(&dir, CrossEncoderOptions::default()).unwrap();
    assert!(matches!(
        ce.encode(&[("q", "d")], Some(10_000)),
        Err(EngineError::InvalidArgument(_))
    ));
    assert!(matches!(
        ce.encode(&[("q", "d")], Some(2)),
        Err(EngineError::InvalidArgument(_))
    ));
}

#[test]
fn explicit_max_length_16_reproduces_the_reference_case() {
    let entry = tiny_bert_reference();
    let case = ref_case(&entry, "explicit_max_length_16");
    assert_eq!(case["max_length"], 16);
    let want_ids = u32s(&case["input_ids"]);
    let want_types = u32s(&case["token_type_ids"]);

    // Per call.
    let ce = try_load(&model_dir("tiny-bert-ce"), CrossEncoderOptions::default()).unwrap();
    let enc = ce.encode(&[pair(case)], Some(16)).unwrap();
    assert_eq!(enc[0].input_ids, want_ids, "input_ids");
    assert_eq!(enc[0].token_type_ids, want_types, "token_type_ids");
    assert!(enc[0].truncated);
    let p = ce.predict_encoded(&enc, 1).unwrap().remove(0);
    assert_close(&p.logits, &f32s(&case["logits"]), 1e-5, "logits");
    assert_close(&[p.score], &f32s(&case["score"]), 1e-5, "score");
    // Without the override the pair is not truncated, and scores differently.
    let full = ce.encode(&[pair(case)], None).unwrap();
    assert!(full[0].input_ids.len() > 16 && !full[0].truncated);

    // As a load option, predict() uses it.
    let ce16 = try_load(&model_dir("tiny-bert-ce"), options(Some(16))).unwrap();
    assert_eq!(ce16.info().max_length, 16);
    let p16 = ce16.predict(&[pair(case)]).unwrap().remove(0);
    assert_close(&p16.logits, &f32s(&case["logits"]), 1e-5, "option logits");
}

// ---------------------------------------------------------------------------------------------
// rank edge cases

#[test]
fn rank_edge_cases() {
    let entry = tiny_bert_reference();
    let ce = try_load(&model_dir("tiny-bert-ce"), CrossEncoderOptions::default()).unwrap();

    assert!(ce.rank("anything", &[], 3).unwrap().is_empty());
    assert!(ce.rank("anything", &[], 1).unwrap().is_empty());

    match ce.rank("anything", &["a document"], 0) {
        Err(EngineError::InvalidArgument(msg)) => assert!(msg.contains("top_n"), "{msg}"),
        other => panic!("top_n = 0: expected InvalidArgument, got {other:?}"),
    }

    for (k, rc) in entry["rank_cases"].as_array().unwrap().iter().enumerate() {
        let query = rc["query"].as_str().unwrap();
        let docs: Vec<&str> = rc["documents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let ranked = ce.rank(query, &docs, docs.len() + 7).unwrap();
        assert_eq!(
            ranked.len(),
            docs.len(),
            "rank case {k}: all documents returned"
        );
        let mut seen: Vec<usize> = ranked.iter().map(|r| r.index).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..docs.len()).collect::<Vec<_>>(),
            "rank case {k}: each once"
        );
        for w in ranked.windows(2) {
            assert!(
                w[0].logit > w[1].logit || (w[0].logit == w[1].logit && w[0].index < w[1].index),
                "rank case {k}: not sorted: {:?} before {:?}",
                (w[0].index, w[0].logit),
                (w[1].index, w[1].logit)
            );
        }
        // The reference's top_n are the head of the full ranking.
        let expected = rc["expected"].as_array().unwrap();
        for (r, e) in ranked.iter().zip(expected) {
            assert_eq!(
                r.index as u64,
                e["index"].as_u64().unwrap(),
                "rank case {k}: order"
            );
            assert_close(
                &r.logits,
                &f32s(&e["logit"]),
                1e-5,
                &format!("rank case {k}"),
            );
            assert_close(
                &[r.score],
                &f32s(&e["score"]),
                1e-5,
                &format!("rank case {k}"),
            );
        }
        // Documents beyond the reference's top_n: check against a reference case with the
        // same pair, when there is one.
        for r in &ranked[expected.len()..] {
            if let Some(c) = entry["cases"].as_array().unwrap().iter().find(|c| {
                c["query"] == query
                    && c["document"] == docs[r.index]
                    && c.get("max_length").is_none()
            }) {
                assert_close(
                    &r.logits,
                    &f32s(&c["logits"]),
                    1e-5,
                    &format!("rank case {k} tail"),
                );
            }
        }
    }
}
