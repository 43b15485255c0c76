//! # rerank-engine
//!
//! Loads Hugging Face cross-encoder rerankers (BERT, XLM-RoBERTa) from safetensors and scores
//! `(query, document)` pairs with the same numbers as the PyTorch reference
//! (transformers / sentence-transformers `CrossEncoder`), on CPU, in f32.
//!
//! ```no_run
//! use rerank_engine::{CrossEncoder, CrossEncoderOptions};
//! let ce = CrossEncoder::from_dir("../shared/models/minilm-l6-sotu-ce", CrossEncoderOptions::default())?;
//! let top = ce.rank("What is the plan for the economy?", &["We will cut costs.", "Hello."], 1)?;
//! println!("{} {}", top[0].index, top[0].score);
//! # Ok::<(), rerank_engine::EngineError>(())
//! ```

pub mod batch;
pub mod config;
pub mod cross_encoder;
pub mod embedder;
pub mod error;
pub mod hub;
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
pub use precision::Precision;
pub use score::{Prediction, RankedDocument};
