//! `config.json` of a Hugging Face model: the generic part every architecture shares
//! (`architectures`, `model_type`, dtype, labels, the sentence-transformers activation) in
//! [`ModelConfig`], and the raw JSON that each architecture's own `Config` deserializes
//! (see [`crate::model`]).

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{EngineError, Result};

/// Architecture family of a loaded model, as `rerank info` reports it (`"Bert"`,
/// `"XlmRoberta"`, …). Each model file names its own; the set is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Family(&'static str);

#[allow(non_upper_case_globals)]
impl Family {
    /// BERT: absolute positions from 0, token type embeddings, pooler dense + tanh on
    /// `[CLS]` (`model/bert.rs`).
    pub const Bert: Family = Family("Bert");
    /// XLM-RoBERTa / RoBERTa: positions start at `padding_idx + 1` and count only non-pad
    /// tokens; classifier dense → tanh → out_proj on `<s>` (`model/xlm_roberta.rs`).
    pub const XlmRoberta: Family = Family("XlmRoberta");

    /// A family by name (for a new model file: `Family::named("ModernBert")`).
    pub const fn named(name: &'static str) -> Self {
        Family(name)
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// The fields of `config.json` the engine reads whatever the architecture.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Where it was read from (for error messages).
    pub path: PathBuf,
    /// `architectures[0]`, or empty when the list is absent.
    pub architecture: String,
    /// `model_type`, if present.
    pub model_type: Option<String>,
    /// Storage dtype named by the config (`dtype` or legacy `torch_dtype`), e.g. `"float16"`.
    pub dtype: Option<String>,
    /// Number of labels named by `id2label`, if present (a classifier weight's shape wins).
    pub id2label_len: Option<usize>,
    /// `sentence_transformers.activation_fn` stored in config.json, if any.
    pub st_activation_fn: Option<String>,
    raw: serde_json::Value,
}

#[derive(Deserialize)]
struct Generic {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    dtype: Option<String>,
    #[serde(default)]
    torch_dtype: Option<String>,
    #[serde(default)]
    id2label: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    sentence_transformers: Option<StConfig>,
}

#[derive(Deserialize)]
struct StConfig {
    #[serde(default)]
    activation_fn: Option<String>,
}

impl ModelConfig {
    /// Reads `config.json`.
    ///
    /// Errors: [`EngineError::NotFound`] when the file is absent, [`EngineError::BadFile`] when
    /// it is not a JSON object with well-typed generic fields.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::NotFound {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let raw: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| EngineError::bad_file(path, e))?;
        Self::from_value(raw, path)
    }

    /// The same from already parsed JSON.
    pub fn from_value(raw: serde_json::Value, path: &Path) -> Result<Self> {
        if !raw.is_object() {
            return Err(EngineError::bad_file(
                path,
                "config.json is not a JSON object",
            ));
        }
        let g: Generic =
            serde_json::from_value(raw.clone()).map_err(|e| EngineError::bad_file(path, e))?;
        Ok(ModelConfig {
            path: path.to_path_buf(),
            architecture: g.architectures.into_iter().next().unwrap_or_default(),
            model_type: g.model_type,
            dtype: g.dtype.or(g.torch_dtype),
            id2label_len: g.id2label.map(|m| m.len()),
            st_activation_fn: g.sentence_transformers.and_then(|s| s.activation_fn),
            raw,
        })
    }

    /// The whole file as an architecture's `Config`.
    ///
    /// Errors: [`EngineError::BadFile`] naming this file and serde's reason (e.g.
    /// "missing field `hidden_size`").
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.raw).map_err(|e| EngineError::bad_file(&self.path, e))
    }

    /// `architectures[0]`, or `model_type` when the list is absent (for `info()` and
    /// messages).
    pub fn name(&self) -> String {
        if self.architecture.is_empty() {
            self.model_type.clone().unwrap_or_default()
        } else {
            self.architecture.clone()
        }
    }

    /// The raw JSON.
    pub fn raw(&self) -> &serde_json::Value {
        &self.raw
    }

    /// [`EngineError::UnsupportedArchitecture`] for `what` (e.g. `"BertModel with
    /// hidden_act \"mish\""`), naming this file and listing `supported`.
    pub fn unsupported(
        &self,
        what: impl Into<String>,
        supported: impl Into<String>,
    ) -> EngineError {
        EngineError::UnsupportedArchitecture {
            path: self.path.clone(),
            architecture: what.into(),
            supported: supported.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModelConfig> {
        ModelConfig::from_value(
            serde_json::from_str(json).unwrap(),
            Path::new("config.json"),
        )
    }

    #[test]
    fn reads_dtype_from_either_key() {
        let a =
            parse(r#"{"architectures": ["BertForSequenceClassification"], "dtype": "bfloat16"}"#)
                .unwrap();
        assert_eq!(a.dtype.as_deref(), Some("bfloat16"));
        assert_eq!(a.architecture, "BertForSequenceClassification");
        let b = parse(r#"{"model_type": "bert", "torch_dtype": "float16"}"#).unwrap();
        assert_eq!(b.dtype.as_deref(), Some("float16"));
        assert_eq!(b.architecture, "");
        assert_eq!(b.model_type.as_deref(), Some("bert"));
    }

    #[test]
    fn labels_and_stored_activation() {
        let c = parse(
            r#"{"id2label": {"0": "a", "1": "b"},
                "sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"}}"#,
        )
        .unwrap();
        assert_eq!(c.id2label_len, Some(2));
        assert_eq!(
            c.st_activation_fn.as_deref(),
            Some("torch.nn.modules.activation.Sigmoid")
        );
    }

    #[test]
    fn a_non_object_or_mistyped_config_is_a_bad_file() {
        assert!(matches!(parse("[1, 2]"), Err(EngineError::BadFile { .. })));
        assert!(matches!(
            parse(r#"{"architectures": "BertModel"}"#),
            Err(EngineError::BadFile { .. })
        ));
    }

    #[test]
    fn family_serializes_as_its_name() {
        assert_eq!(
            serde_json::to_string(&Family::XlmRoberta).unwrap(),
            "\"XlmRoberta\""
        );
        assert_eq!(Family::named("ModernBert").to_string(), "ModernBert");
    }
}
