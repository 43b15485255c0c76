//! Pair and single-text encoding through the model's own `tokenizer.json`.
//!
//! Reproduces what the PyTorch reference does (`tokenizer([q...], [d...], truncation=True,
//! max_length=N)` = the `tokenizers` library's `encode_batch` with `longest_first` truncation):
//! each text is encoded without special tokens, the pair is truncated to
//! `max_length - added_special_tokens` with `longest_first`, then the tokenizer's own
//! post-processor adds `[CLS] q [SEP] d [SEP]` (BERT) or `<s> q </s></s> d </s>` (XLM-R).
//! The padding / truncation blocks stored in tokenizer.json are ignored (sentence-transformers
//! ignores them too). Text is passed verbatim; only tokenizer.json's normalizer touches it.

use std::path::Path;

use tokenizers::utils::truncation::{
    truncate_encodings, TruncationDirection, TruncationParams, TruncationStrategy,
};
use tokenizers::{Encoding, PostProcessor, Tokenizer};

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

/// The model's tokenizer with the engine's truncation rules.
pub struct TextTokenizer {
    tokenizer: Tokenizer,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`. Errors: [`EngineError::NotFound`] / [`EngineError::BadFile`];
    /// a tokenizer without a post-processor is refused (it could not add `[CLS]`/`[SEP]`).
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
        if tokenizer.get_post_processor().is_none() {
            return Err(EngineError::bad_file(
                path,
                "tokenizer.json has no post_processor, so special tokens cannot be added",
            ));
        }
        Ok(TextTokenizer { tokenizer })
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

    fn raw(&self, text: &str) -> Result<Encoding> {
        self.tokenizer
            .encode(text, false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    fn raw_many(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        self.tokenizer
            .encode_batch(texts.to_vec(), false)
            .map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    fn check_max_length(&self, max_length: usize, is_pair: bool) -> Result<usize> {
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
        let processor = self
            .tokenizer
            .get_post_processor()
            .expect("checked at load");
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

    /// Encodes single texts (bi-encoder input), truncated to `max_length` tokens with special
    /// tokens included.
    pub fn encode_texts(&self, texts: &[&str], max_length: usize) -> Result<Vec<Encoded>> {
        let params = Self::params(self.check_max_length(max_length, false)?);
        self.raw_many(texts)?
            .into_iter()
            .map(|e| self.finish(e, None, &params))
            .collect()
    }
}
