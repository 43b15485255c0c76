//! How a forward pass over a ragged batch uses the cores: with many sequences, one
//! single-threaded task per group of consecutive sequences runs every layer (no barrier
//! between layers, a group's activations stay in its core's cache); otherwise the whole batch
//! goes through each layer with parallel kernels. Sequences never interact, and the kernels
//! give the same bits serial or parallel, so both give the same result.
//!
//! Any model whose layers only mix tokens within a sequence (every encoder and decoder here)
//! can use [`for_each_group`].

use std::ops::Range;

use rayon::prelude::*;
use rerank_kernels::linear::MAX_ROW_BLOCK;
use rerank_kernels::Parallelism;

/// Sequences per thread from which [`for_each_group`] runs one task per group.
pub(crate) const SEQS_PER_THREAD: usize = 4;

/// Rows a group aims at: consecutive short sequences share a task (and so each product)
/// until they reach this many rows, so that the GEMM's partial row panels and the streaming
/// of each weight matrix are paid once per group instead of once per sequence. Two kernel row
/// blocks.
pub(crate) const GROUP_ROWS: usize = 2 * MAX_ROW_BLOCK;

/// Runs `f(rows, seqs, par)` over `x` (`[tokens, width]`, the tokens of sequences `seqs` in
/// order, contiguous from row 0): as one call on the whole batch with
/// [`Parallelism::Parallel`], or — with at least [`SEQS_PER_THREAD`] sequences per thread —
/// as one [`Parallelism::Serial`] call per group of consecutive sequences on rayon's pool,
/// each given its rows of `x` and its sequences relative to its first row. Returns the calls'
/// results in sequence order.
pub(crate) fn for_each_group<R: Send>(
    x: &mut [f32],
    width: usize,
    seqs: &[Range<usize>],
    f: impl Fn(&mut [f32], &[Range<usize>], Parallelism) -> R + Sync,
) -> Vec<R> {
    let threads = rayon::current_num_threads();
    if threads <= 1 || seqs.len() < SEQS_PER_THREAD * threads {
        return vec![f(x, seqs, Parallelism::Parallel)];
    }
    let groups = group_seqs(seqs, SEQS_PER_THREAD * threads, GROUP_ROWS);
    let mut parts: Vec<(&mut [f32], Vec<Range<usize>>)> = Vec::with_capacity(groups.len());
    let mut rest: &mut [f32] = x;
    let mut row = 0;
    for group in groups {
        let first_row = row;
        let mut local = Vec::with_capacity(group.len());
        for s in &seqs[group] {
            assert_eq!(s.start, row, "sequences must be contiguous");
            row = s.end;
            local.push(s.start - first_row..s.end - first_row);
        }
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut((row - first_row) * width);
        rest = tail;
        parts.push((mine, local));
    }
    parts
        .into_par_iter()
        .map(|(xs, local)| f(xs, &local, Parallelism::Serial))
        .collect()
}

/// Rows per block of a layer's row-blocked tail (attention output, residual, norm and MLP,
/// each block's intermediate activations kept in its thread's cache): with `par` parallel,
/// about two blocks per thread, a multiple of the GEMM's row tile, at most
/// [`MAX_ROW_BLOCK`]; serial, [`MAX_ROW_BLOCK`].
pub(crate) fn row_block(rows: usize, par: Parallelism) -> usize {
    if !par.is_parallel() {
        return MAX_ROW_BLOCK;
    }
    let threads = rayon::current_num_threads();
    let mr = rerank_kernels::linear::row_tile();
    rows.div_ceil(2 * threads)
        .div_ceil(mr)
        .saturating_mul(mr)
        .clamp(mr, MAX_ROW_BLOCK)
}

/// Cuts `seqs` into runs of consecutive sequences, each closed once it holds `target_rows`
/// rows (lowered to `1/min_groups` of all rows when that is smaller), and always keeping at
/// least `min_groups` runs when there are that many sequences (each run is one parallel
/// task). Returns index ranges.
fn group_seqs(seqs: &[Range<usize>], min_groups: usize, target_rows: usize) -> Vec<Range<usize>> {
    let total: usize = seqs.iter().map(|s| s.len()).sum();
    let target = target_rows.min(total / min_groups.max(1)).max(1);
    let mut groups = Vec::new();
    let need = min_groups.min(seqs.len());
    let (mut start, mut rows) = (0, 0);
    for (i, s) in seqs.iter().enumerate() {
        rows += s.len();
        // Extending this run to the next sequence would leave too few sequences for `need`.
        let must_close = groups.len() + (seqs.len() - i - 1) < need;
        if rows >= target || must_close {
            groups.push(start..i + 1);
            (start, rows) = (i + 1, 0);
        }
    }
    if start < seqs.len() {
        groups.push(start..seqs.len());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(lens: &[usize]) -> Vec<Range<usize>> {
        let mut start = 0;
        lens.iter()
            .map(|&l| {
                start += l;
                start - l..start
            })
            .collect()
    }

    #[test]
    fn groups_cover_every_sequence_once_and_keep_enough_tasks() {
        let s = seqs(&[200, 150, 150, 100, 90, 80, 70, 60, 50, 40]);
        // Target 336 rows, but at least 4 groups of the 990 rows: target 247.
        let g = group_seqs(&s, 4, 336);
        assert_eq!(g, vec![0..2, 2..4, 4..8, 8..10]);
        // A sequence is never split, and asking for as many groups as sequences keeps each
        // alone even when the row target would merge them.
        assert_eq!(group_seqs(&s[..3], 3, 336), vec![0..1, 1..2, 2..3]);
        let g = group_seqs(&s, 1, 10_000);
        assert_eq!(g, vec![0..10]);
    }

    #[test]
    fn groups_get_their_own_rows() {
        let s = seqs(&[3, 1, 2, 2, 1, 1, 4, 2, 3, 1]);
        let total = 20;
        let mut x: Vec<f32> = (0..total * 2).map(|v| v as f32).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let firsts = pool.install(|| {
            for_each_group(&mut x, 2, &s, |rows, local, par| {
                assert_eq!(par, Parallelism::Serial);
                assert_eq!(local.last().unwrap().end * 2, rows.len());
                let first = rows[0];
                rows.iter_mut().for_each(|v| *v += 1000.0);
                (first, local.len())
            })
        });
        assert_eq!(firsts.iter().map(|f| f.1).sum::<usize>(), s.len());
        assert_eq!(firsts[0].0, 0.0);
        assert!(x.iter().enumerate().all(|(i, &v)| v == i as f32 + 1000.0));
    }
}
