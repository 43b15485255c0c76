//! Normalisation over the last dimension, row by row, in f32:
//! - [`LayerNorm`] as PyTorch's CPU kernel: two-pass mean and (biased) variance,
//!   `rstd = 1/√(var + eps)`, `y = (x·rstd − mean·rstd)·γ (+ β)` — the bias is optional
//!   (`nn.LayerNorm(bias=False)`, ModernBERT's `norm_bias: false`);
//! - [`RmsNorm`] as transformers' `Qwen3RMSNorm` / `LlamaRMSNorm`:
//!   `y = weight · (x · rsqrt(mean(x²) + eps))`, with `rsqrt` as `1/√·`.
//!
//! Each has the forms a transformer block needs: in place ([`LayerNorm::forward`]), fused with
//! the residual add of a post-LN block (`x ← norm(x + add)`, [`LayerNorm::forward_residual`]),
//! into another buffer for a pre-LN block (`out = norm(x)`, [`LayerNorm::forward_to`]) and
//! with the residual add first (`x ← x + add; out = norm(x)`, [`LayerNorm::add_forward_to`]).
//! Sums use 16 independent lanes and a fixed tree, so every ISA gives the same bits.

use crate::isa::Isa;

/// `nn.LayerNorm(dim, eps, bias)` parameters.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    /// `[dim]` scale γ.
    pub weight: Vec<f32>,
    /// `[dim]` shift β; `None` for a LayerNorm without bias.
    pub bias: Option<Vec<f32>>,
    /// Added to the variance (`layer_norm_eps` / `norm_eps` of the config), as f32 like
    /// PyTorch.
    pub eps: f32,
}

/// `RMSNorm(dim, eps)` parameters (`weight` multiplies the normalised row).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    /// `[dim]` scale.
    pub weight: Vec<f32>,
    /// Added to the mean square (`rms_norm_eps`).
    pub eps: f32,
}

/// Which normalisation a row gets.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Layer(&'a LayerNorm),
    Rms(&'a RmsNorm),
}

impl Kind<'_> {
    fn dim(&self) -> usize {
        match self {
            Kind::Layer(p) => p.weight.len(),
            Kind::Rms(p) => p.weight.len(),
        }
    }
}

impl LayerNorm {
    /// Normalised dimension.
    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    /// In place on every `dim`-wide row of `x` (`[rows, dim]` dense).
    pub fn forward(&self, x: &mut [f32]) {
        dispatch(Isa::active(), x, None, Kind::Layer(self));
    }

    /// `x ← LayerNorm(add + x)` row by row (the residual add of a post-LN block fused in);
    /// `x` and `add` are `[rows, dim]` dense.
    pub fn forward_residual(&self, x: &mut [f32], add: &[f32]) {
        assert_eq!(x.len(), add.len(), "residual shape");
        dispatch(Isa::active(), x, Some(add), Kind::Layer(self));
    }

    /// `out = LayerNorm(x)` (pre-LN blocks keep `x` as the residual stream).
    pub fn forward_to(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
        self.forward(out);
    }

    /// `x ← x + add; out = LayerNorm(x)` (the residual add of a pre-LN block, then the next
    /// norm).
    pub fn add_forward_to(&self, x: &mut [f32], add: &[f32], out: &mut [f32]) {
        add_assign(x, add);
        self.forward_to(x, out);
    }
}

impl RmsNorm {
    /// Normalised dimension.
    pub fn dim(&self) -> usize {
        self.weight.len()
    }

    /// In place on every `dim`-wide row of `x` (`[rows, dim]` dense). With `dim = head_dim`
    /// this is Qwen3's per-head `q_norm` / `k_norm` on a dense Q or K buffer.
    pub fn forward(&self, x: &mut [f32]) {
        dispatch(Isa::active(), x, None, Kind::Rms(self));
    }

    /// `out = RmsNorm(x)`.
    pub fn forward_to(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
        self.forward(out);
    }

    /// `x ← x + add; out = RmsNorm(x)`.
    pub fn add_forward_to(&self, x: &mut [f32], add: &[f32], out: &mut [f32]) {
        add_assign(x, add);
        self.forward_to(x, out);
    }
}

/// `x[i] += y[i]` (a residual add).
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    assert_eq!(x.len(), y.len(), "residual shape");
    x.iter_mut().zip(y).for_each(|(a, b)| *a += *b);
}

fn dispatch(isa: Isa, x: &mut [f32], add: Option<&[f32]>, p: Kind<'_>) {
    assert_eq!(x.len() % p.dim().max(1), 0, "rows of {} values", p.dim());
    if let Kind::Layer(l) = p {
        assert!(
            l.bias.as_ref().is_none_or(|b| b.len() == l.dim()),
            "bias shape"
        );
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
        Isa::Avx512 => unsafe { x86::rows_avx512(x, add, p) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA are present when `Isa::Avx2Fma` is chosen.
        Isa::Avx2Fma => unsafe { x86::rows_avx2(x, add, p) },
        _ => rows(x, add, p),
    }
}

/// Sum with 16 independent lanes (vectorisable without reassociation), then a fixed tree.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = xs.chunks_exact(16);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *l += f(v);
    }
    let mut w = 8;
    while w > 0 {
        for i in 0..w {
            lanes[i] += lanes[i + w];
        }
        w /= 2;
    }
    lanes[0]
}

#[inline(always)]
fn rows(x: &mut [f32], add: Option<&[f32]>, p: Kind<'_>) {
    let dim = p.dim();
    if dim == 0 {
        return;
    }
    let n = dim as f32;
    for (r, row) in x.chunks_exact_mut(dim).enumerate() {
        if let Some(add) = add {
            for (v, a) in row.iter_mut().zip(&add[r * dim..(r + 1) * dim]) {
                *v += *a;
            }
        }
        match p {
            Kind::Layer(p) => {
                let mean = lane_sum(row, |v| v) / n;
                let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
                let rstd = 1.0 / (var.max(0.0) + p.eps).sqrt();
                let shift = -mean * rstd;
                match &p.bias {
                    Some(beta) => {
                        for ((v, g), b) in row.iter_mut().zip(&p.weight).zip(beta) {
                            *v = (*v * rstd + shift) * g + b;
                        }
                    }
                    None => {
                        for (v, g) in row.iter_mut().zip(&p.weight) {
                            *v = (*v * rstd + shift) * g;
                        }
                    }
                }
            }
            Kind::Rms(p) => {
                let mean_sq = lane_sum(row, |v| v * v) / n;
                let r = 1.0 / (mean_sq + p.eps).sqrt();
                for (v, w) in row.iter_mut().zip(&p.weight) {
                    *v = w * (*v * r);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kind;

    /// [`super::rows`] compiled for AVX-512.
    #[target_feature(enable = "avx512f")]
    pub(super) fn rows_avx512(x: &mut [f32], add: Option<&[f32]>, p: Kind<'_>) {
        super::rows(x, add, p);
    }

    /// [`super::rows`] compiled for AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn rows_avx2(x: &mut [f32], add: Option<&[f32]>, p: Kind<'_>) {
        super::rows(x, add, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(rows: usize, dim: usize) -> (Vec<f32>, Vec<f32>) {
        let x = (0..rows * dim)
            .map(|i| ((i * 7919) % 997) as f32 / 50.0 - 9.0)
            .collect();
        let add = (0..rows * dim).map(|i| (i % 13) as f32 * 0.25).collect();
        (x, add)
    }

    #[test]
    fn layer_norm_matches_f64_on_every_isa_with_and_without_bias() {
        for isa in Isa::available() {
            for dim in [1usize, 7, 16, 33, 384] {
                for with_bias in [true, false] {
                    let rows = 4;
                    let (x, add) = inputs(rows, dim);
                    let p = LayerNorm {
                        weight: (0..dim).map(|i| 0.5 + i as f32 / dim as f32).collect(),
                        bias: with_bias.then(|| (0..dim).map(|i| i as f32 * 0.01 - 0.1).collect()),
                        eps: 1e-12,
                    };
                    let mut got = x.clone();
                    dispatch(isa, &mut got, Some(&add), Kind::Layer(&p));
                    for r in 0..rows {
                        let v: Vec<f64> = (0..dim)
                            .map(|j| (x[r * dim + j] + add[r * dim + j]) as f64)
                            .collect();
                        let mean = v.iter().sum::<f64>() / dim as f64;
                        let var =
                            v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / dim as f64;
                        for j in 0..dim {
                            let beta = p.bias.as_ref().map_or(0.0, |b| b[j] as f64);
                            let want =
                                (v[j] - mean) / (var + 1e-12).sqrt() * p.weight[j] as f64 + beta;
                            let g = got[r * dim + j] as f64;
                            assert!(
                                (g - want).abs() <= 2e-6 * (1.0 + want.abs()),
                                "{isa:?} dim {dim} bias {with_bias} ({r},{j}): {g} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn rms_norm_matches_f64_on_every_isa() {
        let mut first: Option<Vec<f32>> = None;
        for isa in Isa::available() {
            for dim in [1usize, 16, 17, 128, 1024] {
                let rows = 3;
                let (x, _) = inputs(rows, dim);
                let p = RmsNorm {
                    weight: (0..dim).map(|i| 1.5 - i as f32 / dim as f32).collect(),
                    eps: 1e-6,
                };
                let mut got = x.clone();
                dispatch(isa, &mut got, None, Kind::Rms(&p));
                for r in 0..rows {
                    let row = &x[r * dim..(r + 1) * dim];
                    let ms = row.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / dim as f64;
                    for j in 0..dim {
                        let want = p.weight[j] as f64 * (row[j] as f64 / (ms + 1e-6).sqrt());
                        let g = got[r * dim + j] as f64;
                        assert!(
                            (g - want).abs() <= 2e-6 * (1.0 + want.abs()),
                            "{isa:?} dim {dim} ({r},{j}): {g} vs {want}"
                        );
                    }
                }
                if dim == 1024 {
                    match &first {
                        None => first = Some(got),
                        Some(f) => assert_eq!(f, &got, "{isa:?}: same bits as the first ISA"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_gets_the_same_bits_alone_or_in_a_batch() {
        let dim = 48;
        let (x, _) = inputs(9, dim);
        let ln = LayerNorm {
            weight: vec![1.2; dim],
            bias: None,
            eps: 1e-5,
        };
        let rms = RmsNorm {
            weight: vec![0.7; dim],
            eps: 1e-6,
        };
        let (mut a, mut b) = (x.clone(), x.clone());
        ln.forward(&mut a);
        rms.forward(&mut b);
        for r in 0..9 {
            let row = r * dim..(r + 1) * dim;
            let (mut a1, mut b1) = (x[row.clone()].to_vec(), x[row.clone()].to_vec());
            ln.forward(&mut a1);
            rms.forward(&mut b1);
            assert_eq!((&a1[..], &b1[..]), (&a[row.clone()], &b[row]), "row {r}");
        }
    }

    #[test]
    fn pre_norm_forms_equal_the_in_place_one() {
        let dim = 40;
        let (x, add) = inputs(5, dim);
        let ln = LayerNorm {
            weight: vec![0.9; dim],
            bias: None,
            eps: 1e-5,
        };
        let rms = RmsNorm {
            weight: vec![1.1; dim],
            eps: 1e-6,
        };
        let mut sum = x.clone();
        add_assign(&mut sum, &add);
        let mut want_ln = sum.clone();
        ln.forward(&mut want_ln);
        let mut want_rms = sum.clone();
        rms.forward(&mut want_rms);

        let (mut x1, mut out) = (x.clone(), vec![0f32; x.len()]);
        ln.add_forward_to(&mut x1, &add, &mut out);
        assert_eq!((x1, out), (sum.clone(), want_ln.clone()));
        let (mut x2, mut out) = (x.clone(), vec![0f32; x.len()]);
        rms.add_forward_to(&mut x2, &add, &mut out);
        assert_eq!((x2, out), (sum.clone(), want_rms));
        let mut post = x.clone();
        ln.forward_residual(&mut post, &add);
        assert_eq!(post, want_ln);
    }
}
