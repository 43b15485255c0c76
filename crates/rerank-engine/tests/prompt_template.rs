//! The prompt-template pair encoding of LLM rerankers ([`PairFormat::Template`]) against
//! `../shared/reference/expected-llm.json`: the Qwen3-Reranker model card's prefix, body
//! format, suffix and default instruction give exactly the reference `input_ids` of every
//! `tiny-qwen3-reranker` case (custom instructions and `max_length` overrides included).

mod common;

use common::*;
use rerank_engine::tokenize::{PairFormat, PromptTemplate, TextTokenizer};
use serde_json::Value;

fn template(reference: &Value, instruction: Option<&str>) -> PromptTemplate {
    let p = &reference["prompt"];
    let s = |k: &str| p[k].as_str().unwrap().to_string();
    PromptTemplate {
        prefix: s("prefix"),
        // The reference stores the model card's format string with `\n` escapes written out
        // (its README: "the model card's format"); the card's f-string has newlines.
        body: s("format").replace("\\n", "\n"),
        suffix: s("suffix"),
        instruction: instruction.map_or_else(|| s("default_instruction"), str::to_string),
    }
}

#[test]
fn qwen3_reranker_prompt_ids_match_the_reference() {
    let reference = load_json("reference/expected-llm.json");
    let entry = &reference["models"]["tiny-qwen3-reranker"];
    let tok =
        TextTokenizer::from_file(&model_dir("tiny-qwen3-reranker").join("tokenizer.json")).unwrap();
    let default_max = entry["max_length"].as_u64().unwrap() as usize;
    let cases = entry["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    let mut truncated = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let t = template(&reference, case["instruction"].as_str());
        let max_length = case["max_length"]
            .as_u64()
            .map_or(default_max, |m| m as usize);
        let pair = (
            case["query"].as_str().unwrap(),
            case["document"].as_str().unwrap(),
        );
        let enc = tok
            .encode_pairs_as(&PairFormat::Template(t), &[pair], max_length)
            .unwrap()
            .remove(0);
        let want = u32s(&case["input_ids"]);
        assert_eq!(enc.input_ids, want, "{name}: input_ids");
        assert!(enc.input_ids.len() <= max_length, "{name}");
        assert!(enc.token_type_ids.iter().all(|&t| t == 0), "{name}");
        truncated += usize::from(enc.truncated);
        assert_eq!(
            enc.truncated,
            enc.input_ids.len() == max_length,
            "{name}: truncated"
        );
    }
    assert_eq!(truncated, 2, "the two long_document cases are cut");
}

#[test]
fn template_rendering_is_one_pass_and_max_length_must_leave_room() {
    let t = PromptTemplate {
        prefix: "P ".into(),
        body: "{instruction}|{query}|{document}|{other}".into(),
        suffix: " S".into(),
        instruction: "I".into(),
    };
    // Braces in the texts are never placeholders.
    assert_eq!(
        t.render("{document}", "d {query}"),
        "I|{document}|d {query}|{other}"
    );
    let tok =
        TextTokenizer::from_file(&model_dir("tiny-qwen3-reranker").join("tokenizer.json")).unwrap();
    let fixed = tok.inner().encode("P ", false).unwrap().len()
        + tok.inner().encode(" S", false).unwrap().len();
    let format = PairFormat::Template(t);
    assert!(tok.encode_pairs_as(&format, &[("q", "d")], fixed).is_err());
    let one = tok
        .encode_pairs_as(&format, &[("q", "d")], fixed + 1)
        .unwrap();
    assert_eq!(one[0].input_ids.len(), fixed + 1);
    assert!(one[0].truncated);
    // Without a post-processor the [CLS]/[SEP] encodings are refused, not guessed.
    assert!(tok.encode_pairs(&[("q", "d")], 64).is_err());
}
