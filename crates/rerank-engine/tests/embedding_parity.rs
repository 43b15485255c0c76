//! Bi-encoder parity with sentence-transformers (`../shared/reference/expected.json`): token ids
//! exact, every embedding component within 1e-5, for tiny-bert-embedder (and its pooling and
//! prompt variants) and the real all-MiniLM-L6-v2.

mod common;

use std::path::Path;

use common::*;
use rerank_engine::{Embedder, EmbedderOptions};
use serde_json::Value;

fn check(entry: &Value, embedder: &Embedder, prompt: &str, label: &str) {
    let cases = entry["cases"].as_array().unwrap();
    let texts: Vec<String> = cases
        .iter()
        .map(|c| format!("{prompt}{}", c["text"].as_str().unwrap()))
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let encoded = embedder
        .tokenizer()
        .encode_texts(&refs, embedder.info().max_length)
        .unwrap();
    // One batch of every text, as a whole, and each text alone.
    let batched = embedder
        .embed_with_prompt(
            &cases
                .iter()
                .map(|c| c["text"].as_str().unwrap())
                .collect::<Vec<_>>(),
            prompt,
        )
        .unwrap();
    for (i, case) in cases.iter().enumerate() {
        let name = format!("{label}/{}", case["name"].as_str().unwrap());
        assert_eq!(
            encoded[i].input_ids,
            u32s(&case["input_ids"]),
            "{name}: input_ids"
        );
        let expected = f32s(&case["embedding"]);
        assert_close(
            &batched[i],
            &expected,
            1e-5,
            &format!("{name}: embedding (batched)"),
        );
        let single = embedder
            .embed_with_prompt(&[case["text"].as_str().unwrap()], prompt)
            .unwrap();
        assert_close(
            &single[0],
            &expected,
            1e-5,
            &format!("{name}: embedding (single)"),
        );
    }
}

fn reference() -> Value {
    load_json("reference/expected.json")
}

#[test]
fn tiny_bert_embedder_matches_sentence_transformers() {
    let r = reference();
    let e =
        Embedder::from_dir(model_dir("tiny-bert-embedder"), EmbedderOptions::default()).unwrap();
    assert_eq!(e.info().max_length, 64);
    assert!(e.info().normalize);
    check(
        &r["models"]["tiny-bert-embedder"],
        &e,
        "",
        "tiny-bert-embedder",
    );
}

#[test]
fn all_minilm_l6_v2_matches_sentence_transformers() {
    let r = reference();
    let e = Embedder::from_dir(model_dir("all-MiniLM-L6-v2"), EmbedderOptions::default()).unwrap();
    assert_eq!(e.info().max_length, 256);
    assert_eq!(e.info().dims, 384);
    check(&r["models"]["all-MiniLM-L6-v2"], &e, "", "all-MiniLM-L6-v2");
}

#[test]
fn prompt_variant_matches_sentence_transformers() {
    let r = reference();
    let entry = &r["models"]["tiny-bert-embedder@prompt"];
    let prompt = entry["prompt"].as_str().unwrap();
    let e = Embedder::from_dir(
        model_dir("tiny-bert-embedder"),
        EmbedderOptions {
            query_prompt: Some(prompt.to_string()),
            ..Default::default()
        },
    )
    .unwrap();
    check(entry, &e, prompt, "tiny-bert-embedder@prompt");
    // embed_query applies the configured query prompt.
    let q = e
        .embed_query(entry["cases"][0]["text"].as_str().unwrap())
        .unwrap();
    assert_close(
        &q,
        &f32s(&entry["cases"][0]["embedding"]),
        1e-5,
        "embed_query with prompt",
    );
}

/// Copies tiny-bert-embedder into a temp dir with another pooling mode.
fn with_pooling(mode: &str) -> tempfile::TempDir {
    let src = model_dir("tiny-bert-embedder");
    let dst = tempfile::tempdir().unwrap();
    copy_dir(&src, dst.path());
    std::fs::write(
        dst.path().join("1_Pooling/config.json"),
        format!(
            r#"{{"embedding_dimension": 32, "pooling_mode": "{mode}", "include_prompt": true}}"#
        ),
    )
    .unwrap();
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

#[test]
fn pooling_variants_match_sentence_transformers() {
    let r = reference();
    for mode in ["cls", "max", "lasttoken"] {
        let dir = with_pooling(mode);
        let e = Embedder::from_dir(dir.path(), EmbedderOptions::default()).unwrap();
        let label = format!("tiny-bert-embedder@{mode}");
        check(&r["models"][&label], &e, "", &label);
    }
}

#[test]
fn fingerprint_is_stable_and_tells_models_apart() {
    let a =
        Embedder::from_dir(model_dir("tiny-bert-embedder"), EmbedderOptions::default()).unwrap();
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&model_dir("tiny-bert-embedder"), copy.path());
    let b = Embedder::from_dir(copy.path(), EmbedderOptions::default()).unwrap();
    let c = with_pooling("cls");
    let c = Embedder::from_dir(c.path(), EmbedderOptions::default()).unwrap();
    let m = Embedder::from_dir(model_dir("all-MiniLM-L6-v2"), EmbedderOptions::default()).unwrap();
    assert_eq!(
        a.fingerprint().unwrap(),
        b.fingerprint().unwrap(),
        "same model, other path"
    );
    assert_ne!(
        a.fingerprint().unwrap(),
        c.fingerprint().unwrap(),
        "pooling changes the numbers"
    );
    assert_ne!(a.fingerprint().unwrap(), m.fingerprint().unwrap());
}
