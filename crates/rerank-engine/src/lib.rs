//! # rerank-engine
//!
//! Loads Hugging Face cross-encoder rerankers and bi-encoders (BERT, XLM-RoBERTa; see
//! [`model::registry`]) from safetensors and scores `(query, document)` pairs with the same
//! numbers as the PyTorch reference (transformers / sentence-transformers `CrossEncoder`), on
//! CPU, in f32 (or bf16 linear layers, see [`Precision`]).
//!
//! ```no_run
//! use rerank_engine::{CrossEncoder, CrossEncoderOptions};
//! let ce = CrossEncoder::from_dir("../shared/models/minilm-l6-sotu-ce", CrossEncoderOptions::default())?;
//! let top = ce.rank("What is the plan for the economy?", &["We will cut costs.", "Hello."], 1)?;
//! println!("{} {}", top[0].index, top[0].score);
//! # Ok::<(), rerank_engine::EngineError>(())
//! ```
//!
//! Layout: [`model`] holds one file per architecture behind the [`model::SequenceClassifier`]
//! and [`model::TokenEncoder`] traits, picked by [`model::registry`] from `config.json`; the
//! kernels are the `rerank-kernels` crate. [`CrossEncoder::predict_batch`] and
//! [`Embedder::embed_batch`] run exactly the batch given (for callers with their own batch
//! planner); `predict` / `rank` / `embed` plan length-sorted batches themselves ([`batch`]).

pub mod batch;
pub mod config;
pub mod cross_encoder;
pub mod embedder;
pub mod error;
pub mod hub;
pub mod long_documents;
pub mod model;
pub mod pooling;
pub mod precision;
pub mod resolve;
pub mod score;
pub mod st_config;
pub mod tokenize;
pub mod weights;

pub use cross_encoder::{CrossEncoder, CrossEncoderOptions, ModelInfo};
pub use embedder::{Embedder, EmbedderInfo, EmbedderOptions};
pub use error::{EngineError, Result};
pub use long_documents::{LongDocuments, RankedLongDocument, ScoredDocument, Window};
pub use precision::Precision;
pub use score::{Prediction, RankedDocument};
