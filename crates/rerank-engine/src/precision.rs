//! Numeric precision of the encoder's linear layers.

/// How the encoder's linear layers (Q/K/V, attention output, feed-forward up and down)
/// compute. Everything else — embeddings, attention scores / softmax / context, LayerNorm,
/// GELU, residual adds, the pooler / classification head — is f32 in both modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 throughout: logits match PyTorch fp32 to ≈1e-5 (the default).
    #[default]
    F32,
    /// bf16 GEMM inputs with f32 accumulation: each linear layer's weight is rounded to bf16
    /// (round-to-nearest-even) at load time and its input activations just before the
    /// product; sums, bias, and the output are f32. Runs on AMX tiles when the CPU and OS
    /// allow (Sapphire Rapids and later, Linux), else AVX512-BF16, else a slow portable
    /// kernel. Not PyTorch parity: on the `minilm-l6-sotu-ce` reference cases the logits
    /// moved by at most 0.025 (measured; the `bf16_parity` test allows 0.1) and the ranking
    /// of every reference case and rank case was kept. About 2× the f32 throughput on
    /// Sapphire Rapids (AMX).
    Bf16,
}
