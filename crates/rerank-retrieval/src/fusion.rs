//! Score fusion after reranking: combine each candidate's first-stage rank or score with the
//! cross-encoder's, instead of replacing the first stage's order (`--fusion`, `/search`'s
//! `fusion`, [`CrossEncoderReranker::fusion`](crate::CrossEncoderReranker::fusion)).
//!
//! The fused list is over the reranked candidates only (the first stage's `top_k`, or in
//! `rerank eval` its first `--rerank-depth`). For candidate `d`, with `rank_first(d)` its 1-based
//! first-stage rank and `rank_rerank(d)` its 1-based rank by the reranker's logit (descending,
//! ties by first-stage rank — the order [`rerank_engine::score::rank`] gives):
//!
//! - [`Fusion::None`]: the reranker's order, its scores untouched (today's behaviour).
//! - [`Fusion::Rrf`]: reciprocal-rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009; the rank
//!   formula of Elasticsearch's `rrf` retriever and LangChain's `EnsembleRetriever`),
//!   `score(d) = 1/(k + rank_first(d)) + 1/(k + rank_rerank(d))` with `k` = [`RRF_K`] = 60.
//! - [`Fusion::Linear`]: `score(d) = alpha·minmax(logit)(d) + (1 − alpha)·minmax(first)(d)`,
//!   a weighted sum of min-max normalised scores as Elasticsearch's `linear` retriever with the
//!   `minmax` normalizer: `minmax(x)(d) = (x(d) − min x) / (max x − min x)` over the candidate
//!   list, and 1 for every candidate when `max x = min x`. `logit` is the reranker's ordering
//!   logit ([`rerank_engine::Prediction::rank_logit`]), `first` the first stage's score
//!   (cosine for dense, BM25 score, RRF score for hybrid). `alpha` = 1 is the reranker's
//!   order, `alpha` = 0 the first stage's.
//!
//! Scores are computed in f64. The fused order is by fused score (descending), ties by
//! `rank_rerank` (so by logit, then by first-stage rank): deterministic.

use std::fmt;
use std::str::FromStr;

use crate::error::{Result, RetrievalError};

/// The RRF constant `k` of [`Fusion::Rrf`] (60, as Cormack et al. and Elasticsearch's default
/// `rank_constant`).
pub const RRF_K: f64 = 60.0;

/// How the first stage's and the reranker's results are combined; see the
/// [module documentation](self) for the formulas. Parsed from `none`, `rrf` or
/// `linear:ALPHA` ([`FromStr`]); printed the same way ([`fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Fusion {
    /// The reranker's order and scores alone (the default).
    #[default]
    None,
    /// Reciprocal-rank fusion of the two ranks, `k` = [`RRF_K`].
    Rrf,
    /// `alpha·minmax(rerank logit) + (1 − alpha)·minmax(first-stage score)`, with
    /// 0 ≤ `alpha` ≤ 1.
    Linear {
        /// Weight of the reranker, in `[0, 1]`.
        alpha: f64,
    },
}

impl Fusion {
    /// Whether this is [`Fusion::None`] (no fused score is written).
    pub fn is_none(&self) -> bool {
        matches!(self, Fusion::None)
    }

    /// A linear fusion; errors ([`RetrievalError::InvalidArgument`]) unless `alpha` is finite
    /// and in `[0, 1]`.
    pub fn linear(alpha: f64) -> Result<Self> {
        if alpha.is_finite() && (0.0..=1.0).contains(&alpha) {
            Ok(Fusion::Linear { alpha })
        } else {
            Err(RetrievalError::InvalidArgument(format!(
                "the alpha of linear fusion must be a finite number from 0 to 1, got {alpha}"
            )))
        }
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fusion::None => f.write_str("none"),
            Fusion::Rrf => f.write_str("rrf"),
            Fusion::Linear { alpha } => write!(f, "linear:{alpha}"),
        }
    }
}

impl FromStr for Fusion {
    type Err = RetrievalError;

    /// Parses `none`, `rrf` or `linear:ALPHA` (ALPHA a finite decimal from 0 to 1).
    /// Errors: [`RetrievalError::InvalidArgument`] naming the accepted forms.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Fusion::None),
            "rrf" => Ok(Fusion::Rrf),
            _ => match s.strip_prefix("linear:") {
                Some(a) => {
                    let alpha: f64 = a.trim().parse().map_err(|_| {
                        RetrievalError::InvalidArgument(format!(
                            "the alpha of linear fusion must be a number from 0 to 1, got {a:?}"
                        ))
                    })?;
                    Fusion::linear(alpha)
                }
                None => Err(RetrievalError::InvalidArgument(format!(
                    "fusion must be \"none\", \"rrf\" or \"linear:ALPHA\" (0 ≤ ALPHA ≤ 1), got {s:?}"
                ))),
            },
        }
    }
}

/// One candidate of a fused list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// The candidate's position in the first stage's list (0-based: first-stage rank − 1).
    pub index: usize,
    /// Its 1-based rank by the reranker's logit alone.
    pub rerank_rank: usize,
    /// The fused score (for [`Fusion::None`], the logit).
    pub score: f64,
}

fn minmax(values: &[f64]) -> Vec<f64> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    values
        .iter()
        .map(|&v| if hi > lo { (v - lo) / (hi - lo) } else { 1.0 })
        .collect()
}

/// Fuses one query's candidates. `first_stage_scores[i]` and `rerank_logits[i]` belong to the
/// candidate at first-stage rank `i + 1`. Returns every candidate once, best first (see the
/// [module documentation](self) for formulas and ties).
///
/// Errors: [`RetrievalError::InvalidArgument`] when the two slices differ in length or hold
/// a NaN or infinite value.
pub fn fuse(
    fusion: Fusion,
    first_stage_scores: &[f32],
    rerank_logits: &[f32],
) -> Result<Vec<Fused>> {
    if first_stage_scores.len() != rerank_logits.len() {
        return Err(RetrievalError::InvalidArgument(format!(
            "fusion needs one first-stage score per reranker logit, got {} and {}",
            first_stage_scores.len(),
            rerank_logits.len()
        )));
    }
    if let Some(bad) = first_stage_scores
        .iter()
        .chain(rerank_logits)
        .find(|v| !v.is_finite())
    {
        return Err(RetrievalError::InvalidArgument(format!(
            "fusion needs finite scores, got {bad}"
        )));
    }
    let n = rerank_logits.len();
    let mut by_logit: Vec<usize> = (0..n).collect();
    by_logit.sort_by(|&a, &b| {
        rerank_logits[b]
            .total_cmp(&rerank_logits[a])
            .then(a.cmp(&b))
    });
    let mut rerank_rank = vec![0usize; n];
    for (r, &i) in by_logit.iter().enumerate() {
        rerank_rank[i] = r + 1;
    }
    let scores: Vec<f64> = match fusion {
        Fusion::None => rerank_logits.iter().map(|&l| f64::from(l)).collect(),
        Fusion::Rrf => (0..n)
            .map(|i| 1.0 / (RRF_K + (i + 1) as f64) + 1.0 / (RRF_K + rerank_rank[i] as f64))
            .collect(),
        Fusion::Linear { alpha } => {
            let logits: Vec<f64> = rerank_logits.iter().map(|&l| f64::from(l)).collect();
            let first: Vec<f64> = first_stage_scores.iter().map(|&s| f64::from(s)).collect();
            let (l, f) = (minmax(&logits), minmax(&first));
            (0..n)
                .map(|i| alpha * l[i] + (1.0 - alpha) * f[i])
                .collect()
        }
    };
    let mut out: Vec<Fused> = (0..n)
        .map(|i| Fused {
            index: i,
            rerank_rank: rerank_rank[i],
            score: scores[i],
        })
        .collect();
    // Scores are finite: total_cmp is the numeric order.
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.rerank_rank.cmp(&b.rerank_rank))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!("none".parse::<Fusion>().unwrap(), Fusion::None);
        assert_eq!("rrf".parse::<Fusion>().unwrap(), Fusion::Rrf);
        assert_eq!(
            "linear:0.3".parse::<Fusion>().unwrap(),
            Fusion::Linear { alpha: 0.3 }
        );
        for ok in ["none", "rrf", "linear:0", "linear:1", "linear:0.7"] {
            assert_eq!(ok.parse::<Fusion>().unwrap().to_string(), ok);
        }
        for bad in [
            "",
            "RRF",
            "linear",
            "linear:",
            "linear:x",
            "linear:1.5",
            "linear:-0.1",
            "linear:nan",
            "linear:inf",
            "max",
        ] {
            let err = bad.parse::<Fusion>().unwrap_err().to_string();
            assert!(
                err.contains("fusion") && (err.contains("0 to 1") || err.contains("linear:ALPHA")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn errors_on_mismatch_and_non_finite() {
        assert!(fuse(Fusion::Rrf, &[1.0], &[1.0, 2.0]).is_err());
        assert!(fuse(Fusion::Rrf, &[1.0, f32::NAN], &[1.0, 2.0]).is_err());
        assert!(fuse(Fusion::None, &[1.0, 2.0], &[f32::INFINITY, 2.0]).is_err());
        assert!(fuse(Fusion::Rrf, &[], &[]).unwrap().is_empty());
    }
}
