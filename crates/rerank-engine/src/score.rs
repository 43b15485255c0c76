//! From logits to scores and rankings.
//!
//! - 1 label: `score = sigmoid(logit)` computed on the f32 logit (what TEI, FlagReranker
//!   `normalize=True` and sentence-transformers' default CrossEncoder activation return).
//! - 2 labels: `score = softmax(logits)[1]` (the label LangChain's `HuggingFaceCrossEncoder` takes).
//!
//! Ordering always uses the raw logit (for 2 labels `logits[1] - logits[0]`, which orders like
//! the score) because sigmoid saturates at 1.0 in f32; ties go to the lower input index.
//! A NaN / infinite logit is an error for the request, never a panic in a sort.

use serde::Serialize;

use crate::error::{EngineError, Result};

/// Output for one `(query, document)` pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Raw classifier output, `[num_labels]` f32.
    pub logits: Vec<f32>,
    /// Relevance score in `[0, 1]`: sigmoid of the logit (1 label) or `softmax(logits)[1]` (2 labels).
    pub score: f32,
}

impl Prediction {
    /// Builds the prediction of one pair from its logits (length 1 or 2).
    pub fn from_logits(logits: Vec<f32>) -> Self {
        let score = match logits.as_slice() {
            [l] => sigmoid(*l),
            [l0, l1] => {
                let m = l0.max(*l1);
                let (e0, e1) = ((l0 - m).exp(), (l1 - m).exp());
                e1 / (e0 + e1)
            }
            _ => f32::NAN,
        };
        Prediction { logits, score }
    }

    /// The value documents are ordered by: the logit (1 label) or `logits[1] - logits[0]`.
    pub fn rank_logit(&self) -> f32 {
        match self.logits.as_slice() {
            [l] => *l,
            [l0, l1] => l1 - l0,
            _ => f32::NAN,
        }
    }
}

/// `1 / (1 + e^-x)` in f32, as `torch.sigmoid`.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// One entry of a ranking, like sentence-transformers `CrossEncoder.rank`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedDocument {
    /// Position of the document in the caller's list.
    pub index: usize,
    /// Relevance score (see [`Prediction::score`]).
    pub score: f32,
    /// The ordering logit (see [`Prediction::rank_logit`]).
    pub logit: f32,
    /// Raw classifier output, `[num_labels]`.
    pub logits: Vec<f32>,
}

/// Orders predictions by descending rank logit, ties by ascending index, and keeps `top_n`.
///
/// Errors: [`EngineError::InvalidArgument`] for `top_n == 0`;
/// [`EngineError::NonFiniteLogit`] when any logit is NaN or infinite.
pub fn rank(predictions: Vec<Prediction>, top_n: usize) -> Result<Vec<RankedDocument>> {
    if top_n == 0 {
        return Err(EngineError::InvalidArgument(
            "top_n must be at least 1".into(),
        ));
    }
    let mut ranked = Vec::with_capacity(predictions.len());
    for (index, p) in predictions.into_iter().enumerate() {
        if let Some(&bad) = p.logits.iter().find(|l| !l.is_finite()) {
            return Err(EngineError::NonFiniteLogit { index, value: bad });
        }
        ranked.push(RankedDocument {
            index,
            score: p.score,
            logit: p.rank_logit(),
            logits: p.logits,
        });
    }
    // All keys are finite here, so total_cmp is the numeric order.
    ranked.sort_by(|a, b| b.logit.total_cmp(&a.logit).then(a.index.cmp(&b.index)));
    ranked.truncate(top_n);
    Ok(ranked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(l: f32) -> Prediction {
        Prediction::from_logits(vec![l])
    }

    #[test]
    fn nan_logit_does_not_panic_tei_91() {
        let err = rank(vec![p(1.0), p(f32::NAN), p(0.5)], 3).unwrap_err();
        assert!(
            matches!(err, EngineError::NonFiniteLogit { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn saturated_sigmoid_still_orders_by_logit() {
        // sigmoid(20) and sigmoid(30) are both exactly 1.0 in f32.
        let r = rank(vec![p(20.0), p(30.0)], 2).unwrap();
        assert_eq!(r[0].score, r[1].score);
        assert_eq!(r.iter().map(|d| d.index).collect::<Vec<_>>(), vec![1, 0]);
    }

    #[test]
    fn ties_go_to_lower_index() {
        let r = rank(vec![p(0.1), p(0.3), p(0.3), p(0.2)], 4).unwrap();
        assert_eq!(
            r.iter().map(|d| d.index).collect::<Vec<_>>(),
            vec![1, 2, 3, 0]
        );
    }

    #[test]
    fn top_n_zero_is_an_error_and_large_top_n_returns_all() {
        assert!(rank(vec![p(0.1)], 0).is_err());
        assert_eq!(rank(vec![p(0.1), p(0.2)], 10).unwrap().len(), 2);
        assert!(rank(vec![], 3).unwrap().is_empty());
    }

    #[test]
    fn two_label_score_is_softmax_of_label_one() {
        let pr = Prediction::from_logits(vec![0.0, 0.0]);
        assert!((pr.score - 0.5).abs() < 1e-7);
        let pr = Prediction::from_logits(vec![-1.0, 1.0]);
        assert!((pr.score - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
        assert_eq!(pr.rank_logit(), 2.0);
    }
}
