//! Long documents scored by their best window (Cohere's `max_chunks_per_doc`): a document
//! that does not fit beside the query is split into overlapping token windows, each window is
//! paired with the **whole** query (and, for LLM rerankers, the whole prompt template), every
//! window is scored as one more pair, and the document gets the score of its best window.
//!
//! Windows. The document is tokenized alone (no special tokens). A window holds
//! `W = max_length − query tokens − special tokens` document tokens for post-processor models
//! (`[CLS] q [SEP] window [SEP]`), or `W = max_length − prefix − suffix − body tokens of
//! (query, "")` for prompt templates. Consecutive windows overlap by
//! [`window_overlap`]`(W)` = a quarter of the window, at most [`MAX_WINDOW_OVERLAP`] (80)
//! tokens, so a sentence cut at one window's end is whole in the next; the stride is
//! `W − overlap`. At most `max_chunks_per_doc` windows are made per document (the first
//! ones); a document whose tail is left out is reported `truncated`. Cohere documents its
//! chunking without overlap; the overlap is this engine's choice.
//!
//! - Post-processor models (BERT, XLM-R, ModernBERT): a window is the slice of the
//!   document's token ids (no re-tokenization), given to the tokenizer's post-processor with
//!   the whole query. A document that fits is one window, and that window is exactly the
//!   pair [`crate::CrossEncoder::encode_query_documents`] gives (nothing is cut then).
//! - Prompt templates (Qwen3-Reranker): a window is the text span of its tokens (by the
//!   tokenizer's offsets), rendered into the body with the query and tokenized again; if the
//!   body then exceeds its budget (tokens can merge differently at the span's edges), the
//!   window loses tokens at its end until it fits, so neither the query nor the template's
//!   prefix / suffix is ever cut.
//!
//! The query is never cut in window mode: a query that leaves no room for a window is
//! [`EngineError::InvalidArgument`]. Ordering uses the logit ([`Prediction::rank_logit`]);
//! ties go to the lower window.

use serde::{Deserialize, Serialize};
use tokenizers::utils::truncation::TruncationDirection;
use tokenizers::{Encoding, PostProcessor};

use crate::error::{EngineError, Result};
use crate::score::{Prediction, RankedDocument};
use crate::tokenize::{Encoded, PromptTemplate, TextTokenizer};

/// Default window cap per document: Cohere's v1 default for `max_chunks_per_doc` (10).
pub const DEFAULT_MAX_CHUNKS_PER_DOC: usize = 10;

/// Largest accepted `max_chunks_per_doc`, so that a caller's number cannot ask for an
/// unbounded number of windows (each is a `max_length`-token pair).
pub const MAX_CHUNKS_PER_DOC: usize = 100;

/// Upper bound of the overlap between consecutive windows, in tokens.
pub const MAX_WINDOW_OVERLAP: usize = 80;

/// Tokens shared by two consecutive windows of `window` document tokens: `window / 4`, at
/// most [`MAX_WINDOW_OVERLAP`]. Always less than `window` (0 for a window of 1–3 tokens).
pub fn window_overlap(window: usize) -> usize {
    (window / 4).min(MAX_WINDOW_OVERLAP)
}

/// What to do with a document that does not fit beside the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LongDocuments {
    /// Cut the pair to the model's max length (`longest_first`; the template body from the
    /// right): today's behaviour and the default.
    #[default]
    Truncate,
    /// Score the document by its best window, at most `max_chunks_per_doc` windows.
    Chunk {
        /// Windows per document (1 ..= [`MAX_CHUNKS_PER_DOC`]).
        max_chunks_per_doc: usize,
    },
}

impl LongDocuments {
    /// Chunk mode with a checked cap. Errors: [`EngineError::InvalidArgument`] unless
    /// `1 <= max_chunks_per_doc <= MAX_CHUNKS_PER_DOC`.
    pub fn chunk(max_chunks_per_doc: usize) -> Result<Self> {
        check_max_chunks(max_chunks_per_doc)?;
        Ok(LongDocuments::Chunk { max_chunks_per_doc })
    }

    /// `"truncate"` or `"chunk"` (with `max_chunks_per_doc`, default
    /// [`DEFAULT_MAX_CHUNKS_PER_DOC`]). Errors: another name, or a cap out of range.
    pub fn parse(mode: &str, max_chunks_per_doc: Option<usize>) -> Result<Self> {
        match mode {
            "truncate" => Ok(LongDocuments::Truncate),
            "chunk" => Self::chunk(max_chunks_per_doc.unwrap_or(DEFAULT_MAX_CHUNKS_PER_DOC)),
            other => Err(EngineError::InvalidArgument(format!(
                "long-documents mode {other:?}: expected `truncate` or `chunk`"
            ))),
        }
    }
}

/// [`EngineError::InvalidArgument`] unless `1 <= n <= MAX_CHUNKS_PER_DOC`.
pub fn check_max_chunks(n: usize) -> Result<()> {
    if (1..=MAX_CHUNKS_PER_DOC).contains(&n) {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "max_chunks_per_doc must be between 1 and {MAX_CHUNKS_PER_DOC}, got {n}"
        )))
    }
}

/// One window of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// 0-based window number within the document.
    pub index: usize,
    /// Start of the window's text in the document, in characters (Unicode scalar values).
    pub char_start: usize,
    /// End (exclusive), in characters.
    pub char_end: usize,
}

/// The windows of many documents as pairs ready for the model.
#[derive(Debug, Clone, Default)]
pub struct WindowedPairs {
    /// One encoded `(query, window)` pair per window, documents in order, windows in order.
    /// The last window of a document whose tail was left out has `truncated = true`.
    pub items: Vec<Encoded>,
    /// For each item, the index of its document in the caller's list.
    pub document: Vec<usize>,
    /// For each item, its window.
    pub windows: Vec<Window>,
    /// Per document: the window cap left part of its tail out.
    pub truncated: Vec<bool>,
}

impl WindowedPairs {
    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.truncated.len()
    }

    /// The best window of every document (highest [`Prediction::rank_logit`], ties to the
    /// lower window) given one prediction per window (per entry of `document`, so `items`
    /// may have been moved out to the model), in document order.
    ///
    /// Errors: [`EngineError::InvalidArgument`] when `predictions` does not have one entry
    /// per item; [`EngineError::NonFiniteLogit`] (`index` = the document) for a NaN or
    /// infinite logit.
    pub fn best(&self, predictions: &[Prediction]) -> Result<Vec<(Prediction, Window)>> {
        if predictions.len() != self.document.len() {
            return Err(EngineError::InvalidArgument(format!(
                "{} predictions for {} windows",
                predictions.len(),
                self.document.len()
            )));
        }
        let mut best: Vec<Option<usize>> = vec![None; self.documents()];
        for (i, p) in predictions.iter().enumerate() {
            let doc = self.document[i];
            if let Some(&bad) = p.logits.iter().find(|l| !l.is_finite()) {
                return Err(EngineError::NonFiniteLogit {
                    index: doc,
                    value: bad,
                });
            }
            let better = match best[doc] {
                None => true,
                Some(j) => p.rank_logit() > predictions[j].rank_logit(),
            };
            if better {
                best[doc] = Some(i);
            }
        }
        best.into_iter()
            .map(|b| {
                let i = b.ok_or_else(|| {
                    EngineError::InvalidArgument("a document without a window".into())
                })?;
                Ok((predictions[i].clone(), self.windows[i]))
            })
            .collect()
    }
}

/// A document's prediction and, in chunk mode, the window it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoredDocument {
    /// The document's (best window's) prediction.
    pub prediction: Prediction,
    /// The winning window; `None` in truncate mode.
    pub window: Option<Window>,
}

/// One entry of a ranking of long documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedLongDocument {
    /// Index, score, logit and logits (of the best window in chunk mode).
    #[serde(flatten)]
    pub ranked: RankedDocument,
    /// The winning window; `None` in truncate mode.
    pub window: Option<Window>,
}

/// Document tokens per window beside `overhead` tokens within `budget`, or the error that
/// says the query leaves no room.
fn window_tokens(overhead: usize, budget: usize, what: &str) -> Result<usize> {
    match budget.checked_sub(overhead) {
        Some(w) if w > 0 => Ok(w),
        _ => Err(EngineError::InvalidArgument(format!(
            "the query takes {overhead} of the {budget} tokens a pair may hold beside {what}: \
             no room for a document window (chunk mode never cuts the query); shorten the \
             query or use truncation"
        ))),
    }
}

/// `[start, stop)` token ranges of windows of `window` tokens over `n` tokens with stride
/// `window − overlap`, as the `tokenizers` crate's overflowing truncation cuts them; one empty
/// range for an empty document.
fn token_ranges(n: usize, window: usize, overlap: usize) -> Vec<(usize, usize)> {
    if n <= window {
        return vec![(0, n)];
    }
    let stride = window - overlap;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let stop = (start + window).min(n);
        out.push((start, stop));
        if stop == n {
            return out;
        }
        start += stride;
    }
}

/// The byte span of tokens `[s, e)` of `text` (`offsets` = byte offsets of every token),
/// widened to the text's start for the first token and its end for the last one, on char
/// boundaries.
fn byte_span(text: &str, offsets: &[(usize, usize)], s: usize, e: usize) -> (usize, usize) {
    let n = offsets.len();
    if s >= e {
        return (0, 0);
    }
    let mut b0 = if s == 0 {
        0
    } else {
        offsets[s].0.min(text.len())
    };
    let mut b1 = if e == n {
        text.len()
    } else {
        offsets[e - 1].1.min(text.len())
    };
    while !text.is_char_boundary(b0) {
        b0 -= 1;
    }
    while !text.is_char_boundary(b1) {
        b1 += 1;
    }
    (b0, b1.max(b0))
}

fn window_at(text: &str, index: usize, (b0, b1): (usize, usize)) -> Window {
    let char_start = text[..b0].chars().count();
    Window {
        index,
        char_start,
        char_end: char_start + text[b0..b1].chars().count(),
    }
}

impl TextTokenizer {
    /// The windows of every document beside the whole `query`, for post-processor models
    /// (see the module docs). `max_length` counts special tokens.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for a cap out of range or a query that leaves
    /// no room for a window; [`EngineError::Tokenizer`] from the tokenizer.
    pub fn encode_query_windows(
        &self,
        query: &str,
        documents: &[&str],
        max_length: usize,
        max_chunks_per_doc: usize,
    ) -> Result<WindowedPairs> {
        check_max_chunks(max_chunks_per_doc)?;
        let processor = self.require_post_processor()?;
        let budget = self.check_max_length(max_length, true)?;
        let q = self.raw(query)?;
        let window = window_tokens(q.len(), budget, "the special tokens")?;
        let overlap = window_overlap(window);
        let mut out = WindowedPairs::default();
        for (doc, (text, d)) in documents.iter().zip(self.raw_many(documents)?).enumerate() {
            let ranges = token_ranges(d.len(), window, overlap);
            let kept = ranges.len().min(max_chunks_per_doc);
            let cut = ranges.len() > kept;
            let offsets = d.get_offsets().to_vec();
            let mut parts: Vec<Encoding> = if ranges.len() == 1 {
                vec![d]
            } else {
                let mut first = d;
                first.truncate(window, overlap, TruncationDirection::Right);
                let rest = first.take_overflowing();
                std::iter::once(first).chain(rest).collect()
            };
            parts.truncate(kept);
            for (w, (part, &(s, e))) in parts.into_iter().zip(&ranges).enumerate() {
                debug_assert_eq!(part.len(), e - s);
                let enc = processor
                    .process(q.clone(), Some(part), true)
                    .map_err(|err| EngineError::Tokenizer(err.to_string()))?;
                out.items.push(Encoded {
                    input_ids: enc.get_ids().to_vec(),
                    token_type_ids: enc.get_type_ids().to_vec(),
                    truncated: cut && w + 1 == kept,
                });
                out.document.push(doc);
                out.windows
                    .push(window_at(text, w, byte_span(text, &offsets, s, e)));
            }
            out.truncated.push(cut);
        }
        Ok(out)
    }

    /// The windows of every document beside the whole `query` inside `template` (see the
    /// module docs): each pair is `prefix + body(query, window text) + suffix` and never cut.
    ///
    /// Errors: as [`TextTokenizer::encode_query_windows`], and
    /// [`EngineError::InvalidArgument`] when `max_length` cannot hold the template.
    pub fn encode_template_windows(
        &self,
        template: &PromptTemplate,
        query: &str,
        documents: &[&str],
        max_length: usize,
        max_chunks_per_doc: usize,
    ) -> Result<WindowedPairs> {
        check_max_chunks(max_chunks_per_doc)?;
        let prefix = self.raw(&template.prefix)?.get_ids().to_vec();
        let suffix = self.raw(&template.suffix)?.get_ids().to_vec();
        let fixed = prefix.len() + suffix.len();
        if max_length <= fixed {
            return Err(EngineError::InvalidArgument(format!(
                "max_length {max_length} leaves no room for text: the prompt template takes {fixed} tokens"
            )));
        }
        let budget = max_length - fixed;
        let overhead = self.raw(&template.render(query, ""))?.len();
        let window = window_tokens(overhead, budget, "the prompt template")?;
        let overlap = window_overlap(window);
        let mut out = WindowedPairs::default();
        for (doc, (text, d)) in documents.iter().zip(self.raw_many(documents)?).enumerate() {
            let offsets = d.get_offsets().to_vec();
            let ranges = token_ranges(d.len(), window, overlap);
            let kept = ranges.len().min(max_chunks_per_doc);
            let cut = ranges.len() > kept;
            for (w, &(s, mut e)) in ranges.iter().take(kept).enumerate() {
                let (span, body) = loop {
                    let span = byte_span(text, &offsets, s, e);
                    let body = self.raw(&template.render(query, &text[span.0..span.1]))?;
                    if body.len() <= budget || e <= s + 1 {
                        break (span, body);
                    }
                    e -= (body.len() - budget).min(e - s - 1);
                };
                let body = body.get_ids();
                // Only a one-token window whose body still overflows could be cut here.
                let keep = body.len().min(budget);
                let mut ids = Vec::with_capacity(fixed + keep);
                ids.extend_from_slice(&prefix);
                ids.extend_from_slice(&body[..keep]);
                ids.extend_from_slice(&suffix);
                out.items.push(Encoded {
                    token_type_ids: vec![0; ids.len()],
                    input_ids: ids,
                    truncated: (cut && w + 1 == kept) || keep < body.len(),
                });
                out.document.push(doc);
                out.windows.push(window_at(text, w, span));
            }
            out.truncated.push(cut);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_document_with_the_overlap() {
        assert_eq!(token_ranges(0, 10, 2), vec![(0, 0)]);
        assert_eq!(token_ranges(10, 10, 2), vec![(0, 10)]);
        assert_eq!(token_ranges(11, 10, 2), vec![(0, 10), (8, 11)]);
        assert_eq!(
            token_ranges(30, 10, 2),
            vec![(0, 10), (8, 18), (16, 26), (24, 30)]
        );
        assert_eq!(window_overlap(3), 0);
        assert_eq!(window_overlap(100), 25);
        assert_eq!(window_overlap(500), MAX_WINDOW_OVERLAP);
    }

    #[test]
    fn the_cap_is_checked() {
        assert!(LongDocuments::chunk(0).is_err());
        assert!(LongDocuments::chunk(MAX_CHUNKS_PER_DOC + 1).is_err());
        assert_eq!(
            LongDocuments::parse("chunk", None).unwrap(),
            LongDocuments::Chunk {
                max_chunks_per_doc: DEFAULT_MAX_CHUNKS_PER_DOC
            }
        );
        assert_eq!(
            LongDocuments::parse("truncate", Some(3)).unwrap(),
            LongDocuments::Truncate
        );
        assert!(LongDocuments::parse("split", None).is_err());
    }

    #[test]
    fn best_takes_the_highest_logit_per_document() {
        let w = |index| Window {
            index,
            char_start: 0,
            char_end: 0,
        };
        let pairs = WindowedPairs {
            items: vec![
                Encoded {
                    input_ids: vec![1],
                    token_type_ids: vec![0],
                    truncated: false
                };
                4
            ],
            document: vec![0, 0, 0, 1],
            windows: vec![w(0), w(1), w(2), w(0)],
            truncated: vec![false, false],
        };
        let p = |l: f32| Prediction::from_logits(vec![l]);
        let best = pairs.best(&[p(0.5), p(2.0), p(2.0), p(-1.0)]).unwrap();
        assert_eq!(best[0].1.index, 1);
        assert_eq!(best[0].0.logits, vec![2.0]);
        assert_eq!(best[1].1.index, 0);
        assert!(pairs.best(&[p(0.0)]).is_err());
        assert!(matches!(
            pairs.best(&[p(0.0), p(f32::NAN), p(0.0), p(0.0)]),
            Err(EngineError::NonFiniteLogit { index: 0, .. })
        ));
    }
}
