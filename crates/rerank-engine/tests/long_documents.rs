//! Long documents scored by their best window ([`rerank_engine::long_documents`]): a
//! ~3,000-token document whose answer is at its end scores above the same document truncated
//! (the real `minilm-l6-sotu-ce`); every window holds the whole query (and, for the tiny
//! Qwen3 reranker, the whole prompt template); a document that fits is one window equal to
//! today's truncated encoding.

mod common;

use common::*;
use rerank_engine::long_documents::MAX_CHUNKS_PER_DOC;
use rerank_engine::{CrossEncoder, CrossEncoderOptions, EngineError, LongDocuments};

/// The Cancer Moonshot paragraph of the 2022 State of the Union (line 239 of the file).
const ANSWER_MARK: &str = "Last month, I announced the plan to supercharge the Cancer Moonshot";
const QUERY: &str = "What is the goal of the Cancer Moonshot?";

fn speech() -> String {
    let path = shared().join("data/state_of_the_union.txt");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Paragraphs from the speech's start (none mentions cancer) up to about 3,000 tokens, then
/// the answer paragraph; returns the document and the answer's char offset.
fn long_document(ce: &CrossEncoder) -> (String, usize) {
    let text = speech();
    let answer = text
        .lines()
        .find(|l| l.starts_with(ANSWER_MARK))
        .expect("the Cancer Moonshot paragraph is in the speech")
        .to_string();
    let mut doc = String::new();
    for para in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            !para.to_lowercase().contains("cancer"),
            "the filler reached the cancer part"
        );
        doc.push_str(para);
        doc.push('\n');
        let n = ce
            .tokenizer()
            .inner()
            .encode(doc.as_str(), false)
            .unwrap()
            .len();
        if n >= 2_900 {
            break;
        }
    }
    let at = doc.chars().count();
    doc.push_str(&answer);
    (doc, at)
}

fn minilm() -> CrossEncoder {
    CrossEncoder::from_dir(
        model_dir("minilm-l6-sotu-ce"),
        CrossEncoderOptions::default(),
    )
    .unwrap()
}

#[test]
fn a_long_document_with_its_answer_at_the_end_scores_above_its_truncation() {
    let ce = minilm();
    let (doc, answer_at) = long_document(&ce);
    let doc_tokens = ce
        .tokenizer()
        .inner()
        .encode(doc.as_str(), false)
        .unwrap()
        .len();
    assert!((2_900..3_400).contains(&doc_tokens), "{doc_tokens} tokens");
    let docs = [doc.as_str()];
    let truncated = ce
        .score_documents(QUERY, &docs, None, LongDocuments::Truncate)
        .unwrap()
        .remove(0);
    // Truncate mode is today's rank(): the same bits.
    let legacy = ce.rank(QUERY, &docs, 1).unwrap().remove(0);
    assert_eq!(truncated.prediction.logits, legacy.logits);
    assert!(truncated.window.is_none());

    let mode = LongDocuments::chunk(MAX_CHUNKS_PER_DOC).unwrap();
    let chunked = ce
        .score_documents(QUERY, &docs, None, mode)
        .unwrap()
        .remove(0);
    let window = chunked.window.expect("chunk mode names the window");
    println!(
        "truncated logit {:?} score {}; best window {window:?} logit {:?} score {}",
        truncated.prediction.logits,
        truncated.prediction.score,
        chunked.prediction.logits,
        chunked.prediction.score
    );
    assert!(
        chunked.prediction.rank_logit() > truncated.prediction.rank_logit() + 1.0,
        "chunked {:?} vs truncated {:?}",
        chunked.prediction.logits,
        truncated.prediction.logits
    );
    assert!(chunked.prediction.score > truncated.prediction.score);
    // The winning window is one that holds the answer's start.
    assert!(window.index > 0);
    assert!(
        window.char_start <= answer_at && answer_at < window.char_end,
        "{window:?}"
    );

    // The winner's prediction is its own pair scored alone (batching changes nothing).
    let windows = ce
        .encode_windows(QUERY, &docs, None, None, MAX_CHUNKS_PER_DOC)
        .unwrap();
    assert!(!windows.truncated[0], "the cap covers the whole document");
    let alone = ce
        .predict_encoded(std::slice::from_ref(&windows.items[window.index]), 1)
        .unwrap()
        .remove(0);
    assert!((alone.logits[0] - chunked.prediction.logits[0]).abs() <= 1e-5);

    // rank_documents orders by the best window and reports it.
    let filler = "The Ukrainian Ambassador to the United States is here tonight.";
    let ranked = ce
        .rank_documents(QUERY, &[filler, doc.as_str()], 2, None, mode)
        .unwrap();
    assert_eq!(ranked[0].ranked.index, 1);
    assert_eq!(ranked[0].window, Some(window));
    assert_eq!(ranked[1].window.map(|w| w.index), Some(0));
}

#[test]
fn every_window_holds_the_whole_query_and_windows_overlap() {
    let ce = minilm();
    let (doc, _) = long_document(&ce);
    // A long query (about 60 tokens) and a short max length: many windows.
    let query = speech().lines().nth(4).unwrap().to_string();
    let q_ids = ce
        .tokenizer()
        .inner()
        .encode(query.as_str(), false)
        .unwrap();
    let q_ids = q_ids.get_ids();
    assert!(q_ids.len() > 30, "{}", q_ids.len());
    let max_length = 128;
    let w = ce
        .encode_windows(&query, &[doc.as_str()], Some(max_length), None, 20)
        .unwrap();
    assert_eq!(w.items.len(), 20, "the cap stops the windows");
    assert!(w.truncated[0] && w.items[19].truncated && !w.items[0].truncated);
    let d_ids = ce.tokenizer().inner().encode(doc.as_str(), false).unwrap();
    let d_ids = d_ids.get_ids();
    let window = max_length - 3 - q_ids.len();
    let stride = window - (window / 4).min(80);
    for (i, item) in w.items.iter().enumerate() {
        assert_eq!(item.input_ids.len(), max_length, "window {i} is full");
        // [CLS] query [SEP] window [SEP], the query whole.
        assert_eq!(&item.input_ids[1..1 + q_ids.len()], q_ids, "window {i}");
        assert_eq!(
            item.input_ids[1 + q_ids.len()],
            item.input_ids[max_length - 1]
        );
        let body = &item.input_ids[2 + q_ids.len()..max_length - 1];
        assert_eq!(body, &d_ids[i * stride..i * stride + window], "window {i}");
        assert_eq!(w.windows[i].index, i);
    }
    // Consecutive windows overlap in characters too.
    for pair in w.windows.windows(2) {
        assert!(pair[1].char_start < pair[0].char_end && pair[0].char_start < pair[1].char_start);
    }
    // A query that leaves no room is an error, never a cut query.
    let err = ce
        .encode_windows(&query, &["a document"], Some(q_ids.len() + 3), None, 10)
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
    for bad in [0, MAX_CHUNKS_PER_DOC + 1] {
        assert!(ce.encode_windows("q", &["d"], None, None, bad).is_err());
    }
}

#[test]
fn a_document_that_fits_is_one_window_equal_to_the_truncated_encoding() {
    let reference = load_json("reference/expected-minilm-l6-sotu-ce.json");
    let cases = reference["models"]["minilm-l6-sotu-ce"]["cases"]
        .as_array()
        .unwrap();
    for folder in [
        "minilm-l6-sotu-ce",
        "tiny-bert-ce",
        "tiny-xlmr-ce",
        "tiny-qwen3-reranker",
    ] {
        let ce = CrossEncoder::from_dir(model_dir(folder), CrossEncoderOptions::default()).unwrap();
        for case in cases.iter().take(6) {
            let query = case["query"].as_str().unwrap();
            let document = case["document"].as_str().unwrap();
            let docs = [document, "", "Short."];
            let today = ce.encode_query_documents(query, &docs, None).unwrap();
            let w = ce.encode_windows(query, &docs, None, None, 10).unwrap();
            for (i, d) in docs.iter().enumerate() {
                if today[i].truncated {
                    continue;
                }
                let mine: Vec<_> = (0..w.items.len()).filter(|&j| w.document[j] == i).collect();
                assert_eq!(mine.len(), 1, "{folder}: one window");
                let j = mine[0];
                assert_eq!(w.items[j], today[i], "{folder}: {:?}", case["name"]);
                assert_eq!(w.windows[j].char_start, 0);
                assert_eq!(w.windows[j].char_end, d.chars().count());
            }
        }
    }
    // The reference ids themselves (PyTorch's tokenizer) for the cases that fit.
    let ce = minilm();
    for case in cases {
        let want = u32s(&case["input_ids"]);
        if want.len() >= 256 {
            continue;
        }
        let w = ce
            .encode_windows(
                case["query"].as_str().unwrap(),
                &[case["document"].as_str().unwrap()],
                None,
                None,
                1,
            )
            .unwrap();
        assert_eq!(w.items.len(), 1);
        assert_eq!(w.items[0].input_ids, want, "{:?}", case["name"]);
    }
}

#[test]
fn qwen3_windows_keep_the_whole_template_and_query() {
    let ce = CrossEncoder::from_dir(
        model_dir("tiny-qwen3-reranker"),
        CrossEncoderOptions::default(),
    )
    .unwrap();
    let template = ce.info().prompt_template.clone().unwrap();
    let tok = ce.tokenizer().inner();
    let prefix = tok.encode(template.prefix.as_str(), false).unwrap();
    let suffix = tok.encode(template.suffix.as_str(), false).unwrap();
    let (prefix, suffix) = (prefix.get_ids(), suffix.get_ids());
    let text = speech();
    let doc: String = text.chars().take(6_000).collect();
    let query = "What did the President say about Ukraine — and Putin's “miscalculation”?";
    let max_length = 160;
    for instruction in [None, Some("Find the passage that answers the question")] {
        let w = ce
            .encode_windows(query, &[doc.as_str()], Some(max_length), instruction, 50)
            .unwrap();
        assert!(w.items.len() > 5, "{} windows", w.items.len());
        assert!(!w.truncated[0]);
        let t = template.with_instruction(instruction);
        for (i, item) in w.items.iter().enumerate() {
            let ids = &item.input_ids;
            assert!(ids.len() <= max_length && !item.truncated, "window {i}");
            assert_eq!(&ids[..prefix.len()], prefix, "window {i}: prefix");
            assert_eq!(
                &ids[ids.len() - suffix.len()..],
                suffix,
                "window {i}: suffix"
            );
            // Exactly prefix + body(query, the window's text) + suffix, nothing cut.
            let span = w.windows[i];
            let window_text: String = doc
                .chars()
                .skip(span.char_start)
                .take(span.char_end - span.char_start)
                .collect();
            let want = format!("{}{}{}", t.prefix, t.render(query, &window_text), t.suffix);
            let want_ids = tok.encode(want.as_str(), false).unwrap();
            assert_eq!(ids.as_slice(), want_ids.get_ids(), "window {i}");
            assert!(
                tok.decode(ids, false).unwrap().contains(query),
                "window {i}"
            );
        }
        // The windows cover the document.
        assert_eq!(w.windows[0].char_start, 0);
        assert_eq!(w.windows.last().unwrap().char_end, doc.chars().count());
        for pair in w.windows.windows(2) {
            assert!(pair[1].char_start <= pair[0].char_end);
        }
    }
    // A template that leaves no room for a window is an error.
    let err = ce
        .encode_windows(
            query,
            &[doc.as_str()],
            Some(prefix.len() + suffix.len() + 5),
            None,
            5,
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidArgument(_)), "{err}");
}
