//! Reading pairs and documents from files or stdin, with line-numbered errors.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Opens `path`, or stdin when `path` is `None` or `-`.
pub fn open(path: Option<&Path>) -> Result<(Box<dyn BufRead>, String)> {
    match path {
        Some(p) if p != Path::new("-") => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            Ok((Box::new(BufReader::new(f)), p.display().to_string()))
        }
        _ => Ok((Box::new(BufReader::new(std::io::stdin())), "<stdin>".into())),
    }
}

/// One `{"query": ..., "document": ...}` line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairLine {
    query: String,
    document: String,
}

/// Reads JSONL pairs; blank lines are skipped. Errors name the file and line.
pub fn read_pairs(path: Option<&Path>) -> Result<Vec<(String, String)>> {
    let (reader, name) = open(path)?;
    let mut pairs = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{name}: cannot read line {}", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let p: PairLine = serde_json::from_str(&line).with_context(|| {
            format!(
                "{name}:{}: expected a JSON object {{\"query\": \"...\", \"document\": \"...\"}}",
                n + 1
            )
        })?;
        pairs.push((p.query, p.document));
    }
    Ok(pairs)
}

/// Reads documents: JSONL `{"text": ...}` when the first non-blank line is a JSON object,
/// else plain text, one document per line. Blank lines are skipped in both forms.
pub fn read_documents(path: Option<&Path>) -> Result<Vec<String>> {
    let (mut reader, name) = open(path)?;
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .with_context(|| format!("{name}: not valid UTF-8 text"))?;
    let jsonl = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('{'));
    let mut docs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if jsonl {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{name}:{}: invalid JSON", n + 1))?;
            match v.get("text").and_then(|t| t.as_str()) {
                Some(t) => docs.push(t.to_string()),
                None => bail!(
                    "{name}:{}: expected a JSON object with a string field \"text\"",
                    n + 1
                ),
            }
        } else {
            docs.push(line.to_string());
        }
    }
    Ok(docs)
}
