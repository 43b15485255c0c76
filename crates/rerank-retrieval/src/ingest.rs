//! Reading source documents from files and folders.
//!
//! Formats, chosen by the file extension (case-insensitive):
//!
//! - `.txt`, `.md`, `.markdown`: one document per file. Its id is the file's path as walked
//!   (the path given, joined with the path relative to it inside a folder, e.g.
//!   `data/speeches/1790-Washington-1.txt`), so it is stable and unique for a given invocation;
//!   its metadata is `{"source": <that path>}`. A leading UTF-8 byte-order mark is removed;
//!   the text is otherwise kept verbatim (chunk offsets refer to it).
//! - `.jsonl`: one document per non-blank line, either
//!   - `{"id", "text", "metadata"?}`: `metadata` (an object, or absent/null) is kept unchanged;
//!   - or a BEIR `corpus.jsonl` record `{"_id", "title", "text", ...}` (recognised by `_id`):
//!     the text is `title + "\n\n" + text` when the title is non-empty (only the title when
//!     the text is empty), and `title` is added to the metadata.
//!
//!   In both forms any other top-level field (BEIR's `metadata` object is the base metadata
//!   too) is added to the metadata unless the metadata already has that key. Ids may be JSON
//!   strings or numbers (numbers are written out in decimal).
//!
//! A folder is walked recursively in sorted order (by file name, per folder); hidden files and
//! folders (name starting with `.`) and files with other extensions are skipped (a folder's
//! `README.md` is a `.md` file and *is* read). Symbolic links are followed, a folder reached
//! twice is walked once, and dangling links are skipped with a warning. A file named
//! explicitly is read whatever its extension: `.jsonl` as JSON lines, anything else as text.
//!
//! Documents whose text is empty or whitespace-only are skipped (they would give no passage);
//! duplicate ids among the remaining documents are an error naming both places. A file that
//! is not UTF-8, a malformed JSON line or a record without id/text is a
//! [`RetrievalError::BadInput`] with the file and 1-based line.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, RetrievalError};

/// A whole source document, before chunking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDocument {
    /// Unique id: the file path for text files, the record's `id` / `_id` for JSON lines.
    pub id: String,
    /// The full text (verbatim, except a removed UTF-8 byte-order mark).
    pub text: String,
    /// `{"source": <path>}` for text files, the record's metadata for JSON lines.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// Reads a file or a folder (see the module documentation for formats and rules).
pub fn read_path(path: &Path) -> Result<Vec<SourceDocument>> {
    read_paths(&[path.to_path_buf()])
}

/// Reads several files or folders, in order, and checks that ids are unique across all of
/// them.
pub fn read_paths(paths: &[PathBuf]) -> Result<Vec<SourceDocument>> {
    let mut reader = Reader::default();
    for path in paths {
        reader.read_root(path)?;
    }
    Ok(reader.docs)
}

#[derive(Default)]
struct Reader {
    docs: Vec<SourceDocument>,
    /// Where each id was first seen: file and 1-based line.
    seen: HashMap<String, (PathBuf, usize)>,
    /// Canonical paths of the folders already walked.
    walked: HashSet<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    JsonLines,
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

fn bad(path: &Path, line: usize, reason: impl Into<String>) -> RetrievalError {
    RetrievalError::BadInput {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

impl Reader {
    fn read_root(&mut self, path: &Path) -> Result<()> {
        let meta = fs::metadata(path).map_err(|e| RetrievalError::io(path, e))?;
        if meta.is_dir() {
            self.walk(path)
        } else {
            let format = match extension(path).as_deref() {
                Some("jsonl") => Format::JsonLines,
                _ => Format::Text,
            };
            self.read_file(path, format)
        }
    }

    fn walk(&mut self, dir: &Path) -> Result<()> {
        let canonical = fs::canonicalize(dir).map_err(|e| RetrievalError::io(dir, e))?;
        if !self.walked.insert(canonical) {
            tracing::debug!(folder = %dir.display(), "folder already walked, skipped");
            return Ok(());
        }
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| RetrievalError::io(dir, e))? {
            let entry = entry.map_err(|e| RetrievalError::io(dir, e))?;
            entries.push(entry.file_name());
        }
        entries.sort();
        for name in entries {
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = dir.join(&name);
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "unreadable entry skipped");
                    continue;
                }
            };
            if meta.is_dir() {
                self.walk(&path)?;
                continue;
            }
            let format = match extension(&path).as_deref() {
                Some("txt" | "md" | "markdown") => Format::Text,
                Some("jsonl") => Format::JsonLines,
                _ => {
                    tracing::debug!(file = %path.display(), "not .txt/.md/.markdown/.jsonl, skipped");
                    continue;
                }
            };
            if meta.is_file() {
                self.read_file(&path, format)?;
            }
        }
        Ok(())
    }

    fn read_file(&mut self, path: &Path, format: Format) -> Result<()> {
        let bytes = fs::read(path).map_err(|e| RetrievalError::io(path, e))?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
                return Err(bad(
                    path,
                    line,
                    format!("not UTF-8 (invalid byte at offset {at})"),
                ));
            }
        };
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        };
        match format {
            Format::Text => {
                let id = path.to_string_lossy().into_owned();
                let mut metadata = Map::new();
                metadata.insert("source".into(), Value::String(id.clone()));
                self.add(path, 1, SourceDocument { id, text, metadata })
            }
            Format::JsonLines => {
                for (i, line) in text.split('\n').enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let doc = parse_record(path, i + 1, line)?;
                    self.add(path, i + 1, doc)?;
                }
                Ok(())
            }
        }
    }

    fn add(&mut self, path: &Path, line: usize, doc: SourceDocument) -> Result<()> {
        if doc.text.trim().is_empty() {
            tracing::debug!(file = %path.display(), line, id = %doc.id, "empty document skipped");
            return Ok(());
        }
        if let Some((first, first_line)) = self.seen.get(&doc.id) {
            return Err(bad(
                path,
                line,
                format!(
                    "duplicate id {:?} (first seen at {}:{first_line})",
                    doc.id,
                    first.display()
                ),
            ));
        }
        self.seen.insert(doc.id.clone(), (path.to_path_buf(), line));
        self.docs.push(doc);
        Ok(())
    }
}

/// One JSON line: `{"id", "text", "metadata"?}` or BEIR `{"_id", "title", "text", ...}`.
fn parse_record(path: &Path, line: usize, json: &str) -> Result<SourceDocument> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| bad(path, line, format!("invalid JSON: {e}")))?;
    let Value::Object(mut record) = value else {
        return Err(bad(path, line, "expected a JSON object"));
    };
    let (id_key, beir) = if record.contains_key("_id") {
        ("_id", true)
    } else {
        ("id", false)
    };
    let id = match record.remove(id_key) {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(_)) => return Err(bad(path, line, format!("empty \"{id_key}\""))),
        Some(_) => {
            return Err(bad(
                path,
                line,
                format!("\"{id_key}\" must be a string or a number"),
            ))
        }
        None => return Err(bad(path, line, "missing \"id\" (or BEIR \"_id\")")),
    };
    let mut text = match record.remove("text") {
        Some(Value::String(s)) => s,
        Some(Value::Null) | None => return Err(bad(path, line, "missing \"text\"")),
        Some(_) => return Err(bad(path, line, "\"text\" must be a string")),
    };
    let mut metadata = match record.remove("metadata") {
        Some(Value::Object(m)) => m,
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(bad(path, line, "\"metadata\" must be an object")),
    };
    if beir {
        let title = match record.remove("title") {
            Some(Value::String(s)) => Some(s),
            Some(Value::Null) | None => None,
            Some(_) => return Err(bad(path, line, "\"title\" must be a string")),
        };
        if let Some(title) = title {
            if !title.trim().is_empty() {
                text = if text.trim().is_empty() {
                    title.clone()
                } else {
                    format!("{title}\n\n{text}")
                };
            }
            metadata
                .entry("title")
                .or_insert_with(|| Value::String(title));
        }
    }
    for (key, value) in record {
        metadata.entry(key).or_insert(value);
    }
    Ok(SourceDocument { id, text, metadata })
}
