//! Intel AMX-INT8 for the int8 GEMM: availability and the 32×32 block kernel (`tdpbusd`,
//! u8 activations × s8 weights, i32 sums).
//!
//! The tiles are configured exactly as for the bf16 kernel ([`crate::amx`]: eight tiles of
//! 16 rows × 64 bytes, taken per task with [`crate::amx::TileGuard`]): `tmm0..tmm3` hold the
//! 32×32 i32 output block as 2×2 tiles of 16×16 i32, `tmm4`/`tmm5` the two 16-row halves of
//! a 32-row `A` slice (16 rows × 64 u8), `tmm6`/`tmm7` two 16-column `B` panels in VNNI
//! order (16 rows of k-quads × 16 columns × 4 s8) — the layouts of [`crate::int8`]. One
//! `tdpbusd` does 16·16·64 = 16384 multiply-adds.
//!
//! Written with `asm!` (no stable AMX intrinsics), so it is compiled on every x86-64 CPU;
//! it only runs where [`available`] says so.

#[cfg(target_arch = "x86_64")]
use std::arch::asm;
use std::sync::OnceLock;

static AVAILABLE: OnceLock<bool> = OnceLock::new();

/// Whether this process may run AMX-INT8: the CPU reports `amx-int8` (CPUID leaf 7, EDX bit
/// 25) and [`crate::amx::available`] holds (`amx-tile`, `amx-bf16`, and Linux granted the
/// tile-data permission; every CPU with AMX-INT8 so far also has AMX-BF16).
pub fn available() -> bool {
    *AVAILABLE.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if !crate::amx::available() {
                return false;
            }
            let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
            leaf7.edx & (1 << 25) != 0
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `c[32 × 32] = A[32 × k_pad] · B[k_pad × 32]` in i32: `a` 32 rows of `k_pad` u8 at stride
/// `lda` bytes, `b0`/`b1` two 16-column panels of `k_pad / 4` VNNI rows of 64 s8, `c` 32 rows
/// of 32 i32 at stride 32.
///
/// # Safety
/// A [`crate::amx::TileGuard`] is live on this thread and [`available`] returned `true`;
/// `k_pad % 64 == 0`; the pointers are valid for the elements named above (`a`, `b` reads,
/// `c` writes).
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn block_32x32(
    a: *const u8,
    lda: usize,
    b0: *const i8,
    b1: *const i8,
    k_pad: usize,
    c: *mut i32,
) {
    debug_assert!(k_pad.is_multiple_of(64));
    // SAFETY: tiles configured (caller's contract); tilezero touches no memory.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            options(nostack, nomem)
        )
    };
    for s in 0..k_pad / 64 {
        // SAFETY: each tileloadd reads 16 rows of 64 bytes: A rows 0..16 / 16..32 at byte
        // columns 64s..64s+64, and the 16 VNNI rows 16s..16s+16 of each B panel
        // (contiguous, stride 64 bytes) — all inside the caller's buffers.
        unsafe {
            asm!(
                "tileloadd tmm4, [{a0} + {sa}]",
                "tileloadd tmm6, [{p0} + {sb}]",
                "tdpbusd tmm0, tmm4, tmm6",
                "tileloadd tmm7, [{p1} + {sb}]",
                "tdpbusd tmm1, tmm4, tmm7",
                "tileloadd tmm5, [{a1} + {sa}]",
                "tdpbusd tmm2, tmm5, tmm6",
                "tdpbusd tmm3, tmm5, tmm7",
                a0 = in(reg) a.add(s * 64),
                a1 = in(reg) a.add(16 * lda + s * 64),
                sa = in(reg) lda,
                p0 = in(reg) b0.add(s * 1024),
                p1 = in(reg) b1.add(s * 1024),
                sb = in(reg) 64usize,
                options(nostack, readonly)
            )
        };
    }
    // SAFETY: c holds 32 rows of 32 i32 at stride 32 (caller's contract); each tile stores
    // 16 rows × 64 bytes into its quarter.
    unsafe {
        asm!(
            "tilestored [{c00} + {sc}], tmm0",
            "tilestored [{c01} + {sc}], tmm1",
            "tilestored [{c10} + {sc}], tmm2",
            "tilestored [{c11} + {sc}], tmm3",
            c00 = in(reg) c,
            c01 = in(reg) c.add(16),
            c10 = in(reg) c.add(16 * 32),
            c11 = in(reg) c.add(16 * 32 + 16),
            sc = in(reg) 128usize,
            options(nostack)
        )
    };
}
