//! Pair and single-text encoding through the model's own `tokenizer.json`.
//!
//! Reproduces what the PyTorch reference does (`tokenizer([q...], [d...], truncation=True,
//! max_length=N)` = the `tokenizers` library's `encode_batch` with `longest_first` truncation):
//! each text is encoded without special tokens, the pair is truncated to
//! `max_length - added_special_tokens` with `longest_first`, then the tokenizer's own
//! post-processor adds `[CLS] q [SEP] d [SEP]` (BERT) or `<s> q </s></s> d </s>` (XLM-R).
//! The padding / truncation blocks stored in tokenizer.json are ignored (sentence-transformers
//! ignores them too). Text is passed verbatim; only tokenizer.json's normalizer touches it.
//!
//! LLM rerankers instead put the pair into a prompt ([`PairFormat::Template`], e.g.
//! Qwen3-Reranker's): `prefix + body + suffix`, each tokenized without special tokens, the
//! body truncated from the right. A model says which it needs ([`crate::model::ModelMeta`]).

use std::path::Path;

use tokenizers::utils::truncation::{
    truncate_encodings, TruncationDirection, TruncationParams, TruncationStrategy,
};
use tokenizers::{Encoding, PostProcessor, PostProcessorWrapper, Tokenizer};

use crate::error::{EngineError, Result};

/// One encoded input, without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids, special tokens included.
    pub input_ids: Vec<u32>,
    /// Segment ids as the post-processor assigns them (0 for the query, 1 for the document in
    /// BERT; all 0 in XLM-R).
    pub token_type_ids: Vec<u32>,
    /// Whether truncation removed tokens.
    pub truncated: bool,
}

/// How a `(query, document)` pair becomes token ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PairFormat {
    /// The tokenizer's post-processor around the two texts — `[CLS] q [SEP] d [SEP]` (BERT,
    /// ModernBERT), `<s> q </s></s> d </s>` (XLM-R) — truncated `longest_first`
    /// ([`TextTokenizer::encode_pairs`]).
    #[default]
    PostProcessor,
    /// A prompt around the pair (LLM rerankers), see [`PromptTemplate`].
    Template(PromptTemplate),
}

/// A reranking prompt: `ids(prefix) + ids(body)[..budget] + ids(suffix)`, every piece
/// tokenized with `add_special_tokens = false` (special tokens written in the text, such as
/// `<|im_start|>`, are still matched, as the Hugging Face tokenizer does), where `body` is
/// [`PromptTemplate::body`] with `{instruction}`, `{query}` and `{document}` filled in and
/// `budget = max_length − |prefix ids| − |suffix ids|` (the body is cut from the right).
/// This is the Qwen3-Reranker model card's `process_inputs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PromptTemplate {
    /// Text before the body (system prompt, chat markup).
    pub prefix: String,
    /// The body, with `{instruction}`, `{query}` and `{document}` placeholders (other text,
    /// braces included, is kept as is).
    pub body: String,
    /// Text after the body.
    pub suffix: String,
    /// What `{instruction}` becomes.
    pub instruction: String,
}

impl PromptTemplate {
    /// The body for one pair: a single pass over [`PromptTemplate::body`], so that braces
    /// inside the query or document are never taken for placeholders.
    pub fn render(&self, query: &str, document: &str) -> String {
        let mut out = String::with_capacity(self.body.len() + query.len() + document.len());
        let mut rest = self.body.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            let (value, len) = if tail.starts_with("{instruction}") {
                (self.instruction.as_str(), "{instruction}".len())
            } else if tail.starts_with("{query}") {
                (query, "{query}".len())
            } else if tail.starts_with("{document}") {
                (document, "{document}".len())
            } else {
                ("{", 1)
            };
            out.push_str(value);
            rest = &tail[len..];
        }
        out.push_str(rest);
        out
    }

    /// The same template with `instruction` in place of the default (`None`: unchanged).
    pub fn with_instruction(&self, instruction: Option<&str>) -> PromptTemplate {
        let mut t = self.clone();
        if let Some(i) = instruction {
            t.instruction = i.to_string();
        }
        t
    }
}

/// The model's tokenizer with the engine's truncation rules.
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    path: std::path::PathBuf,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`. Errors: [`EngineError::NotFound`] / [`EngineError::BadFile`].
    /// A tokenizer without a post-processor loads (prompt templates do not need one), but
    /// [`TextTokenizer::encode_pairs`] and [`TextTokenizer::encode_texts`] refuse to run on
    /// it: they could not add `[CLS]`/`[SEP]` (model loading tries them, so such a folder is
    /// refused at load time when its model needs them).
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Err(EngineError::NotFound {
                path: path.to_path_buf(),
                reason: "the model folder has no tokenizer.json".into(),
            });
        }
        let mut tokenizer =
            Tokenizer::from_file(path).map_err(|e| EngineError::bad_file(path, e))?;
        tokenizer
            .with_truncation(None)
            .map_err(|e| EngineError::bad_file(path, e))?;
        tokenizer.with_padding(None);
        Ok(TextTokenizer {
            tokenizer,
            path: path.to_path_buf(),
        })
    }

    /// [`EngineError::BadFile`] unless the tokenizer has a post-processor.
    pub(crate) fn require_post_processor(&self) -> Result<&PostProcessorWrapper> {
        self.tokenizer.get_post_processor().ok_or_else(|| {
            EngineError::bad_file(
                &self.path,
                "tokenizer.json has no post_processor, so special tokens cannot be added",
            )
        })
    }

    /// The underlying `tokenizers` tokenizer (truncation and padding disabled).
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Special tokens the post-processor adds around one text (`is_pair = false`) or a pair.
    pub fn num_special_tokens(&self, is_pair: bool) -> usize {
        self.tokenizer
            .get_post_processor()
            .map(|p| p.added_tokens(is_pair))
            .unwrap_or(0)
    }

    /// Id of a token string such as `"<pad>"`, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub(crate) fn raw(&self, text: &str) -> Result<Encoding> {
        self.tokenizer
            .encode(text, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    pub(crate) fn raw_many(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        self.tokenizer
            .encode_batch(texts.to_vec(), false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    pub(crate) fn check_max_length(&self, max_length: usize, is_pair: bool) -> Result<usize> {
        let special = self.num_special_tokens(is_pair);
        if max_length <= special {
            return Err(EngineError::InvalidArgument(format!(
                "max_length {max_length} leaves no room for text: the tokenizer adds {special} special tokens{}",
                if is_pair { " to a pair" } else { "" }
            )));
        }
        Ok(max_length - special)
    }

    fn finish(
        &self,
        a: Encoding,
        b: Option<Encoding>,
        params: &TruncationParams,
    ) -> Result<Encoded> {
        let before = a.len() + b.as_ref().map_or(0, Encoding::len);
        let (a, b) =
            truncate_encodings(a, b, params).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        let after = a.len() + b.as_ref().map_or(0, Encoding::len);
        let processor = self.require_post_processor()?;
        let enc = processor
            .process(a, b, true)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(Encoded {
            input_ids: enc.get_ids().to_vec(),
            token_type_ids: enc.get_type_ids().to_vec(),
            truncated: after < before,
        })
    }

    fn params(max_length: usize) -> TruncationParams {
        TruncationParams {
            max_length,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
            direction: TruncationDirection::Right,
        }
    }

    /// Encodes `(query, document)` pairs, each truncated `longest_first` to `max_length`
    /// tokens (special tokens included). The query is encoded once per distinct string.
    ///
    /// Errors: [`EngineError::InvalidArgument`] when `max_length` cannot even hold the special
    /// tokens; [`EngineError::Tokenizer`] from the tokenizer itself.
    pub fn encode_pairs(&self, pairs: &[(&str, &str)], max_length: usize) -> Result<Vec<Encoded>> {
        self.require_post_processor()?;
        let params = Self::params(self.check_max_length(max_length, true)?);
        let docs: Vec<&str> = pairs.iter().map(|p| p.1).collect();
        let doc_enc = self.raw_many(&docs)?;
        let mut last_query: Option<(&str, Encoding)> = None;
        let mut out = Vec::with_capacity(pairs.len());
        for ((q, _), d) in pairs.iter().zip(doc_enc) {
            let qe = match &last_query {
                Some((text, enc)) if text == q => enc.clone(),
                _ => {
                    let enc = self.raw(q)?;
                    last_query = Some((q, enc.clone()));
                    enc
                }
            };
            out.push(self.finish(qe, Some(d), &params)?);
        }
        Ok(out)
    }

    /// Encodes `(query, document)` for one query and many documents: the same ids, token type
    /// ids and `truncated` flags as [`TextTokenizer::encode_pairs`] on
    /// `documents.map(|d| (query, d))`, but the query is tokenized once (not once per
    /// document) and each pair copies at most `max_length` of its tokens, so a long query
    /// costs one tokenization per request.
    ///
    /// Each document is tokenized alone, the pair lengths are cut `longest_first` exactly as
    /// the `tokenizers` crate's `truncate_encodings` does (stride 0, from the right), then the
    /// tokenizer's post-processor adds the special tokens. An empty `documents` gives an
    /// empty result.
    ///
    /// Errors: as [`TextTokenizer::encode_pairs`].
    pub fn encode_query_documents(
        &self,
        query: &str,
        documents: &[&str],
        max_length: usize,
    ) -> Result<Vec<Encoded>> {
        let processor = self.require_post_processor()?;
        let budget = self.check_max_length(max_length, true)?;
        if documents.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = self.raw(query)?;
        let query_len = q.len();
        // No pair keeps more than `budget` query tokens: drop the rest (and the overflow
        // pieces `truncate` keeps) once, so the per-document copy is small.
        q.truncate(budget, 0, TruncationDirection::Right);
        drop(q.take_overflowing());
        self.raw_many(documents)?
            .into_iter()
            .map(|mut d| {
                let doc_len = d.len();
                let (keep_q, keep_d) = longest_first(query_len, doc_len, budget);
                let mut qe = q.clone();
                qe.truncate(keep_q, 0, TruncationDirection::Right);
                drop(qe.take_overflowing());
                d.truncate(keep_d, 0, TruncationDirection::Right);
                drop(d.take_overflowing());
                let enc = processor
                    .process(qe, Some(d), true)
                    .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
                Ok(Encoded {
                    input_ids: enc.get_ids().to_vec(),
                    token_type_ids: enc.get_type_ids().to_vec(),
                    truncated: keep_q + keep_d < query_len + doc_len,
                })
            })
            .collect()
    }

    /// Encodes single texts (bi-encoder input), truncated to `max_length` tokens with special
    /// tokens included.
    pub fn encode_texts(&self, texts: &[&str], max_length: usize) -> Result<Vec<Encoded>> {
        self.require_post_processor()?;
        let params = Self::params(self.check_max_length(max_length, false)?);
        self.raw_many(texts)?
            .into_iter()
            .map(|e| self.finish(e, None, &params))
            .collect()
    }

    /// Encodes pairs as `format` says: [`TextTokenizer::encode_pairs`] for
    /// [`PairFormat::PostProcessor`], [`TextTokenizer::encode_template`] for a template.
    pub fn encode_pairs_as(
        &self,
        format: &PairFormat,
        pairs: &[(&str, &str)],
        max_length: usize,
    ) -> Result<Vec<Encoded>> {
        match format {
            PairFormat::PostProcessor => self.encode_pairs(pairs, max_length),
            PairFormat::Template(t) => self.encode_template(t, pairs, max_length),
        }
    }

    /// Encodes pairs into `template` (see [`PromptTemplate`]), at most `max_length` tokens
    /// each; `truncated` says the body was cut. Token type ids are all 0.
    ///
    /// Errors: [`EngineError::InvalidArgument`] when `max_length` leaves no token for the
    /// body after the prefix and suffix; [`EngineError::Tokenizer`] from the tokenizer.
    pub fn encode_template(
        &self,
        template: &PromptTemplate,
        pairs: &[(&str, &str)],
        max_length: usize,
    ) -> Result<Vec<Encoded>> {
        let prefix = self.raw(&template.prefix)?.get_ids().to_vec();
        let suffix = self.raw(&template.suffix)?.get_ids().to_vec();
        let fixed = prefix.len() + suffix.len();
        if max_length <= fixed {
            return Err(EngineError::InvalidArgument(format!(
                "max_length {max_length} leaves no room for text: the prompt template takes {fixed} tokens"
            )));
        }
        let budget = max_length - fixed;
        let bodies: Vec<String> = pairs.iter().map(|(q, d)| template.render(q, d)).collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        Ok(self
            .raw_many(&refs)?
            .into_iter()
            .map(|body| {
                let body = body.get_ids();
                let kept = body.len().min(budget);
                let mut ids = Vec::with_capacity(fixed + kept);
                ids.extend_from_slice(&prefix);
                ids.extend_from_slice(&body[..kept]);
                ids.extend_from_slice(&suffix);
                Encoded {
                    token_type_ids: vec![0; ids.len()],
                    input_ids: ids,
                    truncated: kept < body.len(),
                }
            })
            .collect())
    }
}

/// The lengths `longest_first` truncation keeps of a pair of `n1` and `n2` tokens within
/// `max_length`: the rule of the `tokenizers` crate's `truncate_encodings` (0.23), written out
/// so that a long first text need not be copied per pair. The shorter text is kept whole if
/// it fits in half the budget, else both get half (the longer one the odd token; on equal
/// lengths, the second).
pub(crate) fn longest_first(n1: usize, n2: usize, max_length: usize) -> (usize, usize) {
    if n1.saturating_add(n2) <= max_length {
        return (n1, n2);
    }
    let swap = n1 > n2;
    let mut short = n1.min(n2);
    let mut long = if short > max_length {
        short
    } else {
        short.max(max_length - short)
    };
    if short + long > max_length {
        short = max_length / 2;
        long = short + max_length % 2;
    }
    if swap {
        (long, short)
    } else {
        (short, long)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_cases() {
        // Fits: unchanged.
        assert_eq!(longest_first(3, 4, 7), (3, 4));
        // Only the longer is cut.
        assert_eq!(longest_first(2, 10, 7), (2, 5));
        assert_eq!(longest_first(10, 2, 7), (5, 2));
        // Both cut: halves, the odd token to the longer one, to the second on a tie.
        assert_eq!(longest_first(6, 9, 7), (3, 4));
        assert_eq!(longest_first(9, 6, 7), (4, 3));
        assert_eq!(longest_first(8, 8, 7), (3, 4));
        assert_eq!(longest_first(100, 80, 5), (3, 2));
    }
}
