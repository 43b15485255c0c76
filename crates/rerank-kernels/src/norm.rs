//! LayerNorm over the last dimension, as PyTorch's CPU kernel: two-pass mean and (biased)
//! variance in f32, `rstd = 1/√(var + eps)`, `y = (x·rstd − mean·rstd)·γ + β`.

use super::isa::Isa;

/// LayerNorm parameters of one `nn.LayerNorm(dim)`.
#[derive(Debug, Clone)]
pub struct LayerNormParams {
    /// `[dim]` scale γ.
    pub gamma: Vec<f32>,
    /// `[dim]` shift β.
    pub beta: Vec<f32>,
    /// Added to the variance (`layer_norm_eps` of the config), as f32 like PyTorch.
    pub eps: f32,
}

impl LayerNormParams {
    /// Normalised dimension.
    pub fn dim(&self) -> usize {
        self.gamma.len()
    }

    /// In place on every `dim`-wide row of `x` (`[rows, dim]` dense).
    pub fn forward(&self, x: &mut [f32]) {
        dispatch(Isa::active(), x, None, self);
    }

    /// `x ← LayerNorm(add + x)` row by row (the residual add of a post-LN block fused in);
    /// `x` and `add` are `[rows, dim]` dense.
    pub fn forward_residual(&self, x: &mut [f32], add: &[f32]) {
        assert_eq!(x.len(), add.len(), "residual shape");
        dispatch(Isa::active(), x, Some(add), self);
    }
}

fn dispatch(isa: Isa, x: &mut [f32], add: Option<&[f32]>, p: &LayerNormParams) {
    assert_eq!(x.len() % p.dim().max(1), 0, "rows of {} values", p.dim());
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
fn rows(x: &mut [f32], add: Option<&[f32]>, p: &LayerNormParams) {
    let dim = p.dim();
    if dim == 0 {
        return;
    }
    for (r, row) in x.chunks_exact_mut(dim).enumerate() {
        if let Some(add) = add {
            for (v, a) in row.iter_mut().zip(&add[r * dim..(r + 1) * dim]) {
                *v += *a;
            }
        }
        let n = dim as f32;
        let mean = lane_sum(row, |v| v) / n;
        let var = lane_sum(row, |v| (v - mean) * (v - mean)) / n;
        let rstd = 1.0 / (var.max(0.0) + p.eps).sqrt();
        let shift = -mean * rstd;
        for ((v, g), b) in row.iter_mut().zip(&p.gamma).zip(&p.beta) {
            *v = (*v * rstd + shift) * g + b;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LayerNormParams;

    /// [`super::rows`] compiled for AVX-512.
    #[target_feature(enable = "avx512f")]
    pub(super) fn rows_avx512(x: &mut [f32], add: Option<&[f32]>, p: &LayerNormParams) {
        super::rows(x, add, p);
    }

    /// [`super::rows`] compiled for AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn rows_avx2(x: &mut [f32], add: Option<&[f32]>, p: &LayerNormParams) {
        super::rows(x, add, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_layer_norm_on_every_isa() {
        for isa in Isa::available() {
            for dim in [1usize, 7, 16, 33, 384] {
                let rows = 4;
                let x: Vec<f32> = (0..rows * dim)
                    .map(|i| ((i * 7919) % 997) as f32 / 50.0 - 9.0)
                    .collect();
                let add: Vec<f32> = (0..rows * dim).map(|i| (i % 13) as f32 * 0.25).collect();
                let p = LayerNormParams {
                    gamma: (0..dim).map(|i| 0.5 + i as f32 / dim as f32).collect(),
                    beta: (0..dim).map(|i| i as f32 * 0.01 - 0.1).collect(),
                    eps: 1e-12,
                };
                let mut got = x.clone();
                dispatch(isa, &mut got, Some(&add), &p);
                for r in 0..rows {
                    let v: Vec<f64> = (0..dim)
                        .map(|j| (x[r * dim + j] + add[r * dim + j]) as f64)
                        .collect();
                    let mean = v.iter().sum::<f64>() / dim as f64;
                    let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / dim as f64;
                    for j in 0..dim {
                        let want = (v[j] - mean) / (var + 1e-12).sqrt() * p.gamma[j] as f64
                            + p.beta[j] as f64;
                        let g = got[r * dim + j] as f64;
                        assert!(
                            (g - want).abs() <= 2e-6 * (1.0 + want.abs()),
                            "{isa:?} dim {dim} ({r},{j}): {g} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
