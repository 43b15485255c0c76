//! Which file loads a model: one table keyed by `config.json` `architectures[0]` (as TEI's
//! `backends/candle/src/lib.rs` match), and a fallback by `model_type` for configs without
//! `architectures`. An architecture not in the table is refused with the list of those that
//! are.
//!
//! Adding an architecture is one line per name here, pointing at its file's loaders.

use super::{
    bert, modernbert, qwen3, xlm_roberta, LoadContext, Loaded, SequenceClassifier, TokenEncoder,
};
use crate::config::ModelConfig;
use crate::error::Result;

/// Loads a cross-encoder from a folder (see [`LoadContext`]).
pub type ClassifierLoader = fn(&LoadContext) -> Result<Loaded<dyn SequenceClassifier>>;
/// Loads a bi-encoder body from a folder.
pub type EncoderLoader = fn(&LoadContext) -> Result<Loaded<dyn TokenEncoder>>;

/// One architecture name and what it can be loaded as.
#[derive(Clone, Copy)]
pub struct Architecture {
    /// `architectures[0]` in `config.json`.
    pub name: &'static str,
    /// As a cross-encoder ([`crate::CrossEncoder`]); `None` if it cannot be one. A base model
    /// (`BertModel`) still has one, which refuses the folder naming the missing classifier.
    pub classifier: Option<ClassifierLoader>,
    /// As a bi-encoder ([`crate::Embedder`]).
    pub encoder: Option<EncoderLoader>,
}

const fn both(name: &'static str, c: ClassifierLoader, e: EncoderLoader) -> Architecture {
    Architecture {
        name,
        classifier: Some(c),
        encoder: Some(e),
    }
}

const fn classifier(name: &'static str, c: ClassifierLoader) -> Architecture {
    Architecture {
        name,
        classifier: Some(c),
        encoder: None,
    }
}

/// Every architecture the engine implements.
pub const ARCHITECTURES: &[Architecture] = &[
    both(
        "BertForSequenceClassification",
        bert::load_classifier,
        bert::load_encoder,
    ),
    both(
        "XLMRobertaForSequenceClassification",
        xlm_roberta::load_classifier,
        xlm_roberta::load_encoder,
    ),
    both(
        "RobertaForSequenceClassification",
        xlm_roberta::load_classifier,
        xlm_roberta::load_encoder,
    ),
    classifier("Qwen3ForCausalLM", qwen3::load_causal_lm),
    classifier("Qwen3ForSequenceClassification", qwen3::load_seq_cls),
    both("BertModel", bert::load_classifier, bert::load_encoder),
    both(
        "XLMRobertaModel",
        xlm_roberta::load_classifier,
        xlm_roberta::load_encoder,
    ),
    both(
        "RobertaModel",
        xlm_roberta::load_classifier,
        xlm_roberta::load_encoder,
    ),
    both(
        "ModernBertForSequenceClassification",
        modernbert::load_classifier,
        modernbert::load_encoder,
    ),
    both(
        "ModernBertModel",
        modernbert::load_classifier,
        modernbert::load_encoder,
    ),
    Architecture {
        name: "ModernBertForMaskedLM",
        classifier: None,
        encoder: Some(modernbert::load_encoder),
    },
];

/// `model_type` → the architecture used when `config.json` has no `architectures`.
pub const MODEL_TYPES: &[(&str, &str)] = &[
    ("bert", "BertModel"),
    ("xlm-roberta", "XLMRobertaModel"),
    ("roberta", "RobertaModel"),
    ("modernbert", "ModernBertModel"),
    ("qwen3", "Qwen3ForCausalLM"),
];

/// The supported architecture names, comma-separated (for error messages).
pub fn supported() -> String {
    ARCHITECTURES
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The table entry for `config`'s architecture (or its `model_type` when it names none).
///
/// Errors: [`crate::EngineError::UnsupportedArchitecture`] naming `config.json`, the
/// architecture and [`supported`].
pub fn lookup(config: &ModelConfig) -> Result<&'static Architecture> {
    let name = if config.architecture.is_empty() {
        let model_type = config.model_type.as_deref().unwrap_or_default();
        MODEL_TYPES
            .iter()
            .find(|(t, _)| *t == model_type)
            .map_or(model_type, |(_, a)| *a)
    } else {
        config.architecture.as_str()
    };
    ARCHITECTURES
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| config.unsupported(config.name(), supported()))
}

/// The cross-encoder loader of `config`'s architecture.
///
/// Errors: as [`lookup`], and for an architecture that cannot be a cross-encoder.
pub fn classifier_loader(config: &ModelConfig) -> Result<ClassifierLoader> {
    let arch = lookup(config)?;
    arch.classifier.ok_or_else(|| {
        config.unsupported(
            format!("{} as a cross-encoder", arch.name),
            names(|a| a.classifier.is_some()),
        )
    })
}

/// The bi-encoder loader of `config`'s architecture.
///
/// Errors: as [`lookup`], and for an architecture that cannot be a bi-encoder.
pub fn encoder_loader(config: &ModelConfig) -> Result<EncoderLoader> {
    let arch = lookup(config)?;
    arch.encoder.ok_or_else(|| {
        config.unsupported(
            format!("{} as a bi-encoder", arch.name),
            names(|a| a.encoder.is_some()),
        )
    })
}

impl std::fmt::Debug for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Architecture")
            .field("name", &self.name)
            .field("classifier", &self.classifier.is_some())
            .field("encoder", &self.encoder.is_some())
            .finish()
    }
}

fn names(keep: impl Fn(&Architecture) -> bool) -> String {
    ARCHITECTURES
        .iter()
        .filter(|a| keep(a))
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::EngineError;

    fn config(json: &str) -> ModelConfig {
        ModelConfig::from_value(
            serde_json::from_str(json).unwrap(),
            Path::new("config.json"),
        )
        .unwrap()
    }

    #[test]
    fn names_are_unique_and_model_types_point_into_the_table() {
        for (i, a) in ARCHITECTURES.iter().enumerate() {
            assert!(
                ARCHITECTURES[..i].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
        for (t, a) in MODEL_TYPES {
            assert!(ARCHITECTURES.iter().any(|b| b.name == *a), "{t} → {a}");
        }
    }

    #[test]
    fn lookup_by_architecture_then_model_type() {
        let a = lookup(&config(
            r#"{"architectures": ["XLMRobertaForSequenceClassification"]}"#,
        ));
        assert_eq!(a.unwrap().name, "XLMRobertaForSequenceClassification");
        assert_eq!(
            lookup(&config(r#"{"model_type": "bert"}"#)).unwrap().name,
            "BertModel"
        );
    }

    #[test]
    fn unknown_architecture_is_refused_with_its_name_and_the_supported_ones() {
        let e = lookup(&config(r#"{"architectures": ["LlamaForCausalLM"]}"#)).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(&e, EngineError::UnsupportedArchitecture { architecture, .. } if architecture == "LlamaForCausalLM"),
            "{msg}"
        );
        assert!(
            msg.contains("config.json") && msg.contains("BertForSequenceClassification, "),
            "{msg}"
        );
        let e = lookup(&config(r#"{"model_type": "gpt2"}"#)).unwrap_err();
        assert!(e.to_string().contains("gpt2"), "{e}");
    }
}
