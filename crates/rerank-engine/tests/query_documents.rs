//! `TextTokenizer::encode_query_documents` (one query tokenized once, many documents) gives
//! exactly the ids of the PyTorch reference and of `encode_pairs`, for every cross-encoder
//! case in `../shared/reference/expected*.json` and for random lengths around every
//! truncation boundary (issue 13 item 4: the query was re-tokenized per candidate).

mod common;

use common::*;
use rerank_engine::tokenize::TextTokenizer;
use rerank_engine::{CrossEncoder, CrossEncoderOptions};
use serde_json::Value;

/// Cross-encoders whose pairs go through the tokenizer's post-processor, with the reference
/// file that holds their cases. (tiny-qwen3-reranker and tiny-qwen3-reranker-seq-cls in
/// expected-llm.json put the pair into a prompt template instead; `encode_query_documents`
/// does not apply to them.)
const MODELS: [(&str, &str); 6] = [
    ("reference/expected.json", "tiny-bert-ce"),
    ("reference/expected.json", "tiny-bert-ce-2label"),
    ("reference/expected.json", "tiny-xlmr-ce"),
    (
        "reference/expected-minilm-l6-sotu-ce.json",
        "minilm-l6-sotu-ce",
    ),
    ("reference/expected-llm.json", "tiny-modernbert-ce"),
    ("reference/expected-llm.json", "tiny-modernbert-ce-mean"),
];

fn tokenizer(model: &str) -> TextTokenizer {
    TextTokenizer::from_file(&model_dir(model).join("tokenizer.json")).unwrap()
}

#[test]
fn encode_query_documents_matches_every_reference_case() {
    let mut checked = 0;
    for (file, model) in MODELS {
        let reference = load_json(file);
        let entry = &reference["models"][model];
        let cases = entry["cases"]
            .as_array()
            .unwrap_or_else(|| panic!("{file} has no cases for {model}"));
        let tok = tokenizer(model);
        let model_max = entry["max_length"].as_u64().unwrap() as usize;
        for case in cases {
            let max_length = case["max_length"]
                .as_u64()
                .map_or(model_max, |m| m as usize);
            let query = case["query"].as_str().unwrap();
            let document = case["document"].as_str().unwrap();
            let got = tok
                .encode_query_documents(query, &[document], max_length)
                .unwrap();
            let what = format!("{model} case {}", case["name"]);
            assert_eq!(got.len(), 1, "{what}");
            assert_eq!(
                got[0].input_ids,
                u32s(&case["input_ids"]),
                "{what}: input_ids"
            );
            if !case["token_type_ids"].is_null() {
                assert_eq!(
                    got[0].token_type_ids,
                    u32s(&case["token_type_ids"]),
                    "{what}: token_type_ids"
                );
            }
            checked += 1;
        }
        // All cases of one query (at the model's length) in one call: the same ids each.
        let mut queries: Vec<&str> = cases.iter().map(|c| c["query"].as_str().unwrap()).collect();
        queries.dedup();
        for q in queries {
            let same: Vec<&Value> = cases
                .iter()
                .filter(|c| c["query"] == q && c["max_length"].is_null())
                .collect();
            let docs: Vec<&str> = same
                .iter()
                .map(|c| c["document"].as_str().unwrap())
                .collect();
            let got = tok.encode_query_documents(q, &docs, model_max).unwrap();
            for (g, c) in got.iter().zip(&same) {
                assert_eq!(g.input_ids, u32s(&c["input_ids"]), "{model} {}", c["name"]);
            }
        }
    }
    assert!(
        checked >= 26 * 3 + 20 + 12 * 2,
        "only {checked} cases checked"
    );
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn text(&mut self, words: usize) -> String {
        const WORDS: [&str; 12] = [
            "economy",
            "the",
            "inflation",
            "Ukraine",
            "jobs",
            "déjà",
            "vu",
            "42",
            "cancer",
            "bridges,",
            "naïve",
            "über-long",
        ];
        (0..words)
            .map(|_| WORDS[self.below(WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Random query and document lengths (empty, shorter than, equal to, longer than half and
/// the whole budget) and random `max_length`: ids, type ids and `truncated` equal
/// `encode_pairs` on the same pairs.
#[test]
fn encode_query_documents_equals_encode_pairs_on_random_lengths() {
    let mut rng = Rng(13);
    for model in ["tiny-bert-ce", "tiny-xlmr-ce"] {
        let tok = tokenizer(model);
        let special = tok.num_special_tokens(true);
        for round in 0..200 {
            let max_length = special + 1 + rng.below(60);
            let words = rng.below(80);
            let query = rng.text(words);
            let docs: Vec<String> = (0..1 + rng.below(6))
                .map(|_| {
                    let n = rng.below(80);
                    rng.text(n)
                })
                .collect();
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            let pairs: Vec<(&str, &str)> = refs.iter().map(|d| (query.as_str(), *d)).collect();
            let want = tok.encode_pairs(&pairs, max_length).unwrap();
            let got = tok
                .encode_query_documents(&query, &refs, max_length)
                .unwrap();
            assert_eq!(got, want, "{model} round {round}, max_length {max_length}");
        }
    }
}

/// `CrossEncoder::encode_query_documents` (what `CrossEncoder::rank` now tokenizes with)
/// equals `CrossEncoder::encode` of the pairs (what it used before), at every `max_length`.
#[test]
fn cross_encoder_encode_query_documents_equals_encode() {
    let ce =
        CrossEncoder::from_dir(model_dir("tiny-bert-ce"), CrossEncoderOptions::default()).unwrap();
    let docs = [
        "a short document",
        "",
        "the economy and the jobs of the middle class",
    ];
    let pairs: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| ("what about the economy?", *d))
        .collect();
    for max_length in [None, Some(8), Some(20)] {
        assert_eq!(
            ce.encode_query_documents("what about the economy?", &docs, max_length)
                .unwrap(),
            ce.encode(&pairs, max_length).unwrap()
        );
    }
}
