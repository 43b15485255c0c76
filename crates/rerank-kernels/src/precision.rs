//! Numeric precision of the linear layers: the one place a model's precision is decided
//! ([`crate::Linear::new`] takes it; everything else is f32).

/// How a model's linear layers (Q/K/V, attention output, feed-forward up and down) compute.
/// Embeddings, softmax, norms, residual adds and the classification head are f32 in every
/// mode. Under bf16 and int8 the GEMM epilogues' GELU uses [`crate::vmath::erf_fast`] (error
/// < 5e-7), and the BERT / XLM-R encoders run their attention products (`Q·Kᵀ`, `P·V`) as
/// bf16 GEMMs ([`crate::Attention::run_bf16`]); f32 keeps the exact GELU and f32 attention.
///
/// `#[non_exhaustive]`: more modes may come; match with a wildcard arm outside this crate,
/// or better, ask the precision itself ([`Precision::compute_dtype`]).
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
    /// int8 GEMM inputs with exact i32 accumulation: each linear layer's weight is quantized
    /// at load time per output channel (symmetric, scale `max|w| / 127`), its input
    /// activations on every call per row / token (dynamic, scale `max|a| / 127`, no
    /// calibration data); the i32 sums are dequantized in f32 (`acc · s_a · s_w + bias`).
    /// Runs on AMX-INT8 tiles when the CPU and OS allow, else AVX512-VNNI, else a slow
    /// portable kernel; every path gives the same bits. Not PyTorch parity: each product is
    /// off by at most half a quantization step per operand element (kernel tests).
    Int8,
}

impl Precision {
    /// What the model computes in, for `info()`: `"F32"`,
    /// `"BF16 linear layers, F32 accumulation"` or
    /// `"INT8 linear layers (per-channel weights, per-token activations), INT32 accumulation"`.
    pub fn compute_dtype(self) -> &'static str {
        match self {
            Precision::F32 => "F32",
            Precision::Bf16 => "BF16 linear layers, F32 accumulation",
            Precision::Int8 => {
                "INT8 linear layers (per-channel weights, per-token activations), INT32 accumulation"
            }
        }
    }

    /// Short lower-case name (`"f32"`, `"bf16"`, `"int8"`), as the CLI's `--precision` spells
    /// it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
