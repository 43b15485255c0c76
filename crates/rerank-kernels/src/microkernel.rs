//! GEMM micro-kernels: `C[rows, cols] (+)= Apanel · Bpanel` for one register tile.
//!
//! Operands are packed by [`super::gemm`]: an `A` panel is `kc × MR` (for each k, `MR` row
//! values, zero-padded), a `B` panel is `kc × NR` (for each k, `NR` column values,
//! zero-padded). The tile is accumulated over the whole `kc` in registers, then the
//! [`Epilogue`] optionally adds the existing `C`, a bias row and applies exact GELU before the
//! (column-masked) store.
//!
//! | ISA        | tile (MR×NR) | registers                               |
//! |------------|--------------|-----------------------------------------|
//! | AVX-512F   | 14 × 32      | 28 zmm accumulators + 2 `B` + broadcast |
//! | AVX2 + FMA | 6 × 16 (×2)  | 12 ymm accumulators + 2 `B` + broadcast |
//! | scalar     | 4 × 32       | left to the compiler                    |

use super::isa::Isa;
use super::vmath;

/// Columns of a packed `B` panel (every ISA uses the same packed weights).
pub const NR: usize = 32;

/// What the kernel does with the accumulated tile before storing it.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue {
    /// Add the current contents of `C` (k-blocks after the first).
    pub accumulate: bool,
    /// Add `bias[0..cols]` to every row (null: no bias). Must point at `NR` readable floats.
    pub bias: *const f32,
    /// Apply exact GELU after the bias.
    pub gelu: bool,
}

/// Runs the micro-kernel of `isa` on one tile. `A` advances by `a_step` floats per k
/// (`isa.mr()` for a packed panel; the row stride of a transposed operand read in place).
///
/// # Safety
/// `a` must point at `kc` groups of `isa.mr()` floats `a_step` apart, `b` at `kc × NR`
/// floats, `ep.bias` (if non-null) at `NR` floats; `c` must be valid for reads and writes of `rows` rows of stride `ldc`, each
/// with `cols` floats; `rows ≤ isa.mr()`, `cols ≤ NR`, and the ISA must be supported by the CPU.
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn run(
    isa: Isa,
    kc: usize,
    a: *const f32,
    a_step: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    ep: Epilogue,
) {
    debug_assert!(rows <= isa.mr() && cols <= NR);
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: forwarded contract; AVX-512F is present when `Isa::Avx512` was chosen.
        Isa::Avx512 => unsafe { x86::kernel_14x32(kc, a, a_step, b, c, ldc, rows, cols, ep) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => {
            // Two 16-column halves of the 32-column panel.
            for half in 0..2 {
                let c0 = half * 16;
                if cols <= c0 {
                    break;
                }
                let ep = Epilogue {
                    bias: if ep.bias.is_null() {
                        ep.bias
                    } else {
                        // SAFETY: bias points at NR floats, c0 + 16 ≤ NR.
                        unsafe { ep.bias.add(c0) }
                    },
                    ..ep
                };
                // SAFETY: forwarded contract, offsets stay inside the panel / tile; AVX2 and
                // FMA are present when `Isa::Avx2Fma` was chosen.
                unsafe {
                    x86::kernel_6x16(
                        kc,
                        a,
                        a_step,
                        b.add(c0),
                        c.add(c0),
                        ldc,
                        rows,
                        (cols - c0).min(16),
                        ep,
                    )
                };
            }
        }
        // SAFETY: forwarded contract.
        _ => unsafe { kernel_scalar(kc, a, a_step, b, c, ldc, rows, cols, ep) },
    }
}

/// Applies the epilogue to one row of accumulated values and stores it.
///
/// # Safety
/// `c` valid for `vals.len()` floats; `ep.bias` null or valid for `vals.len()` floats.
#[inline(always)]
unsafe fn store_row(vals: &[f32], c: *mut f32, ep: Epilogue) {
    for (j, &v) in vals.iter().enumerate() {
        // SAFETY: j < vals.len() = cols, inside the row / bias (caller's contract).
        unsafe {
            let mut v = v;
            if ep.accumulate {
                v += *c.add(j);
            }
            if !ep.bias.is_null() {
                v += *ep.bias.add(j);
            }
            if ep.gelu {
                v = vmath::gelu_erf(v);
            }
            *c.add(j) = v;
        }
    }
}

/// Portable 4×32 kernel (the compiler vectorises the inner loop as it can).
///
/// # Safety
/// As [`run`] with `MR = 4`.
#[allow(clippy::too_many_arguments)]
unsafe fn kernel_scalar(
    kc: usize,
    a: *const f32,
    a_step: usize,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    ep: Epilogue,
) {
    const MR: usize = 4;
    let mut acc = [[0f32; NR]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, panels hold kc × MR and kc × NR floats.
        let (ap, bp) = unsafe {
            (
                std::slice::from_raw_parts(a.add(p * a_step), MR),
                std::slice::from_raw_parts(b.add(p * NR), NR),
            )
        };
        for i in 0..MR {
            let ai = ap[i];
            for j in 0..NR {
                acc[i][j] += ai * bp[j];
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(rows) {
        // SAFETY: i < rows, row i of the tile holds cols floats.
        unsafe { store_row(&row[..cols], c.add(i * ldc), ep) };
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{store_row, Epilogue, NR};
    use crate::vmath;

    /// Lane mask of the first `n` (≤ 16) lanes.
    #[inline(always)]
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// AVX-512 14×32 kernel: 28 zmm accumulators, `B` row loaded as two zmm, `A` values
    /// broadcast. Column tails use masked loads and stores.
    ///
    /// # Safety
    /// As [`super::run`] with `MR = 14`; requires AVX-512F.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn kernel_14x32(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        ep: Epilogue,
    ) {
        const MR: usize = 14;
        // Software prefetch of the B panel PF_B k-steps ahead (with the hardware prefetcher
        // alone the first loads of each step wait on L2): ≈ +5 % on the model's shapes.
        const PF_B: usize = 12;
        // Bring the C tile into L1 (for writing) while the k-loop runs: the stores at the end
        // would otherwise wait for each line's read-for-ownership.
        for i in 0..rows {
            let row = c.wrapping_add(i * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_ET0>(row);
            _mm_prefetch::<_MM_HINT_ET0>(row.wrapping_add(64));
            _mm_prefetch::<_MM_HINT_ET0>(row.wrapping_add(4 * cols.max(1) - 1));
        }
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (mut ap, mut bp) = (a, b);
        for _ in 0..kc {
            // SAFETY: the panels hold kc steps of MR (A) and NR (B) floats; ap / bp advance
            // one step per iteration.
            unsafe {
                // Hints only: never fault, even past the panel's end.
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PF_B * NR) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(bp.wrapping_add(PF_B * NR + 16) as *const i8);
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.add(16));
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*ap.add(i));
                    acc_i[0] = _mm512_fmadd_ps(ai, b0, acc_i[0]);
                    acc_i[1] = _mm512_fmadd_ps(ai, b1, acc_i[1]);
                }
                ap = ap.add(a_step);
                bp = bp.add(NR);
            }
        }
        let m0 = lanes(cols);
        let m1 = lanes(cols.saturating_sub(16));
        let has_bias = !ep.bias.is_null();
        // SAFETY: masked loads read only the first `cols` bias values (fault-suppressed
        // beyond); the bias holds NR floats anyway.
        let (bias0, bias1) = unsafe {
            if has_bias {
                (
                    _mm512_maskz_loadu_ps(m0, ep.bias),
                    _mm512_maskz_loadu_ps(m1, ep.bias.add(16)),
                )
            } else {
                (_mm512_setzero_ps(), _mm512_setzero_ps())
            }
        };
        for (i, acc_i) in acc.iter().enumerate() {
            if i >= rows {
                break;
            }
            // SAFETY: i < rows; the masks limit loads / stores to the tile's `cols` columns.
            unsafe {
                let cr = c.add(i * ldc);
                let (mut v0, mut v1) = (acc_i[0], acc_i[1]);
                if ep.accumulate {
                    v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cr));
                    v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cr.add(16)));
                }
                if has_bias {
                    v0 = _mm512_add_ps(v0, bias0);
                    v1 = _mm512_add_ps(v1, bias1);
                }
                if ep.gelu {
                    v0 = vmath::avx512::gelu_erf(v0);
                    v1 = vmath::avx512::gelu_erf(v1);
                }
                _mm512_mask_storeu_ps(cr, m0, v0);
                _mm512_mask_storeu_ps(cr.add(16), m1, v1);
            }
        }
    }

    /// AVX2 6×16 kernel over one 16-column half of a 32-column panel (`b` row stride `NR`).
    ///
    /// # Safety
    /// As [`super::run`] with `MR = 6`, `cols ≤ 16`, `b` pointing into a packed panel with
    /// row stride `NR`; requires AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn kernel_6x16(
        kc: usize,
        a: *const f32,
        a_step: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
        ep: Epilogue,
    ) {
        const MR: usize = 6;
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let (mut ap, mut bp) = (a, b);
        for _ in 0..kc {
            // SAFETY: as in `kernel_14x32`, with MR = 6 and a 16-float half row of B.
            unsafe {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.add(8));
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*ap.add(i));
                    acc_i[0] = _mm256_fmadd_ps(ai, b0, acc_i[0]);
                    acc_i[1] = _mm256_fmadd_ps(ai, b1, acc_i[1]);
                }
                ap = ap.add(a_step);
                bp = bp.add(NR);
            }
        }
        for (i, acc_i) in acc.iter().enumerate().take(rows) {
            let mut row = [0f32; 16];
            // SAFETY: `row` holds 16 floats; the store covers the tile's `cols` columns of
            // row i < rows.
            unsafe {
                _mm256_storeu_ps(row.as_mut_ptr(), acc_i[0]);
                _mm256_storeu_ps(row.as_mut_ptr().add(8), acc_i[1]);
                store_row(&row[..cols], c.add(i * ldc), ep);
            }
        }
    }
}
