//! Element-wise activations over slices, in place, matching `torch.nn.functional`: exact GELU
//! (`gelu`, erf form), tanh GELU (`gelu_new` / `gelu_pytorch_tanh`), ReLU, SiLU and tanh; and
//! the gated MLP activations GeGLU and SwiGLU ([`glu`]).
//!
//! Exact GELU and SiLU are vectorised (AVX-512) with [`crate::vmath`]'s `erf` / `exp`, whose
//! vector and scalar forms give the same bits; the others are scalar (rare or tiny inputs).

use crate::isa::Isa;
use crate::vmath;

/// An activation function by its transformers name (`hidden_act`, `hidden_activation`,
/// `classifier_activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU with erf (`"gelu"`).
    GeluErf,
    /// Tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`).
    GeluTanh,
    /// `"relu"`.
    Relu,
    /// `x·σ(x)` (`"silu"`, `"swish"`).
    Silu,
    /// `"tanh"`.
    Tanh,
}

impl Activation {
    /// The activation transformers' `ACT2FN[name]` builds, if this crate has it.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            _ => return None,
        })
    }

    /// Applies the activation in place.
    pub fn apply(self, xs: &mut [f32]) {
        match self {
            Activation::GeluErf => gelu_erf(xs),
            Activation::GeluTanh => gelu_tanh(xs),
            Activation::Relu => relu(xs),
            Activation::Silu => silu(xs),
            Activation::Tanh => tanh(xs),
        }
    }
}

/// Exact GELU `x · 0.5 · (1 + erf(x/√2))` in place.
pub fn gelu_erf(xs: &mut [f32]) {
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
        Isa::Avx512 => unsafe { x86::map_avx512(xs, x86::Op::Gelu) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA are present when `Isa::Avx2Fma` is chosen.
        Isa::Avx2Fma => unsafe { x86::gelu_fma(xs) },
        _ => xs.iter_mut().for_each(|v| *v = vmath::gelu_erf(*v)),
    }
}

/// GELU with [`vmath::erf_fast`] (absolute error ≤ 2.5·10⁻⁷·|x| + 2 ulp) in place: the
/// activation of the bf16 and int8 GEMM epilogues, whose output is rounded to bf16 next.
pub fn gelu_erf_fast(xs: &mut [f32]) {
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
        Isa::Avx512 => unsafe { x86::map_avx512(xs, x86::Op::GeluFast) },
        _ => xs.iter_mut().for_each(|v| *v = vmath::gelu_erf_fast(*v)),
    }
}

/// Tanh-approximated GELU `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` in place.
pub fn gelu_tanh(xs: &mut [f32]) {
    const K: f32 = 0.797_884_6; // √(2/π)
    for v in xs {
        let x = *v;
        *v = 0.5 * x * (1.0 + (K * (x + 0.044_715 * x * x * x)).tanh());
    }
}

/// `max(x, 0)` in place.
pub fn relu(xs: &mut [f32]) {
    xs.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// SiLU `x / (1 + e^-x)` in place (PyTorch's CPU formula), `exp` from [`vmath::exp`].
pub fn silu(xs: &mut [f32]) {
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
        Isa::Avx512 => unsafe { x86::map_avx512(xs, x86::Op::Silu) },
        _ => xs.iter_mut().for_each(|v| *v = silu_one(*v)),
    }
}

#[inline(always)]
fn silu_one(x: f32) -> f32 {
    x / (1.0 + vmath::exp(-x))
}

/// `tanh` in place (libm's, correctly rounded to ≈1 ulp).
pub fn tanh(xs: &mut [f32]) {
    xs.iter_mut().for_each(|v| *v = v.tanh());
}

/// Gated linear unit of a fused `[rows, 2·inter]` projection: the first `inter` columns of a
/// row are the input, the last `inter` the gate, and
/// `out[r, j] = act(x[r, j]) · x[r, inter + j]` (`out`: `[rows, inter]`).
///
/// - GeGLU (`act = GeluErf`): transformers' `ModernBertMLP`,
///   `input, gate = Wi(x).chunk(2, dim=-1); act(input) * gate`;
/// - SwiGLU (`act = Silu`): Llama / Qwen3's `act_fn(gate_proj(x)) * up_proj(x)` with
///   `gate_proj` and `up_proj` stacked in that order into one projection.
///
/// Panics if `x` is not `[rows, 2·inter]` or `out` not `[rows, inter]` for some `rows`.
pub fn glu(act: Activation, x: &[f32], inter: usize, out: &mut [f32]) {
    if inter == 0 {
        return;
    }
    assert!(
        x.len().is_multiple_of(2 * inter) && out.len() * 2 == x.len(),
        "glu: x is not [rows, {}] or out not [rows, {inter}]",
        2 * inter
    );
    for (row, o) in x.chunks_exact(2 * inter).zip(out.chunks_exact_mut(inter)) {
        let (input, gate) = row.split_at(inter);
        o.copy_from_slice(input);
        act.apply(o);
        o.iter_mut().zip(gate).for_each(|(v, g)| *v *= g);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::vmath;

    #[derive(Clone, Copy)]
    pub(super) enum Op {
        Gelu,
        GeluFast,
        Silu,
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn gelu_fma(xs: &mut [f32]) {
        xs.iter_mut().for_each(|v| *v = vmath::gelu_erf(*v));
    }

    #[target_feature(enable = "avx512f")]
    fn op(v: __m512, op: Op) -> __m512 {
        match op {
            Op::Gelu => vmath::avx512::gelu_erf(v),
            Op::GeluFast => vmath::avx512::gelu_erf_fast(v),
            Op::Silu => {
                let e = vmath::avx512::exp(_mm512_sub_ps(_mm512_setzero_ps(), v));
                _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0), e))
            }
        }
    }

    /// `op` over 16 floats at a time, masked tail.
    #[target_feature(enable = "avx512f")]
    pub(super) fn map_avx512(xs: &mut [f32], which: Op) {
        let mut chunks = xs.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: the chunk holds 16 floats.
            unsafe {
                let v = _mm512_loadu_ps(c.as_ptr());
                _mm512_storeu_ps(c.as_mut_ptr(), op(v, which));
            }
        }
        let rest = chunks.into_remainder();
        let m = ((1u32 << rest.len()) - 1) as __mmask16;
        // SAFETY: the mask limits the access to the rest.len() < 16 remaining floats.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, rest.as_ptr());
            _mm512_mask_storeu_ps(rest.as_mut_ptr(), m, op(v, which));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_slice_equals_scalar() {
        let mut xs: Vec<f32> = (0..1003).map(|i| i as f32 / 100.0 - 5.0).collect();
        let mut fast = xs.clone();
        let want: Vec<f32> = xs.iter().map(|&x| vmath::gelu_erf(x)).collect();
        let want_fast: Vec<f32> = xs.iter().map(|&x| vmath::gelu_erf_fast(x)).collect();
        gelu_erf(&mut xs);
        assert_eq!(xs, want);
        gelu_erf_fast(&mut fast);
        assert_eq!(fast, want_fast);
    }

    #[test]
    fn silu_slice_equals_scalar_and_f64() {
        let mut xs: Vec<f32> = (0..1003).map(|i| i as f32 / 20.0 - 25.0).collect();
        let orig = xs.clone();
        let want: Vec<f32> = xs.iter().map(|&x| silu_one(x)).collect();
        silu(&mut xs);
        assert_eq!(xs, want);
        for (&g, &x) in xs.iter().zip(&orig) {
            let w = x as f64 / (1.0 + (-(x as f64)).exp());
            assert!(
                (g as f64 - w).abs() <= 3e-7 * (1.0 + w.abs()),
                "silu({x}) = {g}, want {w}"
            );
        }
    }

    #[test]
    fn other_activations() {
        let mut v = vec![-1.0f32, 0.0, 2.0];
        relu(&mut v);
        assert_eq!(v, vec![0.0, 0.0, 2.0]);
        let mut v = vec![1.0f32];
        silu(&mut v);
        assert!((v[0] - 0.731_058_6).abs() < 1e-6);
        let mut v = vec![1.0f32];
        gelu_tanh(&mut v);
        assert!((v[0] - 0.841_191_9).abs() < 1e-6);
        let mut v = vec![0.5f32];
        tanh(&mut v);
        assert!((v[0] - 0.462_117_16).abs() < 1e-7);
        assert_eq!(Activation::from_name("gelu"), Some(Activation::GeluErf));
        assert_eq!(Activation::from_name("swish"), Some(Activation::Silu));
        assert_eq!(Activation::from_name("mish"), None);
    }

    #[test]
    fn glu_rows_are_independent() {
        let inter = 37;
        let x: Vec<f32> = (0..5 * 2 * inter)
            .map(|i| (i % 23) as f32 / 7.0 - 1.5)
            .collect();
        for act in [Activation::GeluErf, Activation::Silu] {
            let mut all = vec![0f32; 5 * inter];
            glu(act, &x, inter, &mut all);
            for r in 0..5 {
                let mut one = vec![0f32; inter];
                glu(act, &x[r * 2 * inter..(r + 1) * 2 * inter], inter, &mut one);
                assert_eq!(
                    &one[..],
                    &all[r * inter..(r + 1) * inter],
                    "{act:?} row {r}"
                );
            }
        }
    }

    #[test]
    fn geglu_and_swiglu_take_the_input_first_and_the_gate_second() {
        let inter = 3;
        // Two rows of [input (3) | gate (3)].
        let x = [
            0.5f32, -1.0, 2.0, 10.0, 20.0, 30.0, 1.0, 0.0, -3.0, -1.0, 2.0, 0.5,
        ];
        for act in [Activation::GeluErf, Activation::Silu] {
            let mut out = vec![0f32; 6];
            glu(act, &x, inter, &mut out);
            for r in 0..2 {
                for j in 0..inter {
                    let (a, g) = (x[r * 6 + j] as f64, x[r * 6 + inter + j] as f64);
                    let act_a = match act {
                        Activation::GeluErf => a * 0.5 * (1.0 + libm::erf(a / 2f64.sqrt())),
                        _ => a / (1.0 + (-a).exp()),
                    };
                    let want = act_a * g;
                    let got = out[r * inter + j] as f64;
                    assert!(
                        (got - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "{act:?} ({r},{j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
