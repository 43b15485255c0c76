//! sentence-transformers and tokenizer side files of a model folder:
//! `sentence_bert_config.json`, `config_sentence_transformers.json`, `tokenizer_config.json`.

use std::path::Path;

use serde::Deserialize;

use crate::error::{EngineError, Result};

/// What sentence-transformers would apply to the logits of a CrossEncoder
/// (`activation_fn` in `config_sentence_transformers.json` or `config.json`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum StoredActivation {
    Sigmoid,
    Identity,
    /// Any other class name, kept verbatim.
    Other(String),
}

impl StoredActivation {
    /// Parses a fully qualified torch class name such as `torch.nn.modules.activation.Sigmoid`.
    pub fn parse(name: &str) -> Self {
        match name.rsplit('.').next().unwrap_or(name) {
            "Sigmoid" => StoredActivation::Sigmoid,
            "Identity" => StoredActivation::Identity,
            _ => StoredActivation::Other(name.to_string()),
        }
    }
}

/// The optional side files, read leniently: a missing file means "not set".
#[derive(Debug, Clone, Default)]
pub struct SideConfig {
    /// `sentence_bert_config.json` → `max_seq_length`.
    pub max_seq_length: Option<usize>,
    /// `tokenizer_config.json` → `model_max_length` (absurd sentinels such as 1e30 are dropped).
    pub model_max_length: Option<usize>,
    /// `config_sentence_transformers.json` → `activation_fn`.
    pub activation_fn: Option<String>,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct TokenizerConfig {
    #[serde(default)]
    model_max_length: Option<f64>,
}

#[derive(Deserialize)]
struct StModelConfig {
    #[serde(default)]
    activation_fn: Option<String>,
}

/// Reads `name` in `dir` as JSON if it exists. Errors only when it exists but is malformed.
pub(crate) fn read_optional_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::bad_file(&path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| EngineError::bad_file(&path, e))
}

impl SideConfig {
    /// Reads the side files of `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let sb: Option<SentenceBertConfig> = read_optional_json(dir, "sentence_bert_config.json")?;
        let tc: Option<TokenizerConfig> = read_optional_json(dir, "tokenizer_config.json")?;
        let st: Option<StModelConfig> =
            read_optional_json(dir, "config_sentence_transformers.json")?;
        Ok(SideConfig {
            max_seq_length: sb.and_then(|c| c.max_seq_length),
            model_max_length: tc
                .and_then(|c| c.model_max_length)
                .filter(|n| (1.0..1e9).contains(n))
                .map(|n| n as usize),
            activation_fn: st.and_then(|c| c.activation_fn),
        })
    }
}
