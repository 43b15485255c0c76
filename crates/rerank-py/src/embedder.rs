//! `rerank_rs._native.Embedder`: a loaded bi-encoder. The Python class
//! `rerank_rs.SentenceTransformer` wraps it with sentence-transformers' `encode` API.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyByteArray;
use rerank_engine::{Embedder, EmbedderOptions};

use crate::convert::{f32_bytearray, info_json, parse_precision, precision_name, resolve_model};
use crate::errors::detached;

/// A sentence-transformers bi-encoder loaded from a folder or hub id.
#[pyclass(frozen, name = "Embedder", module = "rerank_rs._native")]
pub struct PyEmbedder {
    pub(crate) inner: Arc<Embedder>,
    precision: &'static str,
}

#[pymethods]
impl PyEmbedder {
    /// Loads `model` (a folder, a name on `RERANK_MODEL_PATH` or a hub id); `max_length` lowers
    /// the max sequence length; `precision` is `"f32"` or `"bf16"`. The GIL is released while
    /// loading. Raises `FileNotFoundError`, `OSError` or `ValueError` as `CrossEncoder` does.
    #[new]
    #[pyo3(signature = (model, max_length=None, precision="f32"))]
    fn new(
        py: Python<'_>,
        model: String,
        max_length: Option<usize>,
        precision: &str,
    ) -> PyResult<Self> {
        let precision = parse_precision(precision)?;
        let inner = detached(py, move || {
            let dir = resolve_model(&model)?;
            let options = EmbedderOptions {
                max_length,
                precision,
                ..EmbedderOptions::default()
            };
            Ok(Embedder::from_dir(&dir, options)?)
        })?;
        Ok(PyEmbedder {
            inner: Arc::new(inner),
            precision: precision_name(precision),
        })
    }

    /// What was loaded, as JSON (the engine's `EmbedderInfo`: path, architecture, dims,
    /// max_length, pooling, include_prompt, normalize, query_prompt, document_prompt,
    /// stored_dtype), plus `precision`.
    fn info_json(&self) -> PyResult<String> {
        info_json(self.inner.info(), self.precision)
    }

    /// Token ids of each text as `embed` feeds them to the model (special tokens included,
    /// truncated to the max length), unpadded.
    fn tokenize(&self, py: Python<'_>, texts: Vec<String>) -> PyResult<Vec<Vec<u32>>> {
        let model = Arc::clone(&self.inner);
        detached(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let max_length = model.info().max_length;
            Ok(model
                .tokenizer()
                .encode_texts(&refs, max_length)?
                .into_iter()
                .map(|e| e.input_ids)
                .collect())
        })
    }

    /// Embeddings of `texts`, each prefixed with `prompt` (as sentence-transformers'
    /// `encode(prompt=…)`; pooling skips the prompt's tokens when the model says so): a
    /// `bytearray` of `n * dims` f32 (row-major `[n, dims]`, input order; L2-normalised when
    /// the model has a Normalize module) and `dims`. The GIL is released while computing.
    #[pyo3(signature = (texts, prompt=""))]
    fn embed<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        prompt: &str,
    ) -> PyResult<(Bound<'py, PyByteArray>, usize)> {
        let model = Arc::clone(&self.inner);
        let prompt = prompt.to_string();
        let vectors = detached(py, move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            Ok(model.embed_with_prompt(&refs, &prompt)?)
        })?;
        let dims = self.inner.info().dims;
        Ok((f32_bytearray(py, &vectors.concat())?, dims))
    }
}
