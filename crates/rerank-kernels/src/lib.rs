//! # rerank-kernels
//!
//! The CPU kernels of rerank's hot path. No model knowledge: a model file composes these.
//!
//! Public, safe API (one idea per file):
//! - [`linear`]: [`Linear`], the `nn.Linear` of every model — weight packed once for its
//!   [`Precision`] (f32 panels, bf16 VNNI panels, or int8 VNNI panels with per-channel
//!   scales), optional bias, column
//!   ranges, row-major or per-head output ([`layout`]), GELU fused into the store;
//! - [`attention`]: scaled dot-product attention over ragged sequences — bidirectional,
//!   causal or sliding-window masks, grouped-query heads, any head width, a chosen subset of
//!   query rows;
//! - [`rope`]: rotary position embedding (transformers' rotate-half convention, f32 angles);
//! - [`norm`]: LayerNorm (with or without bias) and RMSNorm, in place or into a buffer, with
//!   the residual add fused;
//! - [`activation`]: GELU (erf and tanh), ReLU, SiLU, tanh, and the gated GeGLU / SwiGLU;
//! - [`embed`]: embedding gather + add; [`softmax`]: scaled row / column softmax;
//! - [`precision`], [`schedule`] ([`Parallelism`]), [`layout`], [`buffer`], [`isa`] (which
//!   instruction set runs, detected once; `RERANK_KERNEL_ISA` forces a lower one), [`vmath`]
//!   (accurate `exp` / `erf`).
//!
//! Internals (`pub(crate)`): the f32 GEMM driver and micro-kernels (14×32 AVX-512, 6×16
//! AVX2, 4×32 portable) and operand packing; the bf16 GEMM (AMX tiles, AVX512-BF16, portable)
//! and its packing; the int8 GEMM (AMX-INT8 tiles, AVX512-VNNI, portable; per-channel
//! weights, per-token dynamic activations, exact i32 sums) and its quantization and packing;
//! the task grid shared by the drivers ([`schedule`]).
//!
//! All matrices are row-major `f32` slices. Numerics follow PyTorch's CPU kernels (two-pass
//! LayerNorm statistics, `x · 0.5 · (1 + erf(x/√2))`, max-subtracted softmax); f32 results
//! differ from PyTorch only by f32 rounding order (≈1e-6 relative). Every kernel computes a
//! row by the same operations whatever else is in the batch and whichever thread runs it, so
//! serial and parallel runs, and a sequence alone or in a batch, give the same bits.
//!
//! Safety: every `unsafe` block states the invariant it relies on in a `// SAFETY:` comment
//! (enforced by `clippy::undocumented_unsafe_blocks`), and unsafe functions do not get an
//! implicit unsafe body (`unsafe_op_in_unsafe_fn`).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod activation;
pub(crate) mod amx;
pub(crate) mod amx_int8;
pub mod attention;
pub mod attention_bf16;
pub(crate) mod bf16;
pub mod buffer;
pub mod embed;
pub(crate) mod gemm;
pub(crate) mod gemm_bf16;
pub(crate) mod gemm_int8;
pub(crate) mod int8;
pub mod isa;
pub mod layout;
pub mod linear;
pub(crate) mod microkernel;
pub mod norm;
pub(crate) mod pack;
pub mod precision;
pub mod rope;
pub mod schedule;
pub mod softmax;
pub mod vmath;

pub use activation::Activation;
pub use attention::{Attention, AttentionMask, SeqSpan};
pub use layout::{HeadLayout, OutLayout};
pub use linear::{Linear, OutSpec};
pub use norm::{LayerNorm, RmsNorm};
pub use precision::Precision;
pub use rope::Rope;
pub use schedule::Parallelism;
