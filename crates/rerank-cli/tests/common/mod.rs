//! Paths shared by the CLI integration tests.

#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared` beside the clone (models, reference outputs, data), or `$RERANK_SHARED`.
pub fn shared() -> PathBuf {
    std::env::var_os("RERANK_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The folder of a model in `../shared/models`, as a command-line argument.
pub fn model(name: &str) -> String {
    shared().join("models").join(name).display().to_string()
}
