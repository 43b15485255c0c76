//! Element-wise activations over slices, in place, matching `torch.nn.functional`:
//! exact GELU (`gelu`, erf form), tanh GELU (`gelu_new` / `gelu_pytorch_tanh`), ReLU, SiLU and
//! tanh. Exact GELU is vectorised (AVX-512) since it runs on every FFN activation when it is
//! not already fused into the GEMM epilogue; the others are scalar (rare or tiny inputs).

use super::isa::Isa;
use super::vmath;

/// Exact GELU `x · 0.5 · (1 + erf(x/√2))` in place.
pub fn gelu_erf(xs: &mut [f32]) {
    match Isa::active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
        Isa::Avx512 => unsafe { x86::gelu_avx512(xs) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA are present when `Isa::Avx2Fma` is chosen.
        Isa::Avx2Fma => unsafe { x86::gelu_fma(xs) },
        _ => xs.iter_mut().for_each(|v| *v = vmath::gelu_erf(*v)),
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

/// SiLU `x · σ(x)` in place.
pub fn silu(xs: &mut [f32]) {
    xs.iter_mut().for_each(|v| *v /= 1.0 + (-*v).exp());
}

/// `tanh` in place (libm's, correctly rounded to ≈1 ulp).
pub fn tanh(xs: &mut [f32]) {
    xs.iter_mut().for_each(|v| *v = v.tanh());
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::vmath;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn gelu_fma(xs: &mut [f32]) {
        xs.iter_mut().for_each(|v| *v = vmath::gelu_erf(*v));
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn gelu_avx512(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(16);
        for c in &mut chunks {
            // SAFETY: the chunk holds 16 floats.
            unsafe {
                let v = _mm512_loadu_ps(c.as_ptr());
                _mm512_storeu_ps(c.as_mut_ptr(), vmath::avx512::gelu_erf(v));
            }
        }
        let rest = chunks.into_remainder();
        let m = ((1u32 << rest.len()) - 1) as __mmask16;
        // SAFETY: the mask limits the access to the rest.len() < 16 remaining floats.
        unsafe {
            let v = _mm512_maskz_loadu_ps(m, rest.as_ptr());
            _mm512_mask_storeu_ps(rest.as_mut_ptr(), m, vmath::avx512::gelu_erf(v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gelu_slice_equals_scalar() {
        let mut xs: Vec<f32> = (0..1003).map(|i| i as f32 / 100.0 - 5.0).collect();
        let want: Vec<f32> = xs.iter().map(|&x| vmath::gelu_erf(x)).collect();
        gelu_erf(&mut xs);
        assert_eq!(xs, want);
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
    }
}
