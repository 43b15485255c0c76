//! Engine and retrieval errors as Python exceptions, and the one way the binding runs engine
//! code: with the GIL released and panics caught, so that nothing unwinds into Python.
//!
//! | error | Python exception |
//! |---|---|
//! | `EngineError::NotFound` (folder, file or hub id missing) | `FileNotFoundError` |
//! | `BadFile`, `ShapeMismatch`, `PickleUnsupported`, `Hub` (unreadable or inconsistent model files, hub failures) | `OSError` |
//! | `InvalidArgument`, `Tokenizer`, `UnsupportedArchitecture`, `MissingTensor` (e.g. a bi-encoder passed as a reranker) | `ValueError` |
//! | `NonFiniteLogit`, `Candle` | `RuntimeError` |
//! | `RetrievalError::Io` | `FileNotFoundError` when the OS says so, else `OSError` |
//! | `BadIndex` | `FileNotFoundError` when the folder holds no index (no `CURRENT`), else `OSError` |
//! | `BadInput`, `EmbedderMismatch`, `InvalidArgument` | `ValueError` |
//! | `FullText`, `Vector` | `RuntimeError` |
//! | a panic inside the engine | `RuntimeError("internal error (panic): …")` |
//!
//! The message is always the engine's `Display` text.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rerank_engine::EngineError;
use rerank_retrieval::RetrievalError;

/// Anything engine code run by [`detached`] can fail with.
pub enum Failure {
    Engine(EngineError),
    Retrieval(RetrievalError),
    /// A bad argument found by the binding itself.
    Invalid(String),
    /// A panic caught at the boundary, with its message.
    Panic(String),
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e)
    }
}

impl From<RetrievalError> for Failure {
    fn from(e: RetrievalError) -> Self {
        match e {
            RetrievalError::Engine(e) => Failure::Engine(e),
            other => Failure::Retrieval(other),
        }
    }
}

/// The Python exception of an engine error (see the module table).
pub fn engine_error(e: &EngineError) -> PyErr {
    let msg = e.to_string();
    match e {
        EngineError::NotFound { .. } => PyFileNotFoundError::new_err(msg),
        EngineError::BadFile { .. }
        | EngineError::ShapeMismatch { .. }
        | EngineError::PickleUnsupported { .. }
        | EngineError::Hub(_) => PyOSError::new_err(msg),
        EngineError::InvalidArgument(_)
        | EngineError::Tokenizer(_)
        | EngineError::UnsupportedArchitecture { .. }
        | EngineError::MissingTensor { .. } => PyValueError::new_err(msg),
        EngineError::NonFiniteLogit { .. } | EngineError::Candle(_) => PyRuntimeError::new_err(msg),
    }
}

/// The Python exception of a retrieval error (see the module table).
pub fn retrieval_error(e: &RetrievalError) -> PyErr {
    let msg = e.to_string();
    match e {
        RetrievalError::Engine(e) => engine_error(e),
        RetrievalError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        RetrievalError::Io { .. } => PyOSError::new_err(msg),
        RetrievalError::BadIndex { path, .. } if !path.join("CURRENT").is_file() => {
            PyFileNotFoundError::new_err(msg)
        }
        RetrievalError::BadIndex { .. } => PyOSError::new_err(msg),
        RetrievalError::BadInput { .. }
        | RetrievalError::EmbedderMismatch { .. }
        | RetrievalError::InvalidArgument(_) => PyValueError::new_err(msg),
        RetrievalError::FullText(_)
        | RetrievalError::Vector(_)
        | RetrievalError::QueryEmbedder(_) => PyRuntimeError::new_err(msg),
    }
}

impl From<Failure> for PyErr {
    fn from(f: Failure) -> PyErr {
        match f {
            Failure::Engine(e) => engine_error(&e),
            Failure::Retrieval(e) => retrieval_error(&e),
            Failure::Invalid(msg) => PyValueError::new_err(msg),
            Failure::Panic(msg) => {
                PyRuntimeError::new_err(format!("internal error (panic): {msg}"))
            }
        }
    }
}

/// Runs `f` with the GIL released (other Python threads run meanwhile) and turns a panic into
/// [`Failure::Panic`] instead of letting it unwind through the interpreter.
///
/// `f` must not touch Python objects (enforced by `Python::detach`'s `Ungil` bound).
pub fn detached<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> Result<T, Failure>,
    T: Send,
{
    py.detach(move || {
        // AssertUnwindSafe: on a panic the closure's captures are dropped and only the panic
        // message crosses back; no state observed later can be half-updated by it (the engine's
        // models are immutable after loading).
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(result) => result,
            Err(payload) => Err(Failure::Panic(panic_message(payload.as_ref()))),
        }
    })
    .map_err(PyErr::from)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}
