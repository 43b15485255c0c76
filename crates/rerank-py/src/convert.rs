//! Small conversions shared by the classes: model arguments, precision names, f32 buffers.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyByteArray;
use rerank_engine::{resolve, Precision};

use crate::errors::Failure;

/// Resolves a model argument like the CLI: an existing folder, then `RERANK_MODEL_PATH`, then
/// the Hugging Face hub (`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`, `HF_HUB_OFFLINE`).
pub fn resolve_model(spec: &str) -> Result<PathBuf, Failure> {
    Ok(resolve::resolve_model(spec)?)
}

/// `"f32"` / `"fp32"` / `"float32"` or `"bf16"` / `"bfloat16"` (case-insensitive).
pub fn parse_precision(name: &str) -> Result<Precision, Failure> {
    match name.to_ascii_lowercase().as_str() {
        "f32" | "fp32" | "float32" => Ok(Precision::F32),
        "bf16" | "bfloat16" => Ok(Precision::Bf16),
        other => Err(Failure::Invalid(format!(
            "precision must be \"f32\" or \"bf16\", got {other:?}"
        ))),
    }
}

/// The string name of a precision, as `parse_precision` accepts it.
pub fn precision_name(p: Precision) -> &'static str {
    p.name()
}

/// Copies f32 values into a new Python `bytearray` in native byte order (numpy reads it with
/// `np.frombuffer(buf, dtype=np.float32)`, writable and without a second copy).
pub fn f32_bytearray<'py>(py: Python<'py>, values: &[f32]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, values.len() * 4, |buf: &mut [u8]| {
        for (dst, v) in buf.chunks_exact_mut(4).zip(values) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })
}

/// `info` (the engine's `ModelInfo` / `EmbedderInfo`) as a JSON object string, plus `precision`.
pub fn info_json(info: &impl serde::Serialize, precision: &str) -> PyResult<String> {
    let mut v = serde_json::to_value(info)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    v["precision"] = precision.into();
    Ok(v.to_string())
}

/// Rejects batch sizes below 1 with sentence-transformers' message.
pub fn check_batch_size(batch_size: i64) -> Result<usize, Failure> {
    if batch_size <= 0 {
        return Err(Failure::Invalid(format!(
            "batch_size must be a positive integer, got {batch_size}."
        )));
    }
    Ok(batch_size as usize)
}
