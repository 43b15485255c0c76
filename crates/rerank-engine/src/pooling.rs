//! sentence-transformers pooling (`1_Pooling/config.json`) and normalisation (`2_Normalize`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::st_config::read_optional_json;

/// How token embeddings become one sentence embedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over attended tokens (`pooling_mode_mean_tokens`).
    Mean,
    /// The first token (`[CLS]` / `<s>`).
    Cls,
    /// Per-dimension max over attended tokens.
    Max,
    /// The last attended token (`lasttoken`).
    LastToken,
}

/// The pooling module of a sentence-transformers folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PoolingConfig {
    pub pooling: Pooling,
    /// Whether prompt tokens take part in pooling (`include_prompt`, default true).
    pub include_prompt: bool,
}

#[derive(Deserialize)]
struct RawPooling {
    #[serde(default)]
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default = "yes")]
    include_prompt: bool,
}

fn yes() -> bool {
    true
}

impl PoolingConfig {
    /// Reads `{dir}/{pooling_path}/config.json` in either the classic
    /// (`pooling_mode_mean_tokens: true`) or the sentence-transformers 6 (`"pooling_mode": "mean"`)
    /// form. A missing file means mean pooling (what sentence-transformers builds by default).
    ///
    /// Errors: [`EngineError::BadFile`] for malformed JSON; [`EngineError::UnsupportedArchitecture`]
    /// for pooling modes this engine does not implement (mean_sqrt_len, weightedmean, or several
    /// modes concatenated).
    pub fn read(dir: &Path, pooling_path: &str) -> Result<Self> {
        let sub = dir.join(pooling_path);
        let Some(raw) = read_optional_json::<RawPooling>(&sub, "config.json")? else {
            return Ok(PoolingConfig {
                pooling: Pooling::Mean,
                include_prompt: true,
            });
        };
        let path = sub.join("config.json");
        let unsupported = |what: String| EngineError::UnsupportedArchitecture {
            path: path.clone(),
            architecture: what,
            supported: "mean, cls, max or lasttoken pooling (one mode)".into(),
        };
        let pooling = if let Some(mode) = raw.pooling_mode.as_deref() {
            match mode {
                "mean" => Pooling::Mean,
                "cls" => Pooling::Cls,
                "max" => Pooling::Max,
                "lasttoken" => Pooling::LastToken,
                other => return Err(unsupported(format!("pooling_mode {other:?}"))),
            }
        } else {
            let modes = [
                (
                    raw.pooling_mode_mean_tokens,
                    Some(Pooling::Mean),
                    "mean_tokens",
                ),
                (raw.pooling_mode_cls_token, Some(Pooling::Cls), "cls_token"),
                (
                    raw.pooling_mode_max_tokens,
                    Some(Pooling::Max),
                    "max_tokens",
                ),
                (
                    raw.pooling_mode_lasttoken,
                    Some(Pooling::LastToken),
                    "lasttoken",
                ),
                (
                    raw.pooling_mode_mean_sqrt_len_tokens,
                    None,
                    "mean_sqrt_len_tokens",
                ),
                (
                    raw.pooling_mode_weightedmean_tokens,
                    None,
                    "weightedmean_tokens",
                ),
            ];
            let on: Vec<_> = modes.iter().filter(|m| m.0).collect();
            match on.as_slice() {
                [] => Pooling::Mean,
                [(_, Some(p), _)] => *p,
                [(_, None, name)] => return Err(unsupported(format!("pooling_mode_{name}"))),
                _ => {
                    let names: Vec<_> = on.iter().map(|m| m.2).collect();
                    return Err(unsupported(format!("several pooling modes {names:?}")));
                }
            }
        };
        Ok(PoolingConfig {
            pooling,
            include_prompt: raw.include_prompt,
        })
    }
}

/// Pools one sequence. `hidden`: `[seq_len, dims]` row-major; `mask`: `[seq_len]` 1 for tokens
/// that take part. Returns `[dims]`. Mirrors sentence-transformers' `Pooling.forward`.
pub fn pool(pooling: Pooling, hidden: &[f32], mask: &[u8], dims: usize) -> Vec<f32> {
    let rows = || {
        hidden
            .chunks_exact(dims)
            .zip(mask)
            .filter(|(_, &m)| m != 0)
            .map(|(r, _)| r)
    };
    match pooling {
        Pooling::Cls => hidden[..dims].to_vec(),
        Pooling::Mean => {
            let mut sum = vec![0f32; dims];
            let mut n = 0f32;
            for row in rows() {
                sum.iter_mut().zip(row).for_each(|(s, v)| *s += v);
                n += 1.0;
            }
            let n = n.max(1e-9);
            sum.iter_mut().for_each(|s| *s /= n);
            sum
        }
        Pooling::Max => {
            // sentence-transformers sets masked positions to -1e9 before the max.
            let mut max = vec![-1e9f32; dims];
            for row in rows() {
                max.iter_mut().zip(row).for_each(|(m, v)| *m = m.max(*v));
            }
            max
        }
        Pooling::LastToken => {
            let last = mask.iter().rposition(|&m| m != 0).unwrap_or(0);
            hidden[last * dims..(last + 1) * dims].to_vec()
        }
    }
}

/// L2 normalisation as `torch.nn.functional.normalize(x, p=2, eps=1e-12)`.
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}
