//! # rerank-py
//!
//! The native half of the Python package `rerank_rs` (`rerank_rs._native`): thin classes over
//! the engine ([`rerank_engine::CrossEncoder`], [`rerank_engine::Embedder`]) and a rerank index
//! ([`rerank_retrieval::index::Index`]). Every call that computes releases the GIL and catches
//! panics (see `errors::detached`); results cross as f32 `bytearray`s that numpy wraps without
//! another copy. The sentence-transformers API (shapes, activations, prompts) and the LangChain
//! classes are Python, in `python/rerank_rs/`.

mod convert;
mod cross_encoder;
mod embedder;
mod errors;
mod index;

use pyo3::prelude::*;

/// `rerank_rs._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn rerank_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<cross_encoder::PyCrossEncoder>()?;
    m.add_class::<embedder::PyEmbedder>()?;
    m.add_class::<index::PyIndex>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
