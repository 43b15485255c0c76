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

/// Instruction set of the int8 GEMM (the int8 storage of [`crate::Linear`]). Ordered from most
/// to least capable. Every path computes the same exact i32 sums, so they give the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Isa {
    /// AMX-INT8 tiles (`tdpbusd`): 32×32 i32 blocks from 2×2 tiles of 16×16 (Sapphire Rapids
    /// and later, Linux).
    Amx,
    /// AVX512-VNNI (`vpdpbusd`): 8×32 i32 strips in 16 zmm accumulators (Ice Lake and later,
    /// AMD Zen 4 and later).
    Avx512Vnni,
    /// Portable Rust on the same packed operands (slow; any CPU).
    Scalar,
}

static ACTIVE_INT8: OnceLock<Int8Isa> = OnceLock::new();

impl Int8Isa {
    /// The best int8 instruction set usable here, chosen once per process:
    /// [`Int8Isa::select`] of [`Int8Isa::available`] and `RERANK_KERNEL_ISA`.
    pub fn active() -> Int8Isa {
        *ACTIVE_INT8.get_or_init(|| {
            Self::select(
                &Self::available(),
                std::env::var("RERANK_KERNEL_ISA").ok().as_deref(),
            )
        })
    }

    /// The int8 instruction set chosen from `available` (best first) under the
    /// `RERANK_KERNEL_ISA` value `request`, which caps it like the bf16 one: `amx` (or unset,
    /// or unknown) = the best available, `avx512vnni` or `avx512bf16` = no AMX, `avx512`,
    /// `avx2` or `scalar` = the portable kernel. The result is always in `available` or
    /// `Scalar`.
    pub fn select(available: &[Int8Isa], request: Option<&str>) -> Int8Isa {
        let cap = match request {
            Some("avx512vnni" | "avx512bf16") => Int8Isa::Avx512Vnni,
            Some("avx512" | "avx2" | "scalar") => Int8Isa::Scalar,
            _ => Int8Isa::Amx,
        };
        available
            .iter()
            .copied()
            .find(|&i| i as u8 >= cap as u8)
            .unwrap_or(Int8Isa::Scalar)
    }

    /// Every int8 instruction set usable in this process, best first (ends with `Scalar`).
    /// AMX counts only if the CPU has `amx-int8` and the tile permission was granted
    /// (see [`Bf16Isa::active`]).
    pub fn available() -> Vec<Int8Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if super::amx_int8::available() {
                v.push(Int8Isa::Amx);
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                v.push(Int8Isa::Avx512Vnni);
            }
        }
        v.push(Int8Isa::Scalar);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_selection_follows_the_cap_and_availability() {
        use Int8Isa::*;
        let all = [Amx, Avx512Vnni, Scalar];
        let no_amx = [Avx512Vnni, Scalar];
        let none = [Scalar];
        for (avail, req, want) in [
            (&all[..], None, Amx),
            (&all[..], Some("amx"), Amx),
            (&all[..], Some("bogus"), Amx),
            (&all[..], Some("avx512vnni"), Avx512Vnni),
            (&all[..], Some("avx512bf16"), Avx512Vnni),
            (&all[..], Some("avx512"), Scalar),
            (&all[..], Some("avx2"), Scalar),
            (&all[..], Some("scalar"), Scalar),
            (&no_amx[..], None, Avx512Vnni),
            (&no_amx[..], Some("amx"), Avx512Vnni),
            (&no_amx[..], Some("scalar"), Scalar),
            (&none[..], None, Scalar),
            (&none[..], Some("avx512vnni"), Scalar),
            (&[][..], None, Scalar),
        ] {
            assert_eq!(Int8Isa::select(avail, req), want, "{avail:?} {req:?}");
        }
    }

    #[test]
    fn active_int8_isa_is_available_and_honours_the_variable() {
        let avail = Int8Isa::available();
        assert_eq!(avail.last(), Some(&Int8Isa::Scalar));
        let active = Int8Isa::active();
        assert!(avail.contains(&active));
        let req = std::env::var("RERANK_KERNEL_ISA").ok();
        assert_eq!(active, Int8Isa::select(&avail, req.as_deref()));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            avail.contains(&Int8Isa::Avx512Vnni),
            std::arch::is_x86_feature_detected!("avx512vnni")
                && std::arch::is_x86_feature_detected!("avx512f")
        );
    }
}
