//! The XLM-R tokenizer pipeline against `../shared/models/xlm-roberta-tokenizer/test_vectors.json`
//! (computed with the Python `tokenizers` 0.23.3 binding on the same tokenizer.json): ids,
//! token strings, byte and code-point offsets and sequence ids exact, with and without
//! truncation, single texts and pairs, with and without special tokens.

mod common;

use common::*;
use rerank_engine::tokenize::TextTokenizer;
use serde_json::Value;
use tokenizers::utils::truncation::{TruncationParams, TruncationStrategy};
use tokenizers::{Encoding, Tokenizer};

fn tokenizer_dir() -> std::path::PathBuf {
    model_dir("xlm-roberta-tokenizer")
}

fn load() -> TextTokenizer {
    TextTokenizer::from_file(&tokenizer_dir().join("tokenizer.json")).unwrap()
}

fn vectors() -> Vec<Value> {
    load_json("models/xlm-roberta-tokenizer/test_vectors.json")["cases"]
        .as_array()
        .unwrap()
        .clone()
}

fn case<'a>(cases: &'a [Value], name: &str) -> &'a Value {
    cases
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("test_vectors.json has no case {name}"))
}

fn strategy(s: &str) -> TruncationStrategy {
    match s {
        "longest_first" => TruncationStrategy::LongestFirst,
        "only_first" => TruncationStrategy::OnlyFirst,
        "only_second" => TruncationStrategy::OnlySecond,
        other => panic!("unknown truncation strategy {other:?} in test_vectors.json"),
    }
}

fn offsets(v: &Value) -> Vec<(usize, usize)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn sequence_ids(v: &Value) -> Vec<Option<usize>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().map(|n| n as usize))
        .collect()
}

/// Encodes one case with `tok` (byte offsets, or code-point offsets when `chars`).
fn encode(tok: &Tokenizer, c: &Value, chars: bool) -> Encoding {
    let text = c["text"].as_str().unwrap();
    let special = c["add_special_tokens"].as_bool().unwrap();
    let result = match c.get("text_pair").and_then(Value::as_str) {
        Some(pair) if chars => tok.encode_char_offsets((text, pair), special),
        Some(pair) => tok.encode((text, pair), special),
        None if chars => tok.encode_char_offsets(text, special),
        None => tok.encode(text, special),
    };
    result.unwrap_or_else(|e| panic!("{}: encode failed: {e}", c["name"]))
}

/// The tokenizer a case asks for: the engine's inner tokenizer as is (truncation disabled), or
/// a clone of it with the case's truncation.
fn tokenizer_for(base: &TextTokenizer, c: &Value) -> Tokenizer {
    let mut tok = base.inner().clone();
    if let Some(t) = c.get("truncation").filter(|t| !t.is_null()) {
        tok.with_truncation(Some(TruncationParams {
            max_length: t["max_length"].as_u64().unwrap() as usize,
            strategy: strategy(t["strategy"].as_str().unwrap()),
            ..Default::default()
        }))
        .unwrap();
    }
    tok
}

#[test]
fn every_test_vector_matches_the_python_binding() {
    let base = load();
    assert!(
        base.inner().get_truncation().is_none(),
        "TextTokenizer must disable tokenizer.json's truncation"
    );
    assert!(
        base.inner().get_padding().is_none(),
        "TextTokenizer must disable tokenizer.json's padding"
    );
    let cases = vectors();
    assert_eq!(cases.len(), 41, "test_vectors.json case count");
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let tok = tokenizer_for(&base, c);
        let enc = encode(&tok, c, false);
        let want_ids = u32s(&c["input_ids"]);
        let want_tokens: Vec<String> = c["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        if enc.get_ids() != want_ids.as_slice() {
            failures.push(format!(
                "{name}: input_ids\n  got  {:?}\n  want {want_ids:?}",
                enc.get_ids()
            ));
        }
        if enc.get_tokens() != want_tokens.as_slice() {
            failures.push(format!(
                "{name}: tokens\n  got  {:?}\n  want {want_tokens:?}",
                enc.get_tokens()
            ));
        }
        let want_bytes = offsets(&c["byte_offsets"]);
        if enc.get_offsets() != want_bytes.as_slice() {
            failures.push(format!(
                "{name}: byte_offsets\n  got  {:?}\n  want {want_bytes:?}",
                enc.get_offsets()
            ));
        }
        let want_seq = sequence_ids(&c["sequence_ids"]);
        if enc.get_sequence_ids() != want_seq {
            failures.push(format!(
                "{name}: sequence_ids\n  got  {:?}\n  want {want_seq:?}",
                enc.get_sequence_ids()
            ));
        }
        // Code-point offsets, as the Python binding reports them.
        let enc_chars = encode(&tok, c, true);
        let want_chars = offsets(&c["offsets"]);
        if enc_chars.get_offsets() != want_chars.as_slice() {
            failures.push(format!(
                "{name}: offsets (code points)\n  got  {:?}\n  want {want_chars:?}",
                enc_chars.get_offsets()
            ));
        }
        // Truncation must never have been left on for the untruncated cases.
        if c.get("truncation").is_none_or(Value::is_null) && !enc.get_overflowing().is_empty() {
            failures.push(format!("{name}: overflowing tokens without truncation"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_vectors_cover_pairs_truncation_and_no_special_tokens() {
    // Guards against a test_vectors.json that silently lost the interesting cases.
    let cases = vectors();
    let with = |f: &dyn Fn(&Value) -> bool| cases.iter().filter(|c| f(c)).count();
    assert!(with(&|c| c.get("text_pair").is_some()) >= 5);
    assert!(with(&|c| c.get("truncation").is_some()) >= 5);
    assert!(with(&|c| c["add_special_tokens"] == false) >= 2);
    assert!(
        with(&|c| c
            .get("truncation")
            .is_some_and(|t| t["strategy"] == "only_second"))
            >= 1
    );
}

#[test]
fn long_untruncated_case_is_longer_than_any_truncation_limit() {
    // If the engine left tokenizer.json's truncation on, this case would come out short.
    let cases = vectors();
    let c = case(&cases, "long_untruncated");
    let enc = encode(load().inner(), c, false);
    assert_eq!(enc.get_ids(), u32s(&c["input_ids"]).as_slice());
    assert!(enc.len() > 128, "long_untruncated has {} tokens", enc.len());
}

#[test]
fn encode_pairs_with_empty_document_keeps_both_separators() {
    let cases = vectors();
    let c = case(&cases, "pair_empty_second");
    assert_eq!(c["text_pair"], "");
    let want = u32s(&c["input_ids"]);
    // <s> q </s></s></s>: the list-form reference, not transformers' single-pair drop.
    assert_eq!(&want[want.len() - 3..], &[2, 2, 2]);
    let tok = load();
    let got = tok
        .encode_pairs(&[(c["text"].as_str().unwrap(), "")], 512)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].input_ids, want, "encode_pairs(query, \"\")");
    assert_eq!(got[0].token_type_ids, vec![0; want.len()], "XLM-R type ids");
    assert!(!got[0].truncated);
    assert_ne!(
        got[0].input_ids,
        u32s(&c["transformers_autotokenizer_input_ids"]),
        "must not drop the empty pair like tok(q, \"\")"
    );
}

#[test]
fn encode_pairs_matches_the_truncated_pair_vectors() {
    // The engine's own pair path (longest_first to max_length) against the Python binding.
    let cases = vectors();
    let tok = load();
    for name in [
        "pair_simple",
        "pair_korean",
        "pair_trunc_longest_first_32",
        "pair_trunc_short_query_long_doc",
    ] {
        let c = case(&cases, name);
        let max_length = c
            .get("truncation")
            .map(|t| t["max_length"].as_u64().unwrap() as usize)
            .unwrap_or(512);
        let got = tok
            .encode_pairs(
                &[(
                    c["text"].as_str().unwrap(),
                    c["text_pair"].as_str().unwrap(),
                )],
                max_length,
            )
            .unwrap()
            .remove(0);
        assert_eq!(got.input_ids, u32s(&c["input_ids"]), "{name}: encode_pairs");
        assert_eq!(
            got.truncated,
            c.get("truncation").is_some(),
            "{name}: truncated flag"
        );
    }
}
