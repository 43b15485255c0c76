//! Turning a model argument (a folder or a hub id) into a local folder.
//!
//! Order: an existing path; then the folders of `RERANK_MODEL_PATH`; then the Hugging Face hub
//! (cache or download, see [`crate::hub`]).

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};
use crate::hub::{self, HubId, HubSettings};

/// Name of the environment variable listing folders to search for models (`:`-separated).
pub const MODEL_PATH_VAR: &str = "RERANK_MODEL_PATH";

/// Everything [`resolve_model_with`] depends on, so that it can run without the process
/// environment (tests, embedding applications).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolveSettings {
    /// Folders searched for a model folder before the hub (`RERANK_MODEL_PATH`).
    pub search_path: Vec<PathBuf>,
    /// How to reach the hub and where its cache is.
    pub hub: HubSettings,
}

impl ResolveSettings {
    /// Reads `RERANK_MODEL_PATH` (`:`-separated, empty entries ignored) and the Hugging Face
    /// variables (see [`HubSettings::from_env`]). Never fails.
    pub fn from_env() -> Self {
        ResolveSettings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`ResolveSettings::from_env`] with a variable lookup instead of the process
    /// environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let search_path = var(MODEL_PATH_VAR)
            .map(|list| {
                list.split(':')
                    .filter(|d| !d.trim().is_empty())
                    .map(PathBuf::from)
                    .collect()
            })
            .unwrap_or_default();
        ResolveSettings {
            search_path,
            hub: HubSettings::from_lookup(var),
        }
    }
}

/// Resolves `spec` to a local model folder, with settings from the environment
/// (see [`resolve_model_with`] and [`ResolveSettings::from_env`]).
///
/// Errors: as [`resolve_model_with`].
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    resolve_model_with(spec, &ResolveSettings::from_env())
}

/// Resolves `spec` to a local model folder:
///
/// 1. an existing path is returned as is;
/// 2. else each folder `dir` of `settings.search_path` is tried for `dir/spec`, then
///    `dir/<last component of spec>` (so `BAAI/bge-reranker-base` finds
///    `dir/bge-reranker-base`); the first that is a folder with a `config.json` wins;
/// 3. else, if `spec` is a hub id (`name` or `owner/name`, optional `@revision`, see
///    [`HubId::parse`]), the snapshot folder of the model in the Hugging Face cache, downloaded
///    first unless `settings.hub.offline` (see [`hub::resolve_hub_model`]).
///
/// Errors: [`EngineError::NotFound`] when `spec` is neither an existing path, nor found on the
/// search path, nor a hub id; for hub ids, the errors of [`hub::cached_model`] (offline and not
/// cached) and [`hub::download_model`] (unknown repository or revision, missing files:
/// `NotFound`; unreachable hub, bad server or cache failure: [`EngineError::Hub`]).
pub fn resolve_model_with(spec: &str, settings: &ResolveSettings) -> Result<PathBuf> {
    let path = PathBuf::from(spec);
    if !spec.is_empty() && path.exists() {
        return Ok(path);
    }
    if let Some(found) = search_model_path(spec, &settings.search_path) {
        tracing::debug!(spec, path = %found.display(), "found on {MODEL_PATH_VAR}");
        return Ok(found);
    }
    if let Some(id) = HubId::parse(spec) {
        return hub::resolve_hub_model(&id, &settings.hub);
    }
    let searched = if settings.search_path.is_empty() {
        format!("{MODEL_PATH_VAR} is not set")
    } else {
        format!(
            "no folder with config.json for it in {MODEL_PATH_VAR} ({})",
            settings
                .search_path
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(":")
        )
    };
    Err(EngineError::NotFound {
        path,
        reason: format!(
            "neither an existing folder nor a hub id (`name` or `owner/name[@revision]`); \
             {searched}. Pass a model folder, or set {MODEL_PATH_VAR} to `:`-separated folders \
             that contain it"
        ),
    })
}

/// Searches `dirs` for the model `spec`: `dir/spec`, then `dir/<last component of spec>`, for
/// each `dir` in order. Returns the first candidate that is a folder containing `config.json`,
/// or `None` (also for an empty or absolute `spec`, which is not searched).
pub fn search_model_path(spec: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let spec_path = Path::new(spec);
    if spec.is_empty() || spec_path.is_absolute() {
        return None;
    }
    let last = spec_path.file_name().map(Path::new);
    dirs.iter()
        .flat_map(|dir| std::iter::once(dir.join(spec_path)).chain(last.map(|l| dir.join(l))))
        .find(|candidate| candidate.join("config.json").is_file())
}
