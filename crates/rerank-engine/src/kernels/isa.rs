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
    /// request for an unsupported instruction set is ignored.
    pub fn active() -> Isa {
        *ACTIVE.get_or_init(|| {
            let best = Self::available()[0];
            let forced = match std::env::var("RERANK_KERNEL_ISA").ok().as_deref() {
                Some("avx512") => Some(Isa::Avx512),
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
