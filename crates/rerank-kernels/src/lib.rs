//! Hand-written f32 CPU kernels of the encoder's hot path.
//!
//! One idea per file:
//! - [`isa`]: which instruction set the kernels use (AVX-512, AVX2+FMA or portable scalar),
//!   detected once at run time;
//! - [`buffer`]: 64-byte aligned, grow-only scratch buffers;
//! - [`microkernel`]: the register-blocked GEMM inner kernels (14×32 AVX-512, 6×16 AVX2,
//!   4×32 scalar);
//! - [`pack`]: packing of GEMM operands into panels (AVX-512 16×16 transposes);
//! - [`gemm`]: `C = A · Wᵀ (+ bias)` with weights packed once ([`gemm::PackedLinear`]), cache
//!   blocking, packing of `A`, 2-D task parallelism (rayon), row-major or per-head output
//!   blocks, and a strided variant for attention;
//! - [`vmath`]: accurate `exp` and `erf` (scalar and 16-lane AVX-512);
//! - [`activation`]: GELU (erf and tanh forms), ReLU, SiLU, tanh over slices;
//! - [`norm`]: LayerNorm, with the residual add fused;
//! - [`softmax`]: scaled softmax over rows or over columns (transposed scores);
//! - [`embed`]: embedding gather + add;
//! - [`attention`]: multi-head self-attention over the real (unpadded) tokens of each sequence,
//!   parallel over (sequence, head), scores computed transposed so that the probabilities feed
//!   the GEMM micro-kernel without repacking.
//!
//! - [`bf16`], [`amx`], [`gemm_bf16`]: the bf16 GEMM of bf16 precision (bf16
//!   operands, f32 accumulation) on AMX tiles, AVX512-BF16 or portable code, chosen by
//!   [`isa::Bf16Isa`].
//!
//! All matrices are row-major `f32` slices. Numerics follow PyTorch's CPU kernels (two-pass
//! LayerNorm statistics, `x · 0.5 · (1 + erf(x/√2))`, max-subtracted softmax); results differ
//! from PyTorch only by f32 rounding order (≈1e-6 relative).

pub mod activation;
pub mod amx;
pub mod attention;
pub mod bf16;
pub mod buffer;
pub mod embed;
pub mod gemm;
pub mod gemm_bf16;
pub mod isa;
pub mod microkernel;
pub mod norm;
pub mod pack;
pub mod softmax;
pub mod vmath;
