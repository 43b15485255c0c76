//! Vector checks and arithmetic: validation, L2 normalisation, dot products and exact top-k.
//!
//! Vectors are `f32` rows of the index's `dims`; stored vectors are L2-normalised, so the dot
//! product of two of them is their cosine similarity in `[-1, 1]`.

use std::cmp::Ordering;

use crate::{Result, RetrievalError};

/// A norm this close to 1 is treated as already normalised (the vector is kept bit for bit).
const UNIT_TOLERANCE: f32 = 1e-3;

/// Checks that `v` has `dims` finite components; `what` names it in the error.
///
/// Errors: `InvalidArgument` on another length or a NaN/infinite component.
pub fn check(v: &[f32], dims: usize, what: impl FnOnce() -> String) -> Result<()> {
    if v.len() != dims {
        return Err(RetrievalError::InvalidArgument(format!(
            "{} has {} dimensions, the index has {dims}",
            what(),
            v.len()
        )));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(RetrievalError::InvalidArgument(format!(
            "{} contains NaN or infinity",
            what()
        )));
    }
    Ok(())
}

/// L2-normalises `v` in place unless its norm is already 1 (± 1e-3) or 0 (a zero vector stays
/// zero: similarity 0 to everything).
pub fn normalize(v: &mut [f32]) {
    let norm = dot(v, v).sqrt();
    if norm > 0.0 && (norm - 1.0).abs() > UNIT_TOLERANCE {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product of two equally long slices.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise without `-ffast-math`.
    let mut acc = [0.0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Orders `(ordinal, score)` best first: higher score, then lower ordinal.
pub fn by_score_desc(a: &(usize, f32), b: &(usize, f32)) -> Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// Exact top-`k` by dot product of `query` with every row of `rows` (row-major, `dims` wide).
/// Returns `(row, score)` best first; ties go to the lower row.
pub fn exact_top_k(rows: &[f32], dims: usize, query: &[f32], k: usize) -> Vec<(usize, f32)> {
    if k == 0 || rows.is_empty() {
        return Vec::new();
    }
    let mut scored: Vec<(usize, f32)> = rows
        .chunks_exact(dims)
        .map(|row| dot(row, query))
        .enumerate()
        .collect();
    if k < scored.len() {
        scored.select_nth_unstable_by(k - 1, by_score_desc);
        scored.truncate(k);
    }
    scored.sort_unstable_by(by_score_desc);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn normalize_scales_to_unit_and_keeps_zero() {
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let mut z = vec![0.0; 3];
        normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }

    #[test]
    fn exact_top_k_orders_and_truncates() {
        let rows = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let top = exact_top_k(&rows, 2, &[1.0, 0.0], 2);
        assert_eq!(top.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(exact_top_k(&rows, 2, &[1.0, 0.0], 10).len(), 3);
    }
}
