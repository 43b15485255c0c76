//! The unit that flows through retrieval and reranking, as LangChain's `Document`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A passage with its metadata.
///
/// `metadata` keeps everything the source carried plus what the pipeline adds:
/// `source` (file), `start`/`end` (byte offsets in the source text), `chunk` (index within the
/// source), `first_stage_rank` (1-based) and `first_stage_score` after retrieval, and
/// `relevance_score` after reranking (the convention of LangChain's Cohere/Jina compressors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable passage id (`<source id>#<chunk>` for chunked files).
    pub id: String,
    /// The passage text.
    pub text: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// Score of the stage that produced this list: cosine similarity (dense), BM25 score,
    /// reciprocal-rank-fusion score (hybrid) or the reranker's relevance score.
    #[serde(default)]
    pub score: f32,
}
