//! `rerank_rs._native.CrossEncoder`: a loaded reranker. The Python class
//! `rerank_rs.CrossEncoder` wraps it with sentence-transformers' API (shapes, activations).

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyByteArray;
use rerank_engine::{CrossEncoder, CrossEncoderOptions};

use crate::convert::{
    check_batch_size, f32_bytearray, info_json, parse_precision, precision_name, resolve_model,
};
use crate::errors::{detached, Failure};

/// A cross-encoder reranker (`BertForSequenceClassification`,
/// `XLMRobertaForSequenceClassification`) loaded from a folder or hub id.
#[pyclass(frozen, name = "CrossEncoder", module = "rerank_rs._native")]
pub struct PyCrossEncoder {
    pub(crate) inner: Arc<CrossEncoder>,
    precision: &'static str,
}

fn pairs<'a>(
    queries: &'a [String],
    documents: &'a [String],
) -> Result<Vec<(&'a str, &'a str)>, Failure> {
    if queries.len() != documents.len() {
        return Err(Failure::Invalid(format!(
            "{} queries but {} documents",
            queries.len(),
            documents.len()
        )));
    }
    Ok(queries
        .iter()
        .zip(documents)
        .map(|(q, d)| (q.as_str(), d.as_str()))
        .collect())
}

#[pymethods]
impl PyCrossEncoder {
    /// Loads `model` (a folder, a name on `RERANK_MODEL_PATH` or a hub id). `max_length`
    /// lowers the model's max sequence length (tokens, special tokens included); `precision`
    /// is `"f32"` (PyTorch parity) or `"bf16"`. The GIL is released while loading.
    ///
    /// Raises `FileNotFoundError` (no such folder / file / id), `OSError` (unreadable or
    /// inconsistent files), `ValueError` (not a reranker, e.g. a bi-encoder folder; bad
    /// `max_length` or `precision`; an `instruction` for a model without a prompt template).
    /// `instruction` replaces an LLM reranker's default instruction (Qwen3-Reranker).
    #[new]
    #[pyo3(signature = (model, max_length=None, precision="f32", instruction=None))]
    fn new(
        py: Python<'_>,
        model: String,
        max_length: Option<usize>,
        precision: &str,
        instruction: Option<String>,
    ) -> PyResult<Self> {
        let precision = parse_precision(precision)?;
        let inner = detached(py, move || {
            let dir = resolve_model(&model)?;
            let options = CrossEncoderOptions {
                max_length,
                precision,
                instruction,
                ..CrossEncoderOptions::default()
            };
            Ok(CrossEncoder::from_dir(&dir, options)?)
        })?;
        Ok(PyCrossEncoder {
            inner: Arc::new(inner),
            precision: precision_name(precision),
        })
    }

    /// What was loaded, as JSON: path, architecture, num_labels, max_length, max_positions,
    /// stored_dtype, compute_dtype, score_activation, stored_activation, hidden_size, … (the
    /// engine's `ModelInfo`), plus `precision`.
    fn info_json(&self) -> PyResult<String> {
        info_json(self.inner.info(), self.precision)
    }

    /// Token ids of `(queries[i], documents[i])` exactly as `predict` feeds them to the model
    /// (`[CLS] q [SEP] d [SEP]`, `longest_first` truncation to `max_length` or the model's):
    /// a list of `(input_ids, token_type_ids)`, unpadded.
    #[pyo3(signature = (queries, documents, max_length=None))]
    fn tokenize(
        &self,
        py: Python<'_>,
        queries: Vec<String>,
        documents: Vec<String>,
        max_length: Option<usize>,
    ) -> PyResult<Vec<(Vec<u32>, Vec<u32>)>> {
        let model = Arc::clone(&self.inner);
        detached(py, move || {
            let encoded = model.encode(&pairs(&queries, &documents)?, max_length)?;
            Ok(encoded
                .into_iter()
                .map(|e| (e.input_ids, e.token_type_ids))
                .collect())
        })
    }

    /// Raw logits of `(queries[i], documents[i])`: a `bytearray` of `n * num_labels` f32
    /// (row-major `[n, num_labels]`, input order), and `num_labels`. Pairs are sorted by length
    /// and run in batches of at most `batch_size`; a pair's logits do not depend on its batch.
    /// The GIL is released while the engine computes.
    ///
    /// Logits are returned as computed, NaN included (as PyTorch would); `rank` refuses them.
    ///
    /// Raises `ValueError` (`batch_size` < 1, list lengths differ, tokenizer errors) and
    /// `RuntimeError` (an internal error).
    #[pyo3(signature = (queries, documents, batch_size=32))]
    fn predict_logits<'py>(
        &self,
        py: Python<'py>,
        queries: Vec<String>,
        documents: Vec<String>,
        batch_size: i64,
    ) -> PyResult<(Bound<'py, PyByteArray>, usize)> {
        let batch_size = check_batch_size(batch_size)?;
        let model = Arc::clone(&self.inner);
        let logits = detached(py, move || {
            let encoded = model.encode(&pairs(&queries, &documents)?, None)?;
            Ok(model
                .predict_encoded(&encoded, batch_size)?
                .into_iter()
                .flat_map(|p| p.logits)
                .collect::<Vec<f32>>())
        })?;
        let labels = self.inner.info().num_labels;
        Ok((f32_bytearray(py, &logits)?, labels))
    }
}
