//! `--long-documents truncate|chunk` and `--max-chunks-per-doc`: what `rank`, `search`,
//! `eval` and `serve` do with a document that does not fit beside the query (see
//! [`rerank_engine::long_documents`]).

use anyhow::{bail, Result};
use rerank_engine::long_documents::{DEFAULT_MAX_CHUNKS_PER_DOC, MAX_CHUNKS_PER_DOC};
use rerank_engine::LongDocuments;

/// `--long-documents`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LongDocumentsArg {
    /// Cut the pair to the max length (today's behaviour).
    Truncate,
    /// Score the document by its best window of overlapping token windows, each beside the
    /// whole query.
    Chunk,
}

/// The long-document flags, flattened into the commands that rerank documents.
#[derive(clap::Args, Clone, Debug)]
pub struct LongDocumentFlags {
    /// What to do with a document that does not fit beside the query: `truncate` (default)
    /// cuts the pair to the max length; `chunk` splits the document into overlapping token
    /// windows (a quarter of a window, at most 80 tokens, shared by neighbours) that each keep
    /// the whole query, scores every window and gives the document its best window's score.
    #[arg(long, env = "RERANK_LONG_DOCUMENTS", value_enum, default_value_t = LongDocumentsArg::Truncate)]
    pub long_documents: LongDocumentsArg,
    /// Windows per document in `chunk` mode, the first ones (1 to 100; default 10, Cohere's
    /// `max_chunks_per_doc` default). Only with `--long-documents chunk`.
    #[arg(long, env = "RERANK_MAX_CHUNKS_PER_DOC")]
    pub max_chunks_per_doc: Option<usize>,
}

impl LongDocumentFlags {
    /// The mode these flags say.
    ///
    /// Errors: `--max-chunks-per-doc` outside 1..=100, or given without
    /// `--long-documents chunk`.
    pub fn mode(&self) -> Result<LongDocuments> {
        match (self.long_documents, self.max_chunks_per_doc) {
            (LongDocumentsArg::Truncate, None) => Ok(LongDocuments::Truncate),
            (LongDocumentsArg::Truncate, Some(_)) => {
                bail!("--max-chunks-per-doc needs --long-documents chunk")
            }
            (LongDocumentsArg::Chunk, n) => {
                let n = n.unwrap_or(DEFAULT_MAX_CHUNKS_PER_DOC);
                if !(1..=MAX_CHUNKS_PER_DOC).contains(&n) {
                    bail!(
                        "--max-chunks-per-doc must be between 1 and {MAX_CHUNKS_PER_DOC}, got {n}"
                    );
                }
                Ok(LongDocuments::chunk(n)?)
            }
        }
    }

    /// `"truncate"` or `"chunk"`, for JSON output.
    pub fn name(&self) -> &'static str {
        match self.long_documents {
            LongDocumentsArg::Truncate => "truncate",
            LongDocumentsArg::Chunk => "chunk",
        }
    }
}
