//! The BM25 full-text index (tantivy), directory `bm25/` of a generation.
//!
//! Schema: `ord` (u64, stored + fast: the passage ordinal) and `text` (indexed with term
//! frequencies, not stored, tokenizer [`TOKENIZER`]: split on non-alphanumerics, drop tokens
//! longer than 40 bytes, lowercase). Scores are tantivy's BM25 (k1 = 1.2, b = 0.75).
//!
//! Queries never go through tantivy's query parser: the user text is run through the field's
//! own analyzer and the resulting terms are OR-ed as term queries, so query syntax in user text
//! (`AND`, `(`, `field:`, `*`, `"`…) is just text and can never make a query fail.
//!
//! The next generation's `bm25/` starts as hard links to the current one's files (tantivy never
//! modifies a file once written; it replaces `meta.json` by rename), falling back to copies.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{IndexReader, ReloadPolicy, TantivyDocument, Term};

use super::layout::bad;
use crate::{Result, RetrievalError};

/// Directory name of the full-text index inside a generation directory.
pub const BM25_DIR: &str = "bm25";
/// The tantivy tokenizer of the text field (tantivy's built-in "default").
pub const TOKENIZER: &str = "default";

const ORD: &str = "ord";
const TEXT: &str = "text";
/// Indexing memory per writer thread (tantivy's minimum is 15 MB).
const BUDGET_PER_THREAD: usize = 32 << 20;
/// Passages per add above which indexing uses more than one thread.
const DOCS_PER_EXTRA_THREAD: usize = 5_000;

fn ft_err(context: &str, e: impl std::fmt::Display) -> RetrievalError {
    RetrievalError::FullText(format!("{context}: {e}"))
}

/// An open full-text index with a reader (reloaded manually, never by a watcher thread).
pub struct Bm25 {
    index: tantivy::Index,
    reader: IndexReader,
    text: Field,
}

impl std::fmt::Debug for Bm25 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25")
            .field("docs", &self.reader.searcher().num_docs())
            .finish()
    }
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_u64_field(ORD, NumericOptions::default().set_stored().set_fast());
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    builder.add_text_field(TEXT, TextOptions::default().set_indexing_options(indexing));
    builder.build()
}

impl Bm25 {
    /// Opens `gen_dir/bm25` and checks it holds `count` documents.
    ///
    /// Errors: `BadIndex` if missing, unreadable by tantivy, of another schema or size.
    pub fn open(index_dir: &Path, gen_dir: &Path, count: usize) -> Result<Bm25> {
        let path = gen_dir.join(BM25_DIR);
        if !path.is_dir() {
            return Err(bad(index_dir, format!("{} is missing", path.display())));
        }
        let index = tantivy::Index::open_in_dir(&path)
            .map_err(|e| bad(index_dir, format!("{}: {e}", path.display())))?;
        let bm25 = Bm25::from_index(index)
            .map_err(|e| bad(index_dir, format!("{}: {e}", path.display())))?;
        let docs = bm25.reader.searcher().num_docs();
        if docs != count as u64 {
            return Err(bad(
                index_dir,
                format!(
                    "{} holds {docs} documents, the manifest says {count}",
                    path.display()
                ),
            ));
        }
        Ok(bm25)
    }

    /// Builds `dst_gen/bm25` = the documents of `src_gen/bm25` (if any) + `texts`, the latter
    /// with ordinals `first_ord`, `first_ord + 1`, …; commits and waits for merges.
    ///
    /// Errors: `Io` (linking/copying files), `FullText` (tantivy).
    pub fn build(
        src_gen: Option<&Path>,
        dst_gen: &Path,
        first_ord: usize,
        texts: &[&str],
    ) -> Result<Bm25> {
        let dst = dst_gen.join(BM25_DIR);
        fs::create_dir_all(&dst).map_err(|e| RetrievalError::io(&dst, e))?;
        let index = match src_gen {
            Some(src_gen) => {
                link_or_copy_files(&src_gen.join(BM25_DIR), &dst)?;
                tantivy::Index::open_in_dir(&dst).map_err(|e| ft_err("open", e))?
            }
            None => {
                tantivy::Index::create_in_dir(&dst, schema()).map_err(|e| ft_err("create", e))?
            }
        };
        let fields = Bm25::fields(&index).map_err(|e| ft_err("schema", e))?;
        if !texts.is_empty() {
            let threads = (1 + texts.len() / DOCS_PER_EXTRA_THREAD)
                .min(std::thread::available_parallelism().map_or(1, |n| n.get()))
                .min(4);
            let mut writer = index
                .writer_with_num_threads::<TantivyDocument>(threads, threads * BUDGET_PER_THREAD)
                .map_err(|e| ft_err("writer", e))?;
            for (i, text) in texts.iter().enumerate() {
                let mut doc = TantivyDocument::default();
                doc.add_u64(fields.0, (first_ord + i) as u64);
                doc.add_text(fields.1, text);
                writer.add_document(doc).map_err(|e| ft_err("add", e))?;
            }
            writer.commit().map_err(|e| ft_err("commit", e))?;
            writer
                .wait_merging_threads()
                .map_err(|e| ft_err("merge", e))?;
        }
        Bm25::from_index(index).map_err(|e| ft_err("open reader", e))
    }

    /// BM25 top-`k` for the words of `query`: `(ordinal, score)` best first (ties: lower
    /// document address). Empty if `k` = 0 or the query has no searchable terms.
    ///
    /// Errors: `FullText` (tantivy I/O while searching).
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(usize, f32)>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut analyzer = self
            .index
            .tokenizer_for_field(self.text)
            .map_err(|e| ft_err("tokenizer", e))?;
        let mut seen = HashSet::new();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        analyzer.token_stream(query).process(&mut |token| {
            if seen.insert(token.text.clone()) {
                let term = Term::from_field_text(self.text, &token.text);
                clauses.push((
                    Occur::Should,
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                ));
            }
        });
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let hits = searcher
            .search(
                &BooleanQuery::new(clauses),
                &TopDocs::with_limit(k).order_by_score(),
            )
            .map_err(|e| ft_err("search", e))?;
        let columns = searcher
            .segment_readers()
            .iter()
            .map(|segment| segment.fast_fields().u64(ORD))
            .collect::<tantivy::Result<Vec<_>>>()
            .map_err(|e| ft_err("ordinal column", e))?;
        Ok(hits
            .into_iter()
            .filter_map(|(score, addr)| {
                let ord = columns[addr.segment_ord as usize].first(addr.doc_id)?;
                Some((ord as usize, score))
            })
            .collect())
    }

    fn from_index(index: tantivy::Index) -> tantivy::Result<Bm25> {
        let (_, text) = Bm25::fields(&index)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Bm25 {
            index,
            reader,
            text,
        })
    }

    fn fields(index: &tantivy::Index) -> tantivy::Result<(Field, Field)> {
        let schema = index.schema();
        Ok((schema.get_field(ORD)?, schema.get_field(TEXT)?))
    }
}

/// Hard-links (or, failing that, copies) every regular file of `src` into `dst`, except
/// tantivy's lock files.
fn link_or_copy_files(src: &Path, dst: &Path) -> Result<()> {
    for entry in fs::read_dir(src).map_err(|e| RetrievalError::io(src, e))? {
        let entry = entry.map_err(|e| RetrievalError::io(src, e))?;
        let name = entry.file_name();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if !is_file || name.to_string_lossy().ends_with(".lock") {
            continue;
        }
        let (from, to) = (entry.path(), dst.join(&name));
        if fs::hard_link(&from, &to).is_err() {
            fs::copy(&from, &to).map_err(|e| RetrievalError::io(&from, e))?;
        }
    }
    Ok(())
}
