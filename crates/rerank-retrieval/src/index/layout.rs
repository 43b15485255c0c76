//! The on-disk layout of an index directory and the file-system moves that make `add` atomic.
//!
//! ```text
//! DIR/
//!   CURRENT          one line, "gen-<n>": the live generation (replaced by write-temp + fsync + rename)
//!   LOCK             advisory lock (flock) held by a writer (`create`, `add`)
//!   gen-<n>/         one complete, immutable generation (see `store`, `hnsw`, `bm25`, `manifest`)
//! ```
//!
//! A generation is written in full in a fresh `gen-<n+1>/`, fsynced, and only then named by
//! `CURRENT`, so a reader sees either the old or the new generation. Any `gen-*` directory that
//! `CURRENT` does not name is a leftover of a crashed writer (or an old generation whose removal
//! was interrupted); it is removed by the next writer that holds the lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Result, RetrievalError};

/// Name of the file that names the live generation.
pub const CURRENT: &str = "CURRENT";
/// Temporary file that becomes `CURRENT` by rename.
const CURRENT_TMP: &str = "CURRENT.tmp";
/// Name of the writers' lock file.
pub const LOCK: &str = "LOCK";

/// Directory name of generation `n`: `gen-<n>`.
pub fn gen_name(n: u64) -> String {
    format!("gen-{n}")
}

/// Path of generation `n` inside the index directory.
pub fn gen_dir(dir: &Path, n: u64) -> PathBuf {
    dir.join(gen_name(n))
}

/// Parses `gen-<n>` (exactly: ASCII digits, no sign, no padding tricks beyond what `u64` parses).
pub fn parse_gen_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("gen-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `dir` holds an index (its `CURRENT` exists).
pub fn has_index(dir: &Path) -> bool {
    dir.join(CURRENT).is_file()
}

/// Reads `CURRENT` and returns the live generation number.
///
/// Errors: `BadIndex` if `CURRENT` is missing or does not hold `gen-<n>`.
pub fn read_current(dir: &Path) -> Result<u64> {
    let path = dir.join(CURRENT);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(dir, "no index here (CURRENT is missing)"));
        }
        Err(e) => return Err(RetrievalError::io(path, e)),
    };
    parse_gen_name(text.trim())
        .ok_or_else(|| bad(dir, format!("CURRENT holds {:?}, not gen-<n>", text.trim())))
}

/// Makes generation `n` the live one: writes `CURRENT.tmp`, fsyncs it and renames it over
/// `CURRENT`. `before_rename` runs between the fsync and the rename (a fault-injection point
/// for tests).
///
/// `Ok` means the rename happened (the switch is visible); an `Err` means it did not. The
/// caller must then [`fsync_dir`] `dir` to make the switch durable.
pub fn write_current(dir: &Path, n: u64, before_rename: impl FnOnce() -> Result<()>) -> Result<()> {
    let tmp = dir.join(CURRENT_TMP);
    write_file_synced(&tmp, format!("{}\n", gen_name(n)).as_bytes())?;
    before_rename()?;
    let path = dir.join(CURRENT);
    fs::rename(&tmp, &path).map_err(|e| RetrievalError::io(&path, e))
}

/// Creates (or truncates) `path`, writes `bytes` and fsyncs the file (not its directory).
pub fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| RetrievalError::io(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| RetrievalError::io(path, e))
}

/// Fsyncs a directory, so that the names created or renamed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RetrievalError::io(dir, e))
}

/// Fsyncs every file and directory under `root` (depth first), then `root` itself.
pub fn fsync_tree(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).map_err(|e| RetrievalError::io(root, e))? {
        let entry = entry.map_err(|e| RetrievalError::io(root, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| RetrievalError::io(&path, e))?;
        if kind.is_dir() {
            fsync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| RetrievalError::io(&path, e))?;
        }
    }
    fsync_dir(root)
}

/// Removes every `gen-*` directory except `keep`, and a stray `CURRENT.tmp`.
/// Only call while holding the writers' lock. Failures are logged, not returned.
pub fn remove_stale(dir: &Path, keep: Option<u64>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = match parse_gen_name(name) {
            Some(n) => Some(n) != keep,
            None => name == CURRENT_TMP,
        };
        if stale {
            let path = entry.path();
            let result = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => tracing::debug!(path = %path.display(), "removed stale generation"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove stale generation")
                }
            }
        }
    }
}

/// Exclusive advisory lock on `DIR/LOCK`, released when dropped (closing the file releases it).
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the writers' lock without waiting.
    ///
    /// Errors: `Io` with kind `WouldBlock` if another writer (in this or another process)
    /// holds it; `Io` if the lock file cannot be created.
    pub fn acquire(dir: &Path) -> Result<WriterLock> {
        let path = dir.join(LOCK);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| RetrievalError::io(&path, e))?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => Ok(WriterLock { _file: file }),
            Ok(false) => Err(RetrievalError::io(
                path,
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "another writer is updating this index; try again when it has finished",
                ),
            )),
            Err(e) => Err(RetrievalError::io(path, e)),
        }
    }

    /// Like `acquire`, but `None` instead of an error (for opportunistic clean-up by readers,
    /// which may lack write permission).
    pub fn try_acquire(dir: &Path) -> Option<WriterLock> {
        WriterLock::acquire(dir).ok()
    }
}

/// A `BadIndex` error for `dir`.
pub fn bad(dir: &Path, reason: impl Into<String>) -> RetrievalError {
    RetrievalError::BadIndex {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_names_round_trip() {
        assert_eq!(parse_gen_name(&gen_name(0)), Some(0));
        assert_eq!(parse_gen_name(&gen_name(42)), Some(42));
        assert_eq!(parse_gen_name("gen-"), None);
        assert_eq!(parse_gen_name("gen-+1"), None);
        assert_eq!(parse_gen_name("gen-1x"), None);
        assert_eq!(parse_gen_name("CURRENT"), None);
    }
}
