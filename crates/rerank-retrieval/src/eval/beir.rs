//! Reading a BEIR-format evaluation set: `corpus.jsonl`, `queries.jsonl` and a qrels TSV.
//!
//! - corpus: one JSON object per non-blank line, `{"_id", "title"?, "text", "metadata"?}`;
//!   `_id` is a non-empty string or a number. The document text is `title + " " + text` when
//!   the title is non-empty (as BEIR's sentence-transformers models join them) and `text`
//!   alone otherwise. The record's `metadata` object, plus `title` when non-empty, becomes the
//!   document's metadata.
//! - queries: one JSON object per non-blank line, `{"_id", "text", "metadata"?}`.
//! - qrels: tab- (or space-) separated `query-id corpus-id score` lines with an integer score;
//!   the first line is a header (`query-id<TAB>corpus-id<TAB>score`) and is skipped when its score
//!   column is not an integer. Blank lines are skipped.
//!
//! Every malformed line is a [`RetrievalError::BadInput`] naming the file and its 1-based
//! line; duplicate ids (corpus, queries) and duplicate `(query, document)` judgments are
//! errors too. [`BeirDataset::load`] keeps the queries that have judgments, in the order of
//! the queries file, and errors when a judged query is missing from the queries file.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Result, RetrievalError};
use crate::eval::metrics::Judgments;
use crate::Document;

/// A query of the evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    pub id: String,
    pub text: String,
    /// The record's `metadata` object (e.g. `{"kind": "ict"}`), empty if absent.
    pub metadata: Map<String, Value>,
}

/// Relevance judgments: query id → (document id → grade).
pub type Qrels = BTreeMap<String, Judgments>;

/// A loaded BEIR set.
#[derive(Debug, Clone)]
pub struct BeirDataset {
    /// Every corpus document, in file order; `id` is the BEIR `_id`.
    pub corpus: Vec<Document>,
    /// The queries with judgments, in the order of the queries file.
    pub queries: Vec<Query>,
    /// Judgments of those queries.
    pub qrels: Qrels,
}

fn bad(path: &Path, line: usize, reason: impl Into<String>) -> RetrievalError {
    RetrievalError::BadInput {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

/// Reads a UTF-8 file and yields its non-blank lines with 1-based numbers.
fn read_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    let bytes = fs::read(path).map_err(|e| RetrievalError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        bad(
            path,
            line,
            format!("not UTF-8 (invalid byte at offset {at})"),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    Ok(text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l).to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect())
}

/// A JSON line as an object, with its `_id` (string or number) and `text`.
fn parse_object(path: &Path, line: usize, json: &str) -> Result<(String, Map<String, Value>)> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| bad(path, line, format!("invalid JSON: {e}")))?;
    let Value::Object(mut record) = value else {
        return Err(bad(path, line, "expected a JSON object"));
    };
    let id = match record.remove("_id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(_)) => return Err(bad(path, line, "empty \"_id\"")),
        Some(_) => return Err(bad(path, line, "\"_id\" must be a string or a number")),
        None => return Err(bad(path, line, "missing \"_id\"")),
    };
    Ok((id, record))
}

fn string_field(
    path: &Path,
    line: usize,
    record: &mut Map<String, Value>,
    key: &str,
    required: bool,
) -> Result<Option<String>> {
    match record.remove(key) {
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Null) | None if !required => Ok(None),
        Some(Value::Null) | None => Err(bad(path, line, format!("missing \"{key}\""))),
        Some(_) => Err(bad(path, line, format!("\"{key}\" must be a string"))),
    }
}

fn metadata_field(
    path: &Path,
    line: usize,
    record: &mut Map<String, Value>,
) -> Result<Map<String, Value>> {
    match record.remove("metadata") {
        Some(Value::Object(m)) => Ok(m),
        Some(Value::Null) | None => Ok(Map::new()),
        Some(_) => Err(bad(path, line, "\"metadata\" must be an object")),
    }
}

fn check_unique(
    seen: &mut HashMap<String, usize>,
    path: &Path,
    line: usize,
    id: &str,
) -> Result<()> {
    if let Some(first) = seen.insert(id.to_string(), line) {
        return Err(bad(
            path,
            line,
            format!("duplicate id {id:?} (first seen at line {first})"),
        ));
    }
    Ok(())
}

/// Reads a BEIR `corpus.jsonl` (see the module documentation). Documents have `score` 0.
pub fn load_corpus(path: &Path) -> Result<Vec<Document>> {
    let mut seen = HashMap::new();
    let mut docs = Vec::new();
    for (line, json) in read_lines(path)? {
        let (id, mut record) = parse_object(path, line, &json)?;
        check_unique(&mut seen, path, line, &id)?;
        let text = string_field(path, line, &mut record, "text", true)?.unwrap_or_default();
        let title = string_field(path, line, &mut record, "title", false)?.unwrap_or_default();
        let mut metadata = metadata_field(path, line, &mut record)?;
        let text = if title.trim().is_empty() {
            text
        } else {
            metadata.insert("title".into(), Value::String(title.clone()));
            format!("{title} {text}").trim().to_string()
        };
        docs.push(Document {
            id,
            text,
            metadata,
            score: 0.0,
        });
    }
    Ok(docs)
}

/// Reads a BEIR `queries.jsonl` (see the module documentation).
pub fn load_queries(path: &Path) -> Result<Vec<Query>> {
    let mut seen = HashMap::new();
    let mut queries = Vec::new();
    for (line, json) in read_lines(path)? {
        let (id, mut record) = parse_object(path, line, &json)?;
        check_unique(&mut seen, path, line, &id)?;
        let text = string_field(path, line, &mut record, "text", true)?.unwrap_or_default();
        if text.trim().is_empty() {
            return Err(bad(
                path,
                line,
                format!("query {id:?} has an empty \"text\""),
            ));
        }
        let metadata = metadata_field(path, line, &mut record)?;
        queries.push(Query { id, text, metadata });
    }
    Ok(queries)
}

/// Reads a BEIR qrels TSV (see the module documentation). Judgments with grade ≤ 0 are kept
/// (they count as judged non-relevant).
pub fn load_qrels(path: &Path) -> Result<Qrels> {
    Ok(read_qrels(path)?.0)
}

/// The qrels and, for each query, the line of its first judgment.
fn read_qrels(path: &Path) -> Result<(Qrels, HashMap<String, usize>)> {
    let mut qrels = Qrels::new();
    let mut first_line = HashMap::new();
    let mut first = true;
    for (line, text) in read_lines(path)? {
        let fields: Vec<&str> = if text.contains('\t') {
            text.split('\t').map(str::trim).collect()
        } else {
            text.split_whitespace().collect()
        };
        let is_first = std::mem::replace(&mut first, false);
        if fields.len() != 3 {
            if is_first && fields.len() >= 3 {
                continue; // a header with more columns
            }
            return Err(bad(
                path,
                line,
                format!(
                    "expected 3 columns (query-id, corpus-id, score), found {}",
                    fields.len()
                ),
            ));
        }
        let grade: i32 = match fields[2].parse() {
            Ok(g) => g,
            Err(_) if is_first => continue, // the header line
            Err(_) => {
                return Err(bad(
                    path,
                    line,
                    format!("score {:?} is not an integer", fields[2]),
                ))
            }
        };
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(bad(path, line, "empty query-id or corpus-id"));
        }
        first_line.entry(fields[0].to_string()).or_insert(line);
        let judgments = qrels.entry(fields[0].to_string()).or_default();
        if judgments.insert(fields[1].to_string(), grade).is_some() {
            return Err(bad(
                path,
                line,
                format!(
                    "duplicate judgment for query {:?} and document {:?}",
                    fields[0], fields[1]
                ),
            ));
        }
    }
    Ok((qrels, first_line))
}

impl BeirDataset {
    /// Loads the three files and keeps the judged queries (see the module documentation).
    ///
    /// Errors: anything [`load_corpus`], [`load_queries`] or [`load_qrels`] reports; a judged
    /// query missing from the queries file ([`RetrievalError::BadInput`] naming the qrels file
    /// and the line of its first judgment); no judged query at all or an empty corpus
    /// ([`RetrievalError::InvalidArgument`]).
    pub fn load(corpus: &Path, queries: &Path, qrels: &Path) -> Result<BeirDataset> {
        let corpus_docs = load_corpus(corpus)?;
        if corpus_docs.is_empty() {
            return Err(RetrievalError::InvalidArgument(format!(
                "{}: no documents",
                corpus.display()
            )));
        }
        let all_queries = load_queries(queries)?;
        let (judged, lines) = read_qrels(qrels)?;
        let known: HashMap<&str, ()> = all_queries.iter().map(|q| (q.id.as_str(), ())).collect();
        if let Some(missing) = judged.keys().find(|q| !known.contains_key(q.as_str())) {
            return Err(bad(
                qrels,
                lines[missing.as_str()],
                format!(
                    "query {missing:?} is judged but not in {}",
                    queries.display()
                ),
            ));
        }
        let queries_kept: Vec<Query> = all_queries
            .into_iter()
            .filter(|q| judged.contains_key(&q.id))
            .collect();
        if queries_kept.is_empty() {
            return Err(RetrievalError::InvalidArgument(format!(
                "{}: no judged query",
                qrels.display()
            )));
        }
        Ok(BeirDataset {
            corpus: corpus_docs,
            queries: queries_kept,
            qrels: judged,
        })
    }

    /// The three conventional paths of a BEIR folder: `corpus.jsonl`, `queries.jsonl` and
    /// `qrels/<split>.tsv`.
    pub fn paths_in(dir: &Path, split: &str) -> (PathBuf, PathBuf, PathBuf) {
        (
            dir.join("corpus.jsonl"),
            dir.join("queries.jsonl"),
            dir.join("qrels").join(format!("{split}.tsv")),
        )
    }
}
