//! The linear layer (`nn.Linear`: `y = x·Wᵀ + b`) of every model: one type whose weight
//! storage is chosen by [`Precision`] at construction — the one place precision is decided.
//!
//! The weight is packed once for its precision's kernels (f32 panels, bf16 VNNI panels, or
//! int8 VNNI panels with per-channel scales);
//! the bias is f32 in every precision and optional (`bias=False` layers). A product may write
//! a column range of the output, into a row-major or a per-head blocked [`OutLayout`], with
//! exact GELU fused into the store, serially or on rayon's pool ([`Parallelism`]).
//!
//! Rows are independent: a row's result does not depend on how many rows are computed with
//! it, nor on the task that computes it (the property that makes a pair's score independent
//! of its batch).

use std::ops::Range;

use crate::buffer::AlignedVec;
use crate::gemm::{PackedF32, MC};
use crate::gemm_bf16::PackedBf16;
use crate::gemm_int8::PackedI8;
use crate::isa::{Bf16Isa, Int8Isa, Isa};
use crate::layout::{OutLayout, COL_ALIGN};
use crate::precision::Precision;
use crate::schedule::Parallelism;

/// Largest row block of the f32 GEMM (168, a multiple of every ISA's row tile): callers that
/// cut rows into their own blocks (e.g. a per-block feed-forward pipeline) use blocks of at
/// most this many rows so that each product stays in one kernel block.
pub const MAX_ROW_BLOCK: usize = MC;

/// Rows of the f32 micro-kernel's tile on this CPU (14 AVX-512, 6 AVX2, 4 portable): a good
/// granularity for row blocks.
pub fn row_tile() -> usize {
    Isa::active().mr()
}

/// The packed weight of a [`Linear`], one variant per precision.
#[derive(Debug, Clone)]
enum Weights {
    F32(PackedF32),
    Bf16(PackedBf16),
    Int8(PackedI8),
}

/// An `nn.Linear(in_dim, out_dim, bias)` with its weight packed for one [`Precision`].
#[derive(Debug, Clone)]
pub struct Linear {
    out_dim: usize,
    in_dim: usize,
    /// `[out_dim]` zero-padded to a multiple of [`COL_ALIGN`].
    bias: Option<AlignedVec>,
    weights: Weights,
}

/// Where and how [`Linear::forward_to`] writes: the output columns to compute (start a
/// multiple of [`COL_ALIGN`]), their [`OutLayout`], and whether exact GELU
/// (`x·½·(1 + erf(x/√2))`, transformers' `"gelu"`) is applied after the bias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutSpec {
    /// Output columns to compute; others are left untouched.
    pub cols: Range<usize>,
    /// Where element `(i, j)` goes.
    pub layout: OutLayout,
    /// Apply exact GELU after the bias.
    pub gelu: bool,
}

impl OutSpec {
    /// All `n` columns, row-major with row stride `n` (a dense `[m, n]` output).
    pub fn dense(n: usize) -> Self {
        OutSpec {
            cols: 0..n,
            layout: OutLayout::row_major(n),
            gelu: false,
        }
    }

    /// Columns `cols`, row-major with row stride `ldc`.
    pub fn row_major(ldc: usize, cols: Range<usize>) -> Self {
        OutSpec {
            cols,
            layout: OutLayout::row_major(ldc),
            gelu: false,
        }
    }

    /// Columns `cols` in `layout`.
    pub fn with_layout(layout: OutLayout, cols: Range<usize>) -> Self {
        OutSpec {
            cols,
            layout,
            gelu: false,
        }
    }

    /// The same with exact GELU fused (when `gelu`).
    pub fn gelu(self, gelu: bool) -> Self {
        OutSpec { gelu, ..self }
    }
}

impl Linear {
    /// Packs `weight` (`[out_dim, in_dim]` row-major, PyTorch's `nn.Linear.weight`) and the
    /// optional `bias` (`[out_dim]`) for `precision`: f32 as is, bf16 rounded to nearest-even
    /// once now (inputs are rounded on every call; see [`Precision::Bf16`]), int8 quantized
    /// per output channel once now (inputs per row on every call; see [`Precision::Int8`]).
    ///
    /// Panics if the slice lengths do not match `out_dim` and `in_dim` (callers load
    /// tensors with their shapes checked), or for int8 if `in_dim` exceeds 66 000 (the i32
    /// sums could overflow).
    pub fn new(
        weight: &[f32],
        bias: Option<&[f32]>,
        out_dim: usize,
        in_dim: usize,
        precision: Precision,
    ) -> Self {
        assert_eq!(
            weight.len(),
            out_dim * in_dim,
            "weight is not [{out_dim}, {in_dim}]"
        );
        let bias = bias.map(|b| {
            assert_eq!(b.len(), out_dim, "bias is not [{out_dim}]");
            let mut v = AlignedVec::zeros(out_dim.div_ceil(COL_ALIGN) * COL_ALIGN);
            v.as_mut_slice()[..out_dim].copy_from_slice(b);
            v
        });
        let weights = match precision {
            Precision::F32 => Weights::F32(PackedF32::new(weight, out_dim, in_dim)),
            Precision::Bf16 => Weights::Bf16(PackedBf16::new(weight, out_dim, in_dim)),
            Precision::Int8 => Weights::Int8(PackedI8::new(weight, out_dim, in_dim)),
        };
        Linear {
            out_dim,
            in_dim,
            bias,
            weights,
        }
    }

    /// Output features.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Input features.
    pub fn in_dim(&self) -> usize {
        self.in_dim
    }

    /// Whether the layer adds a bias.
    pub fn has_bias(&self) -> bool {
        self.bias.is_some()
    }

    /// The precision the weight was packed for.
    pub fn precision(&self) -> Precision {
        match self.weights {
            Weights::F32(_) => Precision::F32,
            Weights::Bf16(_) => Precision::Bf16,
            Weights::Int8(_) => Precision::Int8,
        }
    }

    /// Bytes of packed weight and bias.
    pub fn size_bytes(&self) -> usize {
        let w = match &self.weights {
            Weights::F32(w) => w.size_bytes(),
            Weights::Bf16(w) => w.size_bytes(),
            Weights::Int8(w) => w.size_bytes(),
        };
        w + self.bias.as_ref().map_or(0, |b| b.len() * 4)
    }

    /// `out[m, out_dim] = a[m, in_dim] · Wᵀ + bias`, `a` and `out` dense row-major.
    ///
    /// Panics if `a` or `out` is shorter than that.
    pub fn forward(&self, a: &[f32], m: usize, out: &mut [f32], par: Parallelism) {
        self.forward_to(a, self.in_dim, m, out, &OutSpec::dense(self.out_dim), par);
    }

    /// General form of [`Linear::forward`]: for `i < m` and `j ∈ spec.cols`,
    /// `out[spec.layout.offset(i, j)] = Σ_kk a[i·lda + kk]·W[j, kk] + bias[j]`, then exact
    /// GELU when `spec.gelu`. Other elements of `out` are left untouched.
    ///
    /// Panics unless `spec.cols.start` is a multiple of [`COL_ALIGN`], `spec.cols.end ≤
    /// out_dim`, `lda ≥ in_dim` and `a` / `out` hold every element named.
    pub fn forward_to(
        &self,
        a: &[f32],
        lda: usize,
        m: usize,
        out: &mut [f32],
        spec: &OutSpec,
        par: Parallelism,
    ) {
        let isas = (Isa::active(), Bf16Isa::active(), Int8Isa::active());
        self.forward_isa(isas, a, lda, m, out, spec, par);
    }

    /// [`Linear::forward_to`] on explicit instruction sets (tests cover every path).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_isa(
        &self,
        (isa, bf16_isa, int8_isa): (Isa, Bf16Isa, Int8Isa),
        a: &[f32],
        lda: usize,
        m: usize,
        out: &mut [f32],
        spec: &OutSpec,
        par: Parallelism,
    ) {
        let cols = spec.cols.clone();
        assert!(
            cols.start <= cols.end && cols.end <= self.out_dim,
            "columns {cols:?} outside 0..{}",
            self.out_dim
        );
        assert!(
            cols.start.is_multiple_of(COL_ALIGN) || cols.is_empty(),
            "column range must start on a multiple of {COL_ALIGN}"
        );
        if m == 0 || cols.is_empty() {
            return;
        }
        assert!(
            lda >= self.in_dim && a.len() >= (m - 1) * lda + self.in_dim,
            "input is not [{m}, {}] with row stride {lda}",
            self.in_dim
        );
        spec.layout.check(m, &cols, out.len());
        let bias = self.bias.as_ref().map(AlignedVec::as_slice);
        let (layout, gelu) = (spec.layout, spec.gelu);
        match &self.weights {
            Weights::F32(w) => w.forward(isa, a, lda, m, cols, out, layout, bias, gelu, par),
            Weights::Bf16(w) => w.forward(bf16_isa, a, lda, m, cols, out, layout, bias, gelu, par),
            Weights::Int8(w) => w.forward(int8_isa, a, lda, m, cols, out, layout, bias, gelu, par),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bf16::round_bf16;

    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32) / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// f64 `A·Wᵀ (+ bias)` with the operands rounded as `precision` rounds them, and the
    /// scale Σ|a·w| + |bias| of each element.
    fn reference(
        a: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        (m, n, k): (usize, usize, usize),
        precision: Precision,
    ) -> (Vec<f64>, Vec<f64>) {
        let r = |x: f32| match precision {
            Precision::Bf16 => round_bf16(x) as f64,
            _ => x as f64,
        };
        let mut out = vec![0f64; m * n];
        let mut mag = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = bias.map_or(0.0, |b| b[j] as f64);
                let mut g = s.abs();
                for kk in 0..k {
                    let p = r(a[i * k + kk]) * r(w[j * k + kk]);
                    s += p;
                    g += p.abs();
                }
                out[i * n + j] = s;
                mag[i * n + j] = g;
            }
        }
        (out, mag)
    }

    #[test]
    fn every_precision_with_and_without_bias_matches_f64() {
        for precision in [Precision::F32, Precision::Bf16] {
            for (m, n, k) in [(1usize, 1usize, 1usize), (37, 70, 45), (200, 96, 385)] {
                let a = rand_vec(m * k, 1);
                let w = rand_vec(n * k, 2);
                let b = rand_vec(n, 3);
                for bias in [None, Some(&b[..])] {
                    let lin = Linear::new(&w, bias, n, k, precision);
                    assert_eq!(lin.precision(), precision);
                    assert_eq!(lin.has_bias(), bias.is_some());
                    let mut got = vec![f32::NAN; m * n];
                    lin.forward(&a, m, &mut got, Parallelism::Parallel);
                    let (want, mag) = reference(&a, &w, bias, (m, n, k), precision);
                    for (idx, ((&g, &r), &s)) in got.iter().zip(&want).zip(&mag).enumerate() {
                        assert!(
                            (g as f64 - r).abs() <= 2e-6 * s.max(1e-30),
                            "{precision:?} {m}x{n}x{k} bias {}: [{idx}] {g} vs {r}",
                            bias.is_some()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_isa_gives_the_same_rows_serial_or_parallel() {
        let (m, n, k) = (90, 64, 100);
        let a = rand_vec(m * k, 4);
        let w = rand_vec(n * k, 5);
        let b = rand_vec(n, 6);
        for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
            let lin = Linear::new(&w, Some(&b), n, k, precision);
            let triples = Isa::available().into_iter().flat_map(|isa| {
                Bf16Isa::available()
                    .into_iter()
                    .flat_map(move |b| Int8Isa::available().into_iter().map(move |i| (isa, b, i)))
            });
            for isas in triples {
                let run = |par| {
                    let mut out = vec![0f32; m * n];
                    lin.forward_isa(isas, &a, k, m, &mut out, &OutSpec::dense(n), par);
                    out
                };
                assert_eq!(
                    run(Parallelism::Parallel),
                    run(Parallelism::Serial),
                    "{precision:?} {isas:?}"
                );
            }
        }
    }

    #[test]
    fn int8_layer_is_within_its_quantization_bound() {
        // |Σ a·w − Σ â·ŵ| ≤ Σ |a|·s_w/2 + (|w| + s_w/2)·s_a/2 with the per-row scales
        // recomputed here from their definition (max|x| / 127).
        let (m, n, k) = (37, 70, 45);
        let a = rand_vec(m * k, 1);
        let w = rand_vec(n * k, 2);
        let b = rand_vec(n, 3);
        let lin = Linear::new(&w, Some(&b), n, k, Precision::Int8);
        assert_eq!(lin.precision(), Precision::Int8);
        assert!(lin.size_bytes() < n.div_ceil(32) * 32 * k.div_ceil(64) * 64 + 16 * n + 512);
        let mut got = vec![f32::NAN; m * n];
        lin.forward(&a, m, &mut got, Parallelism::Parallel);
        let amax = |x: &[f32]| x.iter().fold(0f64, |s, v| s.max(v.abs() as f64)) / 127.0;
        for i in 0..m {
            let sa = amax(&a[i * k..(i + 1) * k]);
            for j in 0..n {
                let sw = amax(&w[j * k..(j + 1) * k]);
                let (mut exact, mut bound) = (b[j] as f64, 1e-6);
                for kk in 0..k {
                    let (x, y) = (a[i * k + kk] as f64, w[j * k + kk] as f64);
                    exact += x * y;
                    bound += x.abs() * sw * 0.5 + (y.abs() + sw * 0.5) * sa * 0.5;
                }
                let g = got[i * n + j] as f64;
                assert!(
                    (g - exact).abs() <= bound,
                    "({i},{j}): {g} vs {exact}, bound {bound}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "multiple of 32")]
    fn misaligned_column_range_is_refused() {
        let lin = Linear::new(&[0.0; 64 * 2], None, 64, 2, Precision::F32);
        let mut out = vec![0f32; 64];
        lin.forward_to(
            &[0.0; 2],
            2,
            1,
            &mut out,
            &OutSpec::row_major(64, 5..64),
            Parallelism::Serial,
        );
    }
}
