//! `config.json` of a Hugging Face encoder model (the subset BERT / XLM-RoBERTa need).

use std::path::Path;

use serde::Deserialize;

use crate::error::{EngineError, Result};

/// Encoder family: decides the embedding layout and the classification head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Family {
    /// BERT: absolute positions from 0, token type embeddings, pooler dense+tanh on `[CLS]`.
    Bert,
    /// XLM-RoBERTa / RoBERTa: positions start at `padding_idx + 1` and count only non-pad
    /// tokens; classifier dense → tanh → out_proj on `<s>`.
    XlmRoberta,
}

impl Family {
    /// How many position rows are reserved before the first real position
    /// (`padding_idx + 1` for XLM-R, 0 for BERT).
    pub fn position_offset(self, pad_token_id: u32) -> usize {
        match self {
            Family::Bert => 0,
            Family::XlmRoberta => pad_token_id as usize + 1,
        }
    }

    /// Prefix of the encoder weights inside a `*ForSequenceClassification` checkpoint.
    pub fn weight_prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::XlmRoberta => "roberta",
        }
    }
}

/// Hidden activation of the feed-forward block (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum HiddenAct {
    /// Exact GELU with erf (`"gelu"` in transformers).
    GeluErf,
    /// Tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`).
    GeluTanh,
    Relu,
    Silu,
}

/// Shapes and options of the encoder, read from `config.json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EncoderConfig {
    /// First entry of `architectures` (or derived from `model_type`).
    pub architecture: String,
    pub family: Family,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub pad_token_id: u32,
    /// Storage dtype named by the config (`dtype` or legacy `torch_dtype`), e.g. `"float16"`.
    pub dtype: Option<String>,
    /// Number of labels named by `id2label`, if present (the classifier weight's shape wins).
    pub id2label_len: Option<usize>,
    /// `sentence_transformers.activation_fn` stored in config.json, if any.
    pub st_activation_fn: Option<String>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    #[serde(default = "default_act")]
    hidden_act: String,
    max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: Option<u32>,
    #[serde(default)]
    dtype: Option<String>,
    #[serde(default)]
    torch_dtype: Option<String>,
    #[serde(default)]
    id2label: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    position_embedding_type: Option<String>,
    #[serde(default)]
    sentence_transformers: Option<RawStConfig>,
}

#[derive(Deserialize)]
struct RawStConfig {
    #[serde(default)]
    activation_fn: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// Architectures this engine implements, for error messages.
pub const SUPPORTED_ARCHITECTURES: &str = "BertForSequenceClassification, \
XLMRobertaForSequenceClassification, RobertaForSequenceClassification, BertModel, XLMRobertaModel, RobertaModel";

impl EncoderConfig {
    /// Reads and validates `config.json`.
    ///
    /// Errors: [`EngineError::NotFound`] when the file is absent, [`EngineError::BadFile`] when
    /// it is not valid JSON or lacks a shape field, [`EngineError::UnsupportedArchitecture`] for
    /// anything but BERT / (XLM-)RoBERTa encoders with absolute positions.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::NotFound {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let raw: RawConfig =
            serde_json::from_str(&text).map_err(|e| EngineError::bad_file(path, e))?;
        Self::from_raw(raw, path)
    }

    fn from_raw(raw: RawConfig, path: &Path) -> Result<Self> {
        let architecture = raw
            .architectures
            .first()
            .cloned()
            .or_else(|| raw.model_type.clone())
            .unwrap_or_default();
        let unsupported = |what: &str| EngineError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            architecture: what.to_string(),
            supported: SUPPORTED_ARCHITECTURES.to_string(),
        };
        let family = family_of(&architecture, raw.model_type.as_deref())
            .ok_or_else(|| unsupported(&architecture))?;
        if let Some(p) = raw.position_embedding_type.as_deref() {
            if p != "absolute" {
                return Err(unsupported(&format!(
                    "{architecture} with position_embedding_type {p:?}"
                )));
            }
        }
        let hidden_act = match raw.hidden_act.as_str() {
            "gelu" => HiddenAct::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => HiddenAct::GeluTanh,
            "relu" => HiddenAct::Relu,
            "silu" | "swish" => HiddenAct::Silu,
            other => {
                return Err(unsupported(&format!(
                    "{architecture} with hidden_act {other:?}"
                )))
            }
        };
        if raw.hidden_size == 0
            || raw.num_attention_heads == 0
            || raw.hidden_size % raw.num_attention_heads != 0
        {
            return Err(EngineError::bad_file(
                path,
                format!(
                    "hidden_size {} is not a multiple of num_attention_heads {}",
                    raw.hidden_size, raw.num_attention_heads
                ),
            ));
        }
        let pad_token_id = raw.pad_token_id.unwrap_or(match family {
            Family::Bert => 0,
            Family::XlmRoberta => 1,
        });
        Ok(EncoderConfig {
            architecture,
            family,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            intermediate_size: raw.intermediate_size,
            hidden_act,
            max_position_embeddings: raw.max_position_embeddings,
            type_vocab_size: raw.type_vocab_size.max(1),
            layer_norm_eps: raw.layer_norm_eps,
            pad_token_id,
            dtype: raw.dtype.or(raw.torch_dtype),
            id2label_len: raw.id2label.map(|m| m.len()),
            st_activation_fn: raw.sentence_transformers.and_then(|s| s.activation_fn),
        })
    }

    /// Longest input (special tokens included) the position table allows.
    pub fn max_positions(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.family.position_offset(self.pad_token_id))
    }

    /// Whether the checkpoint is a sequence classifier (a cross-encoder), judged by name.
    pub fn is_sequence_classifier(&self) -> bool {
        self.architecture.ends_with("ForSequenceClassification")
    }
}

fn family_of(architecture: &str, model_type: Option<&str>) -> Option<Family> {
    match architecture {
        "BertForSequenceClassification" | "BertModel" => Some(Family::Bert),
        "XLMRobertaForSequenceClassification"
        | "RobertaForSequenceClassification"
        | "XLMRobertaModel"
        | "RobertaModel" => Some(Family::XlmRoberta),
        "" => match model_type {
            Some("bert") => Some(Family::Bert),
            Some("xlm-roberta") | Some("roberta") => Some(Family::XlmRoberta),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<EncoderConfig> {
        EncoderConfig::from_raw(
            serde_json::from_str(json).unwrap(),
            Path::new("config.json"),
        )
    }

    const BASE: &str = r#""vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 514"#;

    #[test]
    fn reads_dtype_from_either_key() {
        let a = parse(&format!(
            r#"{{"architectures": ["BertForSequenceClassification"], "dtype": "bfloat16", {BASE}}}"#
        ))
        .unwrap();
        assert_eq!(a.dtype.as_deref(), Some("bfloat16"));
        let b = parse(&format!(r#"{{"architectures": ["BertForSequenceClassification"], "torch_dtype": "float16", {BASE}}}"#)).unwrap();
        assert_eq!(b.dtype.as_deref(), Some("float16"));
    }

    #[test]
    fn xlmr_positions_start_after_padding_idx() {
        let c = parse(&format!(r#"{{"architectures": ["XLMRobertaForSequenceClassification"], "pad_token_id": 1, {BASE}}}"#)).unwrap();
        assert_eq!(c.family, Family::XlmRoberta);
        assert_eq!(c.max_positions(), 512);
    }

    #[test]
    fn unknown_architecture_is_refused_with_its_name() {
        let e = parse(&format!(
            r#"{{"architectures": ["LlamaForCausalLM"], {BASE}}}"#
        ))
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("LlamaForCausalLM") && msg.contains("config.json"),
            "{msg}"
        );
    }

    #[test]
    fn relative_positions_are_refused() {
        let e = parse(&format!(r#"{{"architectures": ["BertModel"], "position_embedding_type": "relative_key", {BASE}}}"#)).unwrap_err();
        assert!(e.to_string().contains("relative_key"));
    }
}
