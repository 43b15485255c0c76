//! Intel AMX (Advanced Matrix Extensions) for the bf16 GEMM: availability (CPUID + the Linux
//! tile-data permission), the tile configuration, and the 32×32 block kernel.
//!
//! Rust has no stable AMX intrinsics, so the instructions are written with `asm!`:
//! `ldtilecfg`, `tilezero`, `tileloadd`, `tdpbf16ps`, `tilestored`, `tilerelease`.
//!
//! Tile use in this module: `tmm0..tmm3` hold a 32×32 f32 output block as 2×2 tiles of
//! 16 rows × 16 f32; `tmm4`/`tmm5` the two 16-row halves of a 32-row `A` slice (16 rows ×
//! 32 bf16 = 64 bytes each); `tmm6`/`tmm7` two 16-column `B` panels in VNNI layout (16 rows of
//! k-pairs × 16 columns × 2 bf16). Every tile is configured as 16 rows × 64 bytes, the
//! maximum, so one `tdpbf16ps` does 16·16·32 = 8192 multiply-adds.
//!
//! Tile registers and their configuration are per thread: [`TileGuard::new`] loads the
//! configuration on the calling thread and releases the tiles when dropped. Kernels must not
//! yield to other work in between (no rayon calls), so a guard is taken per GEMM task.

#[cfg(target_arch = "x86_64")]
use std::arch::asm;
use std::sync::OnceLock;

/// `arch_prctl` code that asks for permission to use an extended state component.
#[cfg(target_arch = "x86_64")]
const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
/// XSAVE feature number of AMX tile data.
#[cfg(target_arch = "x86_64")]
const XFEATURE_XTILEDATA: libc::c_ulong = 18;

static AVAILABLE: OnceLock<bool> = OnceLock::new();

/// Whether this process may run AMX bf16 instructions: the CPU reports `amx-tile` and
/// `amx-bf16` (CPUID leaf 7) and Linux granted the tile-data permission. Checked (and the
/// permission requested, process-wide) once.
pub fn available() -> bool {
    *AVAILABLE.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            let max_leaf = std::arch::x86_64::__cpuid(0).eax;
            if max_leaf < 7 {
                return false;
            }
            let leaf7 = std::arch::x86_64::__cpuid_count(7, 0);
            let amx_bf16 = leaf7.edx & (1 << 22) != 0;
            let amx_tile = leaf7.edx & (1 << 24) != 0;
            if !(amx_bf16 && amx_tile) {
                return false;
            }
            // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) only changes this
            // process's permitted XSAVE features; it fails cleanly (-1) on kernels without
            // AMX support.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_arch_prctl,
                    ARCH_REQ_XCOMP_PERM,
                    XFEATURE_XTILEDATA,
                )
            };
            if rc != 0 {
                tracing::debug!("AMX present but arch_prctl(ARCH_REQ_XCOMP_PERM) failed");
            }
            rc == 0
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        {
            false
        }
    })
}

/// The 64-byte operand of `ldtilecfg` (palette 1). Reserved bytes must be zero.
#[repr(C, align(64))]
struct TileConfig {
    palette_id: u8,
    start_row: u8,
    reserved: [u8; 14],
    /// Bytes per row of tiles 0..16.
    colsb: [u16; 16],
    /// Rows of tiles 0..16.
    rows: [u8; 16],
}

/// Tiles 0..8 configured as 16 rows × 64 bytes, tiles 8..16 unused.
const CONFIG: TileConfig = TileConfig {
    palette_id: 1,
    start_row: 0,
    reserved: [0; 14],
    colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
    rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
};

/// Tiles configured on the current thread; released on drop. Not `Send`: the configuration
/// belongs to the thread that made it.
pub struct TileGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TileGuard {
    /// Loads [`CONFIG`] on the calling thread.
    ///
    /// # Safety
    /// [`available`] must have returned `true`.
    #[cfg(target_arch = "x86_64")]
    pub unsafe fn new() -> Self {
        // SAFETY: AMX usable (caller's contract); CONFIG is a valid palette-1 configuration
        // (reserved bytes zero, rows ≤ 16, colsb ≤ 64) and 64-byte aligned.
        unsafe {
            asm!("ldtilecfg [{cfg}]", cfg = in(reg) &CONFIG as *const TileConfig, options(nostack, readonly))
        };
        TileGuard {
            _not_send: std::marker::PhantomData,
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for TileGuard {
    fn drop(&mut self) {
        // SAFETY: tiles were configured by `new` on this thread (the guard is not Send).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

/// `c[32 × 32] = A[32 × k_pad] · B[k_pad × 32]` in f32 with bf16 operands.
///
/// - `a`: 32 rows of `k_pad` bf16, row `i` at `a + i·lda` (`lda` in elements);
/// - `b0`, `b1`: two 16-column panels in VNNI layout, `k_pad / 2` rows of 32 bf16 each
///   (row `r` holds `B[2r][j], B[2r+1][j]` for `j = 0..16`);
/// - `c`: 32 rows of 32 f32, row stride 32.
///
/// # Safety
/// A [`TileGuard`] is live on this thread; `k_pad % 32 == 0`; the pointers are valid for the
/// elements named above (`a` reads, `c` writes).
#[cfg(target_arch = "x86_64")]
#[inline]
pub unsafe fn block_32x32(
    a: *const u16,
    lda: usize,
    b0: *const u16,
    b1: *const u16,
    k_pad: usize,
    c: *mut f32,
) {
    // SAFETY: forwarded contract; no bias; c has row stride 32 floats.
    unsafe { block_32x32_bias(a, lda, b0, b1, k_pad, std::ptr::null(), c, 32) }
}

/// [`block_32x32`] with the sums started from `bias[0..32]` (broadcast down the rows; null =
/// zero) and stored straight into `c` with row stride `ldc` floats:
/// `c[i·ldc + j] = bias[j] + Σ_kk A[i, kk]·B[kk, j]` for `i, j < 32`.
///
/// # Safety
/// As [`block_32x32`]; `bias` null or valid for 32 floats; `c` valid for writes of 32 rows
/// of 32 floats at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn block_32x32_bias(
    a: *const u16,
    lda: usize,
    b0: *const u16,
    b1: *const u16,
    k_pad: usize,
    bias: *const f32,
    c: *mut f32,
    ldc: usize,
) {
    debug_assert!(k_pad.is_multiple_of(32));
    let a_stride = lda * 2;
    if bias.is_null() {
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
    } else {
        // SAFETY: with stride 0 every tile row is loaded from the same 64 bytes: bias[0..16]
        // for the left tiles, bias[16..32] for the right ones (caller's contract: 32 floats).
        unsafe {
            asm!(
                "tileloadd tmm0, [{l} + {z}]",
                "tileloadd tmm1, [{r} + {z}]",
                "tileloadd tmm2, [{l} + {z}]",
                "tileloadd tmm3, [{r} + {z}]",
                l = in(reg) bias,
                r = in(reg) bias.add(16),
                z = in(reg) 0usize,
                options(nostack, readonly)
            )
        };
    }
    for s in 0..k_pad / 32 {
        // SAFETY: each tileloadd reads 16 rows of 64 bytes: A rows 0..16 / 16..32 at bf16
        // columns 32s..32s+32 (stride lda·2 bytes), and the 16 VNNI rows 16s..16s+16 of each
        // B panel (contiguous, stride 64 bytes) — all inside the caller's buffers.
        unsafe {
            asm!(
                "tileloadd tmm4, [{a0} + {sa}]",
                "tileloadd tmm5, [{a1} + {sa}]",
                "tileloadd tmm6, [{p0} + {sb}]",
                "tileloadd tmm7, [{p1} + {sb}]",
                "tdpbf16ps tmm0, tmm4, tmm6",
                "tdpbf16ps tmm1, tmm4, tmm7",
                "tdpbf16ps tmm2, tmm5, tmm6",
                "tdpbf16ps tmm3, tmm5, tmm7",
                a0 = in(reg) a.add(s * 32),
                a1 = in(reg) a.add(16 * lda + s * 32),
                sa = in(reg) a_stride,
                p0 = in(reg) b0.add(s * 512),
                p1 = in(reg) b1.add(s * 512),
                sb = in(reg) 64usize,
                options(nostack, readonly)
            )
        };
    }
    // SAFETY: c holds 32 rows of 32 f32 at stride ldc (caller's contract); each tile stores
    // 16 rows × 64 bytes into its quarter.
    unsafe {
        asm!(
            "tilestored [{c00} + {sc}], tmm0",
            "tilestored [{c01} + {sc}], tmm1",
            "tilestored [{c10} + {sc}], tmm2",
            "tilestored [{c11} + {sc}], tmm3",
            c00 = in(reg) c,
            c01 = in(reg) c.add(16),
            c10 = in(reg) c.add(16 * ldc),
            c11 = in(reg) c.add(16 * ldc + 16),
            sc = in(reg) ldc * 4,
            options(nostack)
        )
    };
}
