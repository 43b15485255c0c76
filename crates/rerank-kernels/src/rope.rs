//! Rotary position embedding (RoPE) in the rotate-half convention of transformers'
//! `apply_rotary_pos_emb` (Llama, Qwen3, ModernBERT, …):
//! `x·cos + rotate_half(x)·sin` with `rotate_half(x) = [−x₂, x₁]` over the two halves of a head.
//!
//! Numerics follow transformers' `_compute_default_rope_parameters` and
//! `RotaryEmbedding.forward` in f32:
//! - `inv_freq[i] = 1 / theta^(2i / d)` for `i < d/2`: the exponent `f32(2i) / f32(d)` in f32,
//!   the power of `f32(theta)` rounded to f32 (computed in f64, so correctly rounded; PyTorch's
//!   vectorised `pow` is within 1 ulp of it), the reciprocal in f32;
//! - the angle `f32(position) · inv_freq[i]` in f32 — the same product `inv_freq @ positions`
//!   forms in f32, which is what matters at long positions (the angle's own rounding);
//! - `cos` and `sin` of that f32 angle, rounded to f32 (PyTorch's are within 1 ulp);
//! - `emb = cat(freqs, freqs)`: element `j` and `j + d/2` share one angle;
//! - `out[j] = x[j]·cos − x[j + d/2]·sin`, `out[j + d/2] = x[j + d/2]·cos + x[j]·sin`, each
//!   product rounded separately as PyTorch's separate `mul` / `add` do (no fused multiply-add).
//!
//! cos/sin tables are kept per position and grow on demand (shared by every thread).

use std::sync::{Arc, RwLock};

use rayon::prelude::*;

use crate::buffer::SendPtr;
use crate::layout::HeadLayout;
use crate::schedule::Parallelism;

/// Rows per parallel task of [`Rope::apply`].
const ROWS_PER_TASK: usize = 64;

/// cos / sin of every position below `len`: `[len, d/2]` each.
#[derive(Debug, Default)]
struct Tables {
    len: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

/// RoPE of one head width and base (`rope_theta`), rotating the whole head
/// (`partial_rotary_factor = 1`, `rope_type = "default"`, attention scaling 1).
#[derive(Debug)]
pub struct Rope {
    head_dim: usize,
    inv_freq: Vec<f32>,
    tables: RwLock<Arc<Tables>>,
}

impl Rope {
    /// RoPE for heads of `head_dim` floats (even, > 0) with base `theta`.
    ///
    /// Panics if `head_dim` is odd or 0.
    pub fn new(head_dim: usize, theta: f64) -> Self {
        assert!(
            head_dim > 0 && head_dim.is_multiple_of(2),
            "RoPE needs an even head_dim, got {head_dim}"
        );
        let base = theta as f32;
        let inv_freq = (0..head_dim / 2)
            .map(|i| {
                let e = (2 * i) as f32 / head_dim as f32;
                1.0f32 / ((base as f64).powf(e as f64) as f32)
            })
            .collect();
        Rope {
            head_dim,
            inv_freq,
            tables: RwLock::new(Arc::new(Tables::default())),
        }
    }

    /// Floats per head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// `inv_freq`: `[head_dim / 2]`, as transformers' buffer of the same name.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// The tables, grown to cover positions `< len`.
    fn tables(&self, len: usize) -> Arc<Tables> {
        {
            let t = self.tables.read().unwrap_or_else(|e| e.into_inner());
            if t.len >= len {
                return Arc::clone(&t);
            }
        }
        let mut guard = self.tables.write().unwrap_or_else(|e| e.into_inner());
        if guard.len < len {
            let len = len.next_power_of_two().max(64);
            let half = self.head_dim / 2;
            let mut cos = Vec::with_capacity(len * half);
            let mut sin = Vec::with_capacity(len * half);
            for p in 0..len {
                for &f in &self.inv_freq {
                    let angle = (p as f32 * f) as f64;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
            *guard = Arc::new(Tables { len, cos, sin });
        }
        Arc::clone(&guard)
    }

    /// `(cos, sin)` of position `pos`: `[head_dim / 2]` each (element `j` of the full
    /// `cat(freqs, freqs)` embedding is element `j % (head_dim / 2)` here).
    pub fn cos_sin(&self, pos: usize) -> (Vec<f32>, Vec<f32>) {
        let t = self.tables(pos + 1);
        let half = self.head_dim / 2;
        (
            t.cos[pos * half..(pos + 1) * half].to_vec(),
            t.sin[pos * half..(pos + 1) * half].to_vec(),
        )
    }

    /// Rotates, in place, heads `0..heads` of rows `0..positions.len()` of `x` (head `h` of
    /// row `r` at `layout.at(r, h)`, `head_dim` floats), row `r` by position `positions[r]`.
    ///
    /// To rotate the key heads of a fused Q/K/V buffer, pass the slice starting at the first
    /// key head. Panics if `x` is too short for the rows and heads named.
    pub fn apply(
        &self,
        x: &mut [f32],
        layout: HeadLayout,
        heads: usize,
        positions: &[u32],
        par: Parallelism,
    ) {
        let rows = positions.len();
        let d = self.head_dim;
        assert!(
            layout.fits(x.len(), 0, rows, heads, d),
            "RoPE: buffer too small"
        );
        if rows == 0 || heads == 0 {
            return;
        }
        let max = positions.iter().copied().max().unwrap_or(0) as usize;
        let t = self.tables(max + 1);
        let half = d / 2;
        let rotate = |x: &mut [f32], pos: usize| {
            let (cos, sin) = (&t.cos[pos * half..][..half], &t.sin[pos * half..][..half]);
            let (x1, x2) = x.split_at_mut(half);
            for j in 0..half {
                let (a, b) = (x1[j], x2[j]);
                x1[j] = a * cos[j] - b * sin[j];
                x2[j] = b * cos[j] + a * sin[j];
            }
        };
        // Rows and heads are disjoint when heads sit side by side in a row or rows side by
        // side in a head block; only then may tasks run concurrently.
        let disjoint = (layout.head_stride >= d && layout.row_stride >= heads * layout.head_stride)
            || (layout.row_stride >= d && layout.head_stride >= rows * layout.row_stride);
        if !(disjoint && par.is_parallel() && rows > ROWS_PER_TASK) {
            for (r, &pos) in positions.iter().enumerate() {
                for h in 0..heads {
                    let at = layout.at(r, h);
                    rotate(&mut x[at..at + d], pos as usize);
                }
            }
            return;
        }
        let ptr = SendPtr(x.as_mut_ptr());
        (0..rows.div_ceil(ROWS_PER_TASK))
            .into_par_iter()
            .for_each(|t| {
                let r1 = ((t + 1) * ROWS_PER_TASK).min(rows);
                for (r, &pos) in positions
                    .iter()
                    .enumerate()
                    .take(r1)
                    .skip(t * ROWS_PER_TASK)
                {
                    for h in 0..heads {
                        // SAFETY: `fits` checked that every (row, head) named lies in `x`, and
                        // `disjoint` that no two of them overlap; tasks cover disjoint rows,
                        // so this task alone touches these `d` floats while `x` is borrowed.
                        let head = unsafe {
                            std::slice::from_raw_parts_mut(ptr.get().add(layout.at(r, h)), d)
                        };
                        rotate(head, pos as usize);
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inv_freq_follows_transformers() {
        // torch: 1.0 / (10000 ** (torch.arange(0, 8, 2).float() / 8)) =
        // [1.0, 0.1, 0.01, 0.001] (float32).
        let r = Rope::new(8, 10_000.0);
        assert_eq!(r.inv_freq(), &[1.0f32, 0.1, 0.01, 0.001]);
        let q = Rope::new(128, 1_000_000.0);
        for (i, &f) in q.inv_freq().iter().enumerate() {
            let want = 1e6f64.powf(-(2.0 * i as f64) / 128.0);
            assert!(
                ((f as f64) - want).abs() <= 1.2e-7 * want,
                "{i}: {f} vs {want}"
            );
        }
    }

    /// f64 rotate-half RoPE with angles `f32(pos)·inv_freq` in f32, as transformers.
    fn reference(x: &[f32], pos: u32, inv_freq: &[f32]) -> Vec<f64> {
        let half = x.len() / 2;
        let mut out = vec![0f64; x.len()];
        for j in 0..half {
            let a = (pos as f32 * inv_freq[j]) as f64;
            let (c, s) = (a.cos(), a.sin());
            out[j] = x[j] as f64 * c - x[j + half] as f64 * s;
            out[j + half] = x[j + half] as f64 * c + x[j] as f64 * s;
        }
        out
    }

    #[test]
    fn rotates_every_head_of_every_row_like_f64() {
        let (heads, d, rows) = (3usize, 16usize, 40usize);
        let rope = Rope::new(d, 160_000.0);
        let x: Vec<f32> = (0..rows * heads * d)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let positions: Vec<u32> = (0..rows as u32).map(|r| r * 211 % 9000).collect();
        for layout in [
            HeadLayout::row_major(heads * d, d),
            HeadLayout::per_head(rows, d),
        ] {
            for par in [Parallelism::Serial, Parallelism::Parallel] {
                let mut got = x.clone();
                rope.apply(&mut got, layout, heads, &positions, par);
                for (r, &p) in positions.iter().enumerate() {
                    for h in 0..heads {
                        let at = layout.at(r, h);
                        let want = reference(&x[at..at + d], p, rope.inv_freq());
                        for j in 0..d {
                            let g = got[at + j] as f64;
                            assert!(
                                (g - want[j]).abs() <= 4e-7,
                                "row {r} pos {p} head {h} [{j}]: {g} vs {}",
                                want[j]
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_or_in_a_batch() {
        let (heads, d) = (2usize, 8usize);
        let rope = Rope::new(d, 1_000_000.0);
        let layout = HeadLayout::row_major(heads * d, d);
        let x: Vec<f32> = (0..300 * heads * d)
            .map(|i| (i % 97) as f32 / 48.0 - 1.0)
            .collect();
        let positions: Vec<u32> = (0..300).map(|r| (r * 37) % 1000).collect();
        let mut all = x.clone();
        rope.apply(&mut all, layout, heads, &positions, Parallelism::Parallel);
        for r in [0usize, 63, 64, 299] {
            let mut one = x[r * heads * d..(r + 1) * heads * d].to_vec();
            rope.apply(
                &mut one,
                layout,
                heads,
                &positions[r..=r],
                Parallelism::Serial,
            );
            assert_eq!(
                &one[..],
                &all[r * heads * d..(r + 1) * heads * d],
                "row {r}"
            );
        }
    }

    #[test]
    fn position_zero_is_the_identity_and_tables_grow() {
        let rope = Rope::new(4, 10_000.0);
        let mut x = vec![0.5f32, -1.0, 2.0, 3.0];
        rope.apply(
            &mut x,
            HeadLayout::row_major(4, 4),
            1,
            &[0],
            Parallelism::Serial,
        );
        assert_eq!(x, vec![0.5, -1.0, 2.0, 3.0]);
        let (c, s) = rope.cos_sin(5000);
        assert_eq!(c[0], (5000f64).cos() as f32);
        assert_eq!(s[1], ((5000f32 * 0.01) as f64).sin() as f32);
    }
}
