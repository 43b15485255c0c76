//! Numeric precision of the linear layers: the one place a model's precision is decided
//! ([`crate::Linear::new`] takes it; everything else is f32).

/// How a model's linear layers (Q/K/V, attention output, feed-forward up and down) compute.
/// Everything else — embeddings, attention scores / softmax / context, norms, activations,
/// residual adds, the classification head — is f32 in every mode.
///
/// `#[non_exhaustive]`: an int8 mode is planned; match with a wildcard arm outside this
/// crate, or better, ask the precision itself ([`Precision::compute_dtype`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
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

impl Precision {
    /// What the model computes in, for `info()`: `"F32"` or
    /// `"BF16 linear layers, F32 accumulation"`.
    pub fn compute_dtype(self) -> &'static str {
        match self {
            Precision::F32 => "F32",
            Precision::Bf16 => "BF16 linear layers, F32 accumulation",
        }
    }

    /// Short lower-case name (`"f32"`, `"bf16"`), as the CLI's `--precision` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
