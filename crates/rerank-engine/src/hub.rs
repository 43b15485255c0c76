//! Models from the Hugging Face hub (or a mirror): download into the standard Hugging Face cache
//! through the `hf-hub` crate, or find them there when offline.
//!
//! The cache layout is the one `huggingface_hub` (Python) uses, so models downloaded by either
//! are shared: `<cache>/models--<owner>--<name>/{blobs,refs,snapshots/<commit>}`, plus
//! `.no_exist/<commit>/<file>` markers for optional files the repository does not have.
//!
//! Environment (read by [`HubSettings::from_env`], same meaning as in `huggingface_hub`):
//!
//! | variable | effect |
//! |---|---|
//! | `HF_ENDPOINT` | base URL of the hub (default `https://huggingface.co`) |
//! | `HF_HOME` | root of the Hugging Face files (default `$XDG_CACHE_HOME/huggingface` or `~/.cache/huggingface`); the cache is `$HF_HOME/hub` and the token file `$HF_HOME/token` |
//! | `HF_HUB_CACHE` | the cache folder itself (overrides `$HF_HOME/hub`) |
//! | `HF_TOKEN` | access token for private / gated repositories (else the token file) |
//! | `HF_HUB_OFFLINE` | `1`/`true`/`yes`/`on`: never touch the network, use the cache only |
//! | `HF_HUB_DISABLE_PROGRESS_BARS` | `1`/`true`/`yes`/`on`: no download progress bars on stderr |

use std::fmt;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{ApiBuilder, ApiError, ApiRepo};
use hf_hub::{Cache, Repo, RepoType};
use serde::Deserialize;

use crate::error::{EngineError, Result};
use crate::weights::is_plain_relative;

/// Default hub endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Revision used when a hub id has no `@revision`.
pub const DEFAULT_REVISION: &str = "main";

/// Files a model needs besides its weights.
pub const REQUIRED_FILES: &[&str] = &["config.json", "tokenizer.json"];

/// Candidate weight files, in order of preference (the shards listed by the index come with it).
pub const WEIGHT_FILES: &[&str] = &[
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
];

/// Side files downloaded when the repository has them (absent ones are not an error).
pub const OPTIONAL_FILES: &[&str] = &[
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "1_Pooling/config.json",
];

const SHARD_INDEX: &str = "model.safetensors.index.json";

/// Where and how to reach the hub; see the module documentation for the environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// Base URL of the hub, without a trailing `/` (`HF_ENDPOINT`).
    pub endpoint: String,
    /// The hub cache folder, the one holding `models--<owner>--<name>` folders
    /// (`HF_HUB_CACHE`, else `$HF_HOME/hub`).
    pub cache_dir: PathBuf,
    /// Bearer token sent with every request (`HF_TOKEN`, else the `$HF_HOME/token` file).
    pub token: Option<String>,
    /// Use the local cache only, never the network (`HF_HUB_OFFLINE`).
    pub offline: bool,
    /// Show download progress bars on stderr (off with `HF_HUB_DISABLE_PROGRESS_BARS`).
    pub progress: bool,
}

impl Default for HubSettings {
    /// The settings of an empty environment: huggingface.co, `~/.cache/huggingface/hub`, online.
    fn default() -> Self {
        HubSettings::from_lookup(|_| None)
    }
}

impl HubSettings {
    /// Reads the settings from the process environment (see the module documentation).
    /// Never fails; reads the token file `$HF_HOME/token` when `HF_TOKEN` is not set.
    pub fn from_env() -> Self {
        HubSettings::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from a variable lookup (`var("HF_HOME")` → value), so that callers
    /// and tests need not touch the process-global environment. Empty values count as unset.
    /// The default location comes from `XDG_CACHE_HOME`, else `HOME` (or `USERPROFILE`).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let hf_home = get("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache_root = get("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                get("HOME")
                    .or_else(|| get("USERPROFILE"))
                    .map(|home| PathBuf::from(home).join(".cache"))
                    .unwrap_or_else(|| PathBuf::from(".cache"))
            });
            cache_root.join("huggingface")
        });
        let cache_dir = get("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = get("HF_TOKEN")
            .map(|t| t.trim().to_string())
            .or_else(|| read_token_file(&hf_home.join("token")));
        let endpoint = get("HF_ENDPOINT")
            .map(|e| e.trim().trim_end_matches('/').to_string())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        HubSettings {
            endpoint,
            cache_dir,
            token,
            offline: get("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v)),
            progress: !get("HF_HUB_DISABLE_PROGRESS_BARS").is_some_and(|v| is_truthy(&v)),
        }
    }
}

fn read_token_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// `huggingface_hub`'s boolean environment values: `1`, `true`, `yes`, `on` (any case).
fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// A model repository on the hub: `name` or `owner/name`, optionally pinned with `@revision`
/// (a branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    /// `owner/name` or `name`.
    pub repo_id: String,
    /// The revision after `@`, if any (`None` = [`DEFAULT_REVISION`]).
    pub revision: Option<String>,
}

impl HubId {
    /// Parses `name`, `owner/name`, `name@revision` or `owner/name@revision`.
    ///
    /// Returns `None` for anything that is not a valid hub id, with the hub's own rules: each
    /// part made of ASCII letters, digits, `-`, `_`, `.`, starting and ending with a letter,
    /// digit or `_`, no `--` or `..`, not ending in `.git`, at most 96 characters. So paths such
    /// as `./model`, `/abs/dir`, `../x` or `a/b/c` are never hub ids. A revision may contain `/`
    /// (e.g. `refs/pr/1`) but no `..`, spaces or URL specials.
    pub fn parse(spec: &str) -> Option<HubId> {
        let (repo_id, revision) = match spec.split_once('@') {
            Some((repo, rev)) => (repo, Some(rev)),
            None => (spec, None),
        };
        if repo_id.is_empty()
            || repo_id.len() > 96
            || repo_id.contains("--")
            || repo_id.contains("..")
            || repo_id.ends_with(".git")
        {
            return None;
        }
        let parts: Vec<&str> = repo_id.split('/').collect();
        if parts.len() > 2 || !parts.iter().all(|p| valid_name_part(p)) {
            return None;
        }
        if let Some(rev) = revision {
            let ok_chars = rev
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
            if rev.is_empty()
                || !ok_chars
                || rev.contains("..")
                || rev.starts_with('/')
                || rev.ends_with('/')
                || rev.contains("//")
            {
                return None;
            }
        }
        Some(HubId {
            repo_id: repo_id.to_string(),
            revision: revision.map(str::to_string),
        })
    }

    /// The revision to fetch: the one given after `@`, else [`DEFAULT_REVISION`].
    pub fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or(DEFAULT_REVISION)
    }

    fn repo(&self, revision: &str) -> Repo {
        Repo::with_revision(self.repo_id.clone(), RepoType::Model, revision.to_string())
    }
}

fn valid_name_part(part: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match (part.chars().next(), part.chars().last()) {
        (Some(first), Some(last)) => {
            word(first) && word(last) && part.chars().all(|c| word(c) || c == '-' || c == '.')
        }
        _ => false,
    }
}

impl fmt::Display for HubId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.revision {
            Some(rev) => write!(f, "{}@{}", self.repo_id, rev),
            None => f.write_str(&self.repo_id),
        }
    }
}

/// Resolves a hub model to its local snapshot folder (the folder holding `config.json`,
/// `tokenizer.json` and the weights): from the cache only when `settings.offline`, else by
/// downloading (see [`download_model`]).
///
/// Errors: see [`cached_model`] (offline) and [`download_model`] (online).
pub fn resolve_hub_model(id: &HubId, settings: &HubSettings) -> Result<PathBuf> {
    if settings.offline {
        cached_model(id, settings)
    } else {
        download_model(id, settings)
    }
}

/// Finds a complete snapshot of `id` in the local cache, without any network access.
///
/// The revision is looked up through `refs/<revision>` (written by earlier downloads); a full
/// 40-hex commit id also matches `snapshots/<commit>` directly.
///
/// Errors: [`EngineError::NotFound`] naming the model when it is not cached (advising to unset
/// `HF_HUB_OFFLINE`, pass a folder or set `RERANK_MODEL_PATH`) or only partially cached
/// (naming the missing files).
pub fn cached_model(id: &HubId, settings: &HubSettings) -> Result<PathBuf> {
    let cache = Cache::new(settings.cache_dir.clone());
    let repo = id.repo(id.revision());
    let snapshot = cache
        .repo(repo.clone())
        .get("config.json")
        .and_then(|config| config.parent().map(Path::to_path_buf))
        .or_else(|| {
            let rev = id.revision();
            let is_commit = rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit());
            let dir = cache
                .path()
                .join(repo.folder_name())
                .join("snapshots")
                .join(rev);
            (is_commit && dir.join("config.json").is_file()).then_some(dir)
        });
    let Some(snapshot) = snapshot else {
        return Err(EngineError::NotFound {
            path: PathBuf::from(id.to_string()),
            reason: format!(
                "hub model {id} is not in the Hugging Face cache {} and HF_HUB_OFFLINE is set; \
                 unset HF_HUB_OFFLINE to download it, or pass a local model folder \
                 (or set RERANK_MODEL_PATH to folders that contain it)",
                settings.cache_dir.display()
            ),
        });
    };
    let missing = missing_files(&snapshot);
    if !missing.is_empty() {
        return Err(EngineError::NotFound {
            path: snapshot,
            reason: format!(
                "hub model {id} is only partially cached (missing {}); unset HF_HUB_OFFLINE \
                 to complete the download",
                missing.join(", ")
            ),
        });
    }
    Ok(snapshot)
}

/// Downloads `id` into the cache (skipping files the snapshot already has) and returns the
/// snapshot folder.
///
/// Fetches `config.json` (always, to learn the current commit of the revision), then pins that
/// commit for `tokenizer.json`, the weights — `model.safetensors`, else
/// `model.safetensors.index.json` and every shard it lists, else `pytorch_model.bin` — and the
/// [`OPTIONAL_FILES`] the repository has. A 404 on an optional file is recorded as a
/// `.no_exist` marker (as `huggingface_hub` does) and not asked again for that commit.
///
/// Errors: [`EngineError::NotFound`] when the repository, revision or a required file does not
/// exist (or is private / gated: set `HF_TOKEN`), or it has no weights;
/// [`EngineError::Hub`] when the hub cannot be reached and the model is not cached (a cached
/// model is then used with a warning), when the server does not answer like a hub (check
/// `HF_ENDPOINT`), or when the cache cannot be written.
pub fn download_model(id: &HubId, settings: &HubSettings) -> Result<PathBuf> {
    let cache_dir = std::path::absolute(&settings.cache_dir).map_err(|e| {
        EngineError::Hub(format!(
            "invalid cache folder {}: {e}",
            settings.cache_dir.display()
        ))
    })?;
    let api = ApiBuilder::from_cache(Cache::new(cache_dir.clone()))
        .with_endpoint(settings.endpoint.clone())
        .with_token(settings.token.clone())
        .with_progress(settings.progress)
        .with_user_agent("rerank", env!("CARGO_PKG_VERSION"))
        .build()
        .map_err(|e| EngineError::Hub(format!("cannot set up the hub client: {e}")))?;
    tracing::info!(model = %id, endpoint = %settings.endpoint, "resolving hub model");

    let config = match api.repo(id.repo(id.revision())).download("config.json") {
        Ok(path) => path,
        Err(err) => {
            let failure = Failure::from(err);
            if let Failure::Unreachable(reason) = &failure {
                if let Ok(dir) = cached_model(id, settings) {
                    tracing::warn!(
                        model = %id,
                        "cannot reach {}: {reason}; using the cached copy {}",
                        settings.endpoint,
                        dir.display()
                    );
                    return Ok(dir);
                }
            }
            return Err(failure.into_error(id, "config.json", settings, true));
        }
    };
    let snapshot = config
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| EngineError::Hub(format!("unexpected cache path {}", config.display())))?;
    let commit = snapshot
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Pin the commit so that every file comes from the same snapshot even if the branch moves.
    let pinned_rev = if commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()) {
        commit.clone()
    } else {
        id.revision().to_string()
    };
    let repo_dir = cache_dir.join(id.repo(id.revision()).folder_name());
    let fetcher = Fetcher {
        id,
        settings,
        repo: api.repo(id.repo(&pinned_rev)),
        snapshot: snapshot.clone(),
        no_exist: repo_dir.join(".no_exist").join(&commit),
    };

    fetcher.required("tokenizer.json")?;
    if !fetcher.optional("model.safetensors")? {
        if fetcher.optional(SHARD_INDEX)? {
            for shard in shard_names(&snapshot.join(SHARD_INDEX))? {
                fetcher.required(&shard)?;
            }
        } else if !fetcher.optional("pytorch_model.bin")? {
            return Err(EngineError::NotFound {
                path: PathBuf::from(id.to_string()),
                reason: format!(
                    "hub repository {} (revision {}) has no model.safetensors, {SHARD_INDEX} \
                     or pytorch_model.bin: is it a transformers model?",
                    id.repo_id,
                    id.revision()
                ),
            });
        }
    }
    for file in OPTIONAL_FILES {
        fetcher.optional(file)?;
    }
    tracing::info!(model = %id, path = %snapshot.display(), "hub model ready");
    Ok(snapshot)
}

/// Shard file names listed by a `model.safetensors.index.json`, deduplicated; refuses names
/// that would escape the snapshot folder.
fn shard_names(index: &Path) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct ShardIndex {
        weight_map: std::collections::HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index).map_err(|e| EngineError::bad_file(index, e))?;
    let parsed: ShardIndex =
        serde_json::from_str(&text).map_err(|e| EngineError::bad_file(index, e))?;
    let mut shards: Vec<String> = parsed.weight_map.into_values().collect();
    shards.sort();
    shards.dedup();
    for shard in &shards {
        if !is_plain_relative(shard) {
            return Err(EngineError::bad_file(
                index,
                format!("shard name {shard:?} is not a plain relative file name"),
            ));
        }
    }
    Ok(shards)
}

/// Required files the snapshot folder lacks (config, tokenizer, weights and shards).
fn missing_files(snapshot: &Path) -> Vec<String> {
    let mut missing: Vec<String> = REQUIRED_FILES
        .iter()
        .filter(|f| !snapshot.join(f).is_file())
        .map(|f| f.to_string())
        .collect();
    if snapshot.join("model.safetensors").is_file() || snapshot.join("pytorch_model.bin").is_file()
    {
        return missing;
    }
    let index = snapshot.join(SHARD_INDEX);
    if index.is_file() {
        match shard_names(&index) {
            Ok(shards) => {
                missing.extend(shards.into_iter().filter(|s| !snapshot.join(s).is_file()))
            }
            Err(_) => missing.push(format!("a readable {SHARD_INDEX}")),
        }
    } else {
        missing.push("model.safetensors (or shards, or pytorch_model.bin)".into());
    }
    missing
}

/// Downloads files of one pinned snapshot.
struct Fetcher<'a> {
    id: &'a HubId,
    settings: &'a HubSettings,
    repo: ApiRepo,
    snapshot: PathBuf,
    no_exist: PathBuf,
}

impl Fetcher<'_> {
    /// Downloads `file` unless the snapshot has it; any failure is an error.
    fn required(&self, file: &str) -> Result<()> {
        match self.fetch(file)? {
            Ok(()) => Ok(()),
            Err(failure) => Err(failure.into_error(self.id, file, self.settings, false)),
        }
    }

    /// Downloads `file` unless the snapshot has it; `Ok(false)` when the repository does not
    /// have it (HTTP 404, remembered in `.no_exist`).
    fn optional(&self, file: &str) -> Result<bool> {
        if self.no_exist.join(file).exists() {
            return Ok(false);
        }
        match self.fetch(file)? {
            Ok(()) => Ok(true),
            Err(Failure::Status { code: 404, .. }) => {
                tracing::debug!(model = %self.id, file, "not in the repository");
                let marker = self.no_exist.join(file);
                if let Some(parent) = marker.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::File::create(marker);
                Ok(false)
            }
            Err(failure) => Err(failure.into_error(self.id, file, self.settings, false)),
        }
    }

    /// Ensures `snapshot/file` exists: `Ok(Ok(()))` when present or downloaded, `Ok(Err(_))`
    /// for a hub failure, `Err(_)` for a local I/O failure.
    fn fetch(&self, file: &str) -> Result<std::result::Result<(), Failure>> {
        let target = self.snapshot.join(file);
        if target.is_file() {
            return Ok(Ok(()));
        }
        tracing::debug!(model = %self.id, file, "downloading");
        let path = match self.repo.download(file) {
            Ok(path) => path,
            Err(err) => return Ok(Err(Failure::from(err))),
        };
        if path != target {
            // The server reported another commit for the pinned revision: keep the snapshot whole.
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| EngineError::bad_file(parent, e))?;
            }
            std::fs::copy(&path, &target).map_err(|e| EngineError::bad_file(&target, e))?;
        }
        Ok(Ok(()))
    }
}

/// A failed hub request, classified.
enum Failure {
    /// The server answered with an HTTP error status (`x-error-code` is the hub's reason,
    /// e.g. `RepoNotFound`, `EntryNotFound`, `RevisionNotFound`, `GatedRepo`).
    Status {
        code: u16,
        error_code: Option<String>,
        message: String,
    },
    /// No HTTP answer at all (DNS, refused connection, reset, proxy, bad URL).
    Unreachable(String),
    /// The answer was not what a hub sends (missing `x-repo-commit`, `etag`, `content-range`…).
    Protocol(String),
    /// Writing the cache failed.
    Io(String),
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::RequestError(inner) => {
                let message = inner.to_string();
                match (*inner).into_response() {
                    Some(response) => Failure::Status {
                        code: response.status(),
                        error_code: response.header("x-error-code").map(str::to_string),
                        message,
                    },
                    None => Failure::Unreachable(message),
                }
            }
            ApiError::TooManyRetries(inner) => Failure::from(*inner),
            ApiError::IoError(e) => Failure::Io(e.to_string()),
            ApiError::InvalidResume => Failure::Io(
                "a partial download (*.part file in the blobs folder) is corrupted; delete it"
                    .to_string(),
            ),
            ApiError::LockAcquisition(path) => Failure::Io(format!(
                "another process holds the download lock {}",
                path.display()
            )),
            other => Failure::Protocol(other.to_string()),
        }
    }
}

impl Failure {
    /// Turns the failure to fetch `file` into an error that says what to do. `first` is true
    /// for the very first request of a resolution (a 404 then most likely means a wrong id).
    fn into_error(
        self,
        id: &HubId,
        file: &str,
        settings: &HubSettings,
        first: bool,
    ) -> EngineError {
        let endpoint = &settings.endpoint;
        let repo = &id.repo_id;
        let rev = id.revision();
        let local_hint =
            "pass a local model folder or set RERANK_MODEL_PATH to folders that contain it";
        match self {
            Failure::Status {
                code,
                error_code,
                message,
            } => {
                let reason = match (code, error_code.as_deref()) {
                    (_, Some("RevisionNotFound")) => format!(
                        "hub repository {repo} has no revision {rev:?} on {endpoint} (HTTP {code}); \
                         check the part after @"
                    ),
                    (_, Some("GatedRepo")) | (403, _) => format!(
                        "hub repository {repo} is gated or forbidden on {endpoint} (HTTP {code}): \
                         accept its terms on the hub and set HF_TOKEN to a token with access, \
                         or {local_hint}"
                    ),
                    (404, None | Some("EntryNotFound")) if !first => format!(
                        "hub repository {repo} (revision {rev}) has no {file} on {endpoint} \
                         (HTTP {code})"
                    ),
                    (_, Some("EntryNotFound")) => format!(
                        "hub repository {repo} (revision {rev}) has no {file} on {endpoint} \
                         (HTTP {code}){}",
                        if first { "; is it a transformers model repository?" } else { "" }
                    ),
                    (401 | 404, _) => format!(
                        "hub repository {repo} (revision {rev}) not found on {endpoint}: \
                         {file} answered HTTP {code}. Check the model id; a private or gated \
                         repository needs HF_TOKEN; or {local_hint}"
                    ),
                    _ => format!(
                        "downloading {file} of {repo} (revision {rev}) from {endpoint} failed: \
                         {message}"
                    ),
                };
                if matches!(code, 401 | 403 | 404) {
                    EngineError::NotFound {
                        path: PathBuf::from(id.to_string()),
                        reason,
                    }
                } else {
                    EngineError::Hub(reason)
                }
            }
            Failure::Unreachable(message) => EngineError::Hub(format!(
                "cannot reach the hub at {endpoint} to download {id} ({file}): {message}. {}",
                if first {
                    format!(
                        "Check the network and HF_ENDPOINT, or {local_hint} (the model is not in \
                         the cache, so HF_HUB_OFFLINE=1 would not help)"
                    )
                } else {
                    "Check the network and retry: the download resumes where it stopped".to_string()
                }
            )),
            Failure::Protocol(message) => EngineError::Hub(format!(
                "the server at {endpoint} did not answer like a Hugging Face hub for {file} of \
                 {id}: {message}. Check HF_ENDPOINT"
            )),
            Failure::Io(message) => EngineError::Hub(format!(
                "cannot write {file} of {id} into the cache {}: {message}. Check HF_HOME / \
                 HF_HUB_CACHE",
                settings.cache_dir.display()
            )),
        }
    }
}
