//! Turning a model argument (a folder or a hub id) into a local folder.

use std::path::PathBuf;

use crate::error::{EngineError, Result};

/// Resolves `spec` to a local model folder: an existing path is used as is.
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    let p = PathBuf::from(spec);
    if p.exists() {
        return Ok(p);
    }
    Err(EngineError::NotFound {
        path: p,
        reason: "no such folder".into(),
    })
}
