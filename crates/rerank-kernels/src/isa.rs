//! Run-time choice of the kernels' instruction set.

use std::sync::OnceLock;

/// Instruction set a kernel is compiled for. Ordered from most to least capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F: 14×32 GEMM micro-kernel, 16-lane `exp` / `erf`.
    Avx512,
    /// AVX2 + FMA: 6×16 GEMM micro-kernel; element-wise maths in scalar code.
    Avx2Fma,
    /// Portable Rust, any CPU.
    Scalar,
}

static ACTIVE: OnceLock<Isa> = OnceLock::new();

impl Isa {
    /// The best instruction set this CPU supports, detected once.
    ///
    /// `RERANK_KERNEL_ISA=avx2` or `=scalar` forces a lower one (debugging, benchmarks); a
    /// request for an unsupported instruction set is ignored. (`amx` and `avx512bf16`, which
    /// choose the bf16 kernels, see [`Bf16Isa::active`], mean `avx512` here.)
    pub fn active() -> Isa {
        *ACTIVE.get_or_init(|| {
            let best = Self::available()[0];
            let forced = match std::env::var("RERANK_KERNEL_ISA").ok().as_deref() {
                Some("avx512" | "avx512bf16" | "amx") => Some(Isa::Avx512),
                Some("avx2") => Some(Isa::Avx2Fma),
                Some("scalar") => Some(Isa::Scalar),
                _ => None,
            };
            match forced {
                Some(f) if Self::available().contains(&f) => f,
                _ => best,
            }
        })
    }

    /// Every instruction set usable on this CPU, best first (always ends with `Scalar`).
    pub fn available() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa::Avx2Fma);
            }
        }
        v.push(Isa::Scalar);
        v
    }

    /// Rows of the GEMM micro-kernel (the `MR` of the packed `A` panels).
    pub fn mr(self) -> usize {
        match self {
            Isa::Avx512 => 14,
            Isa::Avx2Fma => 6,
            Isa::Scalar => 4,
        }
    }
}

/// Instruction set of the bf16 GEMM (the bf16 storage of [`crate::Linear`]). Ordered from most to
/// least capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Isa {
    /// AMX tiles (`tdpbf16ps`): 32×32 output blocks from 2×2 tiles of 16×16 f32.
    Amx,
    /// AVX512-BF16 (`vdpbf16ps`): 8×32 output blocks in 16 zmm accumulators.
    Avx512Bf16,
    /// AVX2 + FMA on the same packed bf16 operands, widened to f32 in registers (exact):
    /// 2×32 output strips in 8 ymm accumulators. CPUs without AVX512-BF16 (AMD Zen 2/3, Intel
    /// Skylake to Ice Lake).
    Avx2Fma,
    /// Portable Rust on the same packed operands (slow; any CPU).
    Scalar,
}

static ACTIVE_BF16: OnceLock<Bf16Isa> = OnceLock::new();

impl Bf16Isa {
    /// The best bf16 instruction set usable here, chosen once per process.
    ///
    /// `RERANK_KERNEL_ISA` caps it like the f32 one: `amx` (or unset) = the best available,
    /// `avx512bf16` = no AMX, `avx512` / `avx2` = the AVX2 + FMA kernel, `scalar` = the
    /// portable kernel. AMX counts as
    /// available only if the CPU has `amx-tile` + `amx-bf16` and Linux grants the tile-data
    /// permission (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, requested here).
    pub fn active() -> Bf16Isa {
        *ACTIVE_BF16.get_or_init(|| {
            let available = Self::available();
            let cap = match std::env::var("RERANK_KERNEL_ISA").ok().as_deref() {
                Some("avx512bf16") => Bf16Isa::Avx512Bf16,
                Some("avx512" | "avx2") => Bf16Isa::Avx2Fma,
                Some("scalar") => Bf16Isa::Scalar,
                _ => Bf16Isa::Amx,
            };
            available
                .into_iter()
                .find(|&i| i as u8 >= cap as u8)
                .unwrap_or(Bf16Isa::Scalar)
        })
    }

    /// Every bf16 instruction set usable in this process, best first (ends with `Scalar`).
    pub fn available() -> Vec<Bf16Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if super::amx::available() {
                v.push(Bf16Isa::Amx);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bf16")
            {
                v.push(Bf16Isa::Avx512Bf16);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Bf16Isa::Avx2Fma);
            }
        }
        v.push(Bf16Isa::Scalar);
        v
    }
}
