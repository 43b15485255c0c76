//! Bi-encoder embeddings: a sentence-transformers folder (`modules.json`, `1_Pooling`,
//! `2_Normalize`, `sentence_bert_config.json`, prompts in `config_sentence_transformers.json`)
//! on the body ([`TokenEncoder`]) of any architecture of the registry, as
//! `SentenceTransformer.encode`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::batch::{self, DEFAULT_MAX_BATCH_TOKENS};
use crate::config::ModelConfig;
use crate::cross_encoder::{effective_max_length, require_dir};
use crate::error::{EngineError, Result};
use crate::model::{registry, Batch, LoadContext, Loaded, TokenEncoder, TokenSelection};
use crate::pooling::{self, Pooling, PoolingConfig};
use crate::precision::Precision;
use crate::st_config::{read_optional_json, SideConfig};
use crate::tokenize::{Encoded, TextTokenizer};

/// Load-time options of an [`Embedder`].
#[derive(Debug, Clone)]
pub struct EmbedderOptions {
    /// Lower the default max length (tokens, special tokens included).
    pub max_length: Option<usize>,
    /// Texts per forward pass of the library's own planning (after length sorting).
    /// Default 32.
    pub batch_size: usize,
    /// Prefix for queries (e5's `"query: "`, bge's instruction). Default: the folder's
    /// `prompts["query"]`.
    pub query_prompt: Option<String>,
    /// Prefix for passages (e5's `"passage: "`). Default: the folder's `prompts["document"]`
    /// (or `prompts["passage"]`).
    pub document_prompt: Option<String>,
    /// Precision of the model's linear layers. Default [`Precision::F32`] (PyTorch
    /// parity); see [`Precision::Bf16`].
    pub precision: Precision,
    /// Padded tokens (texts × longest text) per forward pass of the library's own planning
    /// ([`crate::batch::plan`]). Default [`DEFAULT_MAX_BATCH_TOKENS`] (16,384).
    /// [`Embedder::embed_batch`] ignores it.
    pub max_batch_tokens: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            max_length: None,
            batch_size: 32,
            query_prompt: None,
            document_prompt: None,
            precision: Precision::F32,
            max_batch_tokens: DEFAULT_MAX_BATCH_TOKENS,
        }
    }
}

/// What was loaded.
#[derive(Debug, Clone, Serialize)]
pub struct EmbedderInfo {
    pub path: PathBuf,
    pub architecture: String,
    /// Embedding dimensions (`hidden_size`).
    pub dims: usize,
    /// Effective max sequence length in tokens (special tokens included).
    pub max_length: usize,
    pub pooling: Pooling,
    pub include_prompt: bool,
    /// Whether embeddings are L2-normalised (`2_Normalize` in modules.json).
    pub normalize: bool,
    pub query_prompt: String,
    pub document_prompt: String,
    pub stored_dtype: String,
    /// Dtype the engine computes in ([`Precision::compute_dtype`] of the load option).
    pub compute_dtype: String,
}

/// A sentence-transformers bi-encoder.
pub struct Embedder {
    model: Box<dyn TokenEncoder>,
    tokenizer: TextTokenizer,
    info: EmbedderInfo,
    batch_size: usize,
    max_batch_tokens: usize,
    fingerprint: OnceLock<String>,
}

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize, Default)]
struct StEmbedderConfig {
    #[serde(default)]
    prompts: HashMap<String, String>,
}

impl Embedder {
    /// Loads a bi-encoder from a local folder: a sentence-transformers folder, or a bare
    /// model of a registry architecture (mean pooling, no normalisation, as
    /// sentence-transformers would build).
    ///
    /// Errors: missing / malformed files and tensors (naming them), unsupported pooling modes,
    /// `max_length` beyond the position table.
    pub fn from_dir(path: impl AsRef<Path>, options: EmbedderOptions) -> Result<Self> {
        let dir = path.as_ref();
        require_dir(dir)?;
        let config = ModelConfig::from_file(&dir.join("config.json"))?;
        let loader = registry::encoder_loader(&config)?;
        let side = SideConfig::read(dir)?;
        let modules: Option<Vec<ModuleEntry>> = read_optional_json(dir, "modules.json")?;
        let modules = modules.unwrap_or_default();
        let pooling_path = modules
            .iter()
            .find(|m| m.kind.ends_with("Pooling"))
            .map(|m| m.path.clone())
            .unwrap_or_else(|| "1_Pooling".into());
        let pooling = PoolingConfig::read(dir, &pooling_path)?;
        let normalize = modules.iter().any(|m| m.kind.ends_with("Normalize"));
        let st: StEmbedderConfig =
            read_optional_json(dir, "config_sentence_transformers.json")?.unwrap_or_default();
        let tokenizer = TextTokenizer::from_file(&dir.join("tokenizer.json"))?;
        let ctx = LoadContext::new(&config, dir, options.precision);
        let Loaded { model, meta } = loader(&ctx)?;
        let weights = ctx.weights()?;
        let max_length = effective_max_length(&side, meta.max_positions, options.max_length)?;
        tokenizer.encode_texts(&[""], max_length)?;
        let prompt = |key: &[&str]| -> String {
            key.iter()
                .find_map(|k| st.prompts.get(*k).cloned())
                .unwrap_or_default()
        };
        let info = EmbedderInfo {
            path: dir.to_path_buf(),
            architecture: config.name(),
            dims: model.hidden_size(),
            max_length,
            pooling: pooling.pooling,
            include_prompt: pooling.include_prompt,
            normalize,
            query_prompt: options.query_prompt.unwrap_or_else(|| prompt(&["query"])),
            document_prompt: options
                .document_prompt
                .unwrap_or_else(|| prompt(&["document", "passage"])),
            stored_dtype: weights
                .stored_dtype
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            compute_dtype: options.precision.compute_dtype().into(),
        };
        Ok(Embedder {
            model,
            tokenizer,
            info,
            batch_size: options.batch_size.max(1),
            max_batch_tokens: options.max_batch_tokens.max(1),
            fingerprint: OnceLock::new(),
        })
    }

    /// Dimensions, pooling, normalisation, prompts and lengths of the loaded model.
    pub fn info(&self) -> &EmbedderInfo {
        &self.info
    }

    /// The model's tokenizer (e.g. to count tokens when chunking).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Tokens of `text` without special tokens (for chunk sizing).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .inner()
            .encode(text, false)
            .map(|e| e.len())
            .unwrap_or(0)
    }

    /// Embeds a query with the query prompt. Returns `[dims]` f32.
    pub fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        Ok(self
            .embed_with_prompt(&[query], &self.info.query_prompt)?
            .remove(0))
    }

    /// Embeds passages with the document prompt. Returns `[n][dims]` f32, in input order.
    pub fn embed_documents(&self, documents: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_prompt(documents, &self.info.document_prompt)
    }

    /// Embeds texts as given (no prompt). Returns `[n][dims]` f32, in input order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with_prompt(texts, "")
    }

    /// Embeds texts prefixed with `prompt`, as `SentenceTransformer.encode(texts, prompt=…)`.
    pub fn embed_with_prompt(&self, texts: &[&str], prompt: &str) -> Result<Vec<Vec<f32>>> {
        let prefixed: Vec<String>;
        let inputs: Vec<&str> = if prompt.is_empty() {
            texts.to_vec()
        } else {
            prefixed = texts.iter().map(|t| format!("{prompt}{t}")).collect();
            prefixed.iter().map(String::as_str).collect()
        };
        let encoded = self.tokenizer.encode_texts(&inputs, self.info.max_length)?;
        // Tokens of the prompt that pooling skips when include_prompt is false
        // (sentence-transformers: the prompt's length with special tokens, minus the last one).
        let skip = if prompt.is_empty() || self.info.include_prompt {
            0
        } else {
            self.tokenizer
                .encode_texts(&[prompt], self.info.max_length)?[0]
                .input_ids
                .len()
                .saturating_sub(1)
        };
        self.embed_encoded(&encoded, skip)
    }

    /// Embeds already tokenized texts in length-sorted batches of at most `batch_size`
    /// texts and `max_batch_tokens` padded tokens (load options, [`crate::batch::plan`]);
    /// `skip_prefix` leading tokens of each text are left out of pooling. Returns
    /// `[n][dims]` f32 in input order; a text's embedding does not depend on its batch.
    ///
    /// Errors: [`EngineError::InvalidArgument`] for an input without tokens or with an id
    /// outside the model's tables.
    pub fn embed_encoded(&self, encoded: &[Encoded], skip_prefix: usize) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = encoded.iter().map(|e| e.input_ids.len()).collect();
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
        for group in batch::plan(&lengths, self.batch_size, self.max_batch_tokens) {
            let items: Vec<&Encoded> = group.iter().map(|&i| &encoded[i]).collect();
            for (&i, v) in group.iter().zip(self.forward(&items, skip_prefix)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Embeds exactly this batch in one forward pass: no re-planning, no token cap (the
    /// caller decided the batch). `skip_prefix` as [`Embedder::embed_encoded`], whose bits it
    /// gives each text. Returns `[batch.len()][dims]` f32, in order.
    ///
    /// Errors: as [`Embedder::embed_encoded`].
    pub fn embed_batch(&self, batch: &[Encoded], skip_prefix: usize) -> Result<Vec<Vec<f32>>> {
        let items: Vec<&Encoded> = batch.iter().collect();
        self.forward(&items, skip_prefix)
    }

    /// One forward pass over `items` as one ragged batch, then pooling (and normalisation).
    fn forward(&self, items: &[&Encoded], skip_prefix: usize) -> Result<Vec<Vec<f32>>> {
        let dims = self.info.dims;
        let batch = Batch::from_encoded(items.iter().copied())?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Only the rows the pooling reads: the first token for CLS, the last for last-token
        // pooling (unless a skipped prefix covers a whole text: pooling then falls back to
        // row 0, which needs every row).
        let min_len = batch.seqs().map(|r| r.len()).min().unwrap_or(0);
        let rows = match self.info.pooling {
            Pooling::Cls => TokenSelection::First,
            Pooling::LastToken if skip_prefix < min_len => TokenSelection::Last,
            _ => TokenSelection::All,
        };
        let hidden = self.model.hidden_states(&batch, rows)?;
        let mut out = Vec::with_capacity(batch.len());
        for (i, r) in batch.seqs().enumerate() {
            let mut v = match rows {
                TokenSelection::All => {
                    let mut mask = vec![1u8; r.len()];
                    mask.iter_mut().take(skip_prefix).for_each(|m| *m = 0);
                    let h = &hidden[r.start * dims..r.end * dims];
                    pooling::pool(self.info.pooling, h, &mask, dims)
                }
                _ => hidden[i * dims..(i + 1) * dims].to_vec(),
            };
            if self.info.normalize {
                pooling::normalize(&mut v);
            }
            out.push(v);
        }
        Ok(out)
    }

    /// A stable identity of the model's numbers (config, pooling, tokenizer, sampled weight
    /// bytes), hex SHA-256. Two paths to the same model give the same fingerprint; an index
    /// built with one embedder refuses another. Computed once, on first use.
    pub fn fingerprint(&self) -> Result<String> {
        if let Some(f) = self.fingerprint.get() {
            return Ok(f.clone());
        }
        let f = fingerprint_dir(&self.info.path)?;
        Ok(self.fingerprint.get_or_init(|| f).clone())
    }
}

/// Hashes the small files whole and each weights file by its length, first 1 MiB (the
/// safetensors header and first tensors) and 16 evenly spaced 64 KiB samples.
pub(crate) fn fingerprint_dir(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for name in [
        "config.json",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ] {
        let p = dir.join(name);
        if let Ok(bytes) = std::fs::read(&p) {
            h.update(name.as_bytes());
            h.update(&bytes);
        }
    }
    let mut weight_files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::bad_file(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "safetensors" || x == "bin")
        })
        .collect();
    weight_files.sort();
    for p in weight_files {
        let mut f = std::fs::File::open(&p).map_err(|e| EngineError::bad_file(&p, e))?;
        let len = f
            .metadata()
            .map_err(|e| EngineError::bad_file(&p, e))?
            .len();
        h.update(len.to_le_bytes());
        let mut buf = vec![0u8; 1 << 20];
        let mut sample = |offset: u64, size: usize, h: &mut Sha256| -> Result<()> {
            f.seek(SeekFrom::Start(offset))
                .map_err(|e| EngineError::bad_file(&p, e))?;
            let n = (&mut f)
                .take(size as u64)
                .read(&mut buf[..size])
                .map_err(|e| EngineError::bad_file(&p, e))?;
            h.update(&buf[..n]);
            Ok(())
        };
        sample(0, 1 << 20, &mut h)?;
        for k in 0..16u64 {
            sample(len / 16 * k, 64 << 10, &mut h)?;
        }
    }
    Ok(format!("{:x}", h.finalize()))
}
