//! Packing of GEMM operands into the micro-kernels' panel layouts.
//!
//! A *row panel* of width `mr` holds, for each `k` of a k-block, the values of `mr`
//! consecutive rows (`dst[kk·mr + i] = A[r0 + i, k0 + kk]`, zero for missing rows). The left
//! operand `A` is packed into row panels of `MR`; a right operand stored like `nn.Linear`
//! (`W[n, k]`, one output column per row) is packed the same way with `mr = NR`. On AVX-512
//! this is done 16 × 16 at a time with an in-register transpose.

use super::isa::Isa;
use super::microkernel::NR;

/// Packs rows `0..rows`, columns `k0..k0 + kb` of `A` (element `(i, kk)` at `a[i·rs + kk·cs]`)
/// into `rows.div_ceil(mr)` consecutive row panels of `kb × mr`.
///
/// # Safety
/// `a` valid for every element read; `dst` valid for `rows.div_ceil(mr) · kb · mr` floats;
/// `isa` supported by the CPU.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn pack_rows(
    isa: Isa,
    a: *const f32,
    rs: usize,
    cs: usize,
    rows: usize,
    k0: usize,
    kb: usize,
    mr: usize,
    dst: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && cs == 1 && mr <= 32 {
        // SAFETY: forwarded contract; AVX-512F present for `Isa::Avx512`.
        unsafe { x86::pack_rows_avx512(a, rs, rows, k0, kb, mr, dst) };
        return;
    }
    let _ = isa;
    for p in 0..rows.div_ceil(mr) {
        // SAFETY: panel p is inside dst (caller's contract).
        let d = unsafe { dst.add(p * kb * mr) };
        for i in 0..mr {
            let r = p * mr + i;
            if r < rows {
                // SAFETY: row r < rows, columns k0..k0 + kb of A are readable; the panel
                // holds kb × mr floats.
                unsafe {
                    let src = a.add(r * rs + k0 * cs);
                    for kk in 0..kb {
                        *d.add(kk * mr + i) = *src.add(kk * cs);
                    }
                }
            } else {
                for kk in 0..kb {
                    // SAFETY: inside the panel.
                    unsafe { *d.add(kk * mr + i) = 0.0 };
                }
            }
        }
    }
}

/// Packs `B[k, n]` (element `(kk, j)` at `src[kk·rs_k + j·cs_n]`) into `dst`
/// (`k × n.div_ceil(NR)·NR` floats): per k-block `(k0, kb)` of `blocks`, from offset
/// `k0 · n_pad`, the `NR`-column panels one after the other, each `kb × NR`, zero past `n`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_cols(
    isa: Isa,
    src: &[f32],
    k: usize,
    n: usize,
    rs_k: usize,
    cs_n: usize,
    blocks: impl Iterator<Item = (usize, usize)>,
    dst: &mut [f32],
) {
    let n_pad = n.div_ceil(NR) * NR;
    assert!(dst.len() >= k * n_pad, "packed buffer too small");
    if k == 0 || n == 0 {
        return;
    }
    assert!(
        src.len() > (k - 1) * rs_k + (n - 1) * cs_n,
        "source too small"
    );
    for (k0, kb) in blocks {
        let block = &mut dst[k0 * n_pad..(k0 + kb) * n_pad];
        if cs_n == 1 {
            // Rows of B are contiguous: copy them into the panels.
            for j in 0..n_pad / NR {
                let c0 = j * NR;
                let width = NR.min(n - c0.min(n));
                let panel = &mut block[j * kb * NR..(j + 1) * kb * NR];
                for kk in 0..kb {
                    let from = (k0 + kk) * rs_k + c0;
                    panel[kk * NR..kk * NR + width].copy_from_slice(&src[from..from + width]);
                    panel[kk * NR + width..(kk + 1) * NR].fill(0.0);
                }
            }
        } else {
            // Columns of B are rows in memory (`nn.Linear`, `Kᵀ`): row panels of width NR.
            // SAFETY: the bounds were checked above (the last element read is
            // (k - 1)·rs_k + (n - 1)·cs_n); the block holds n_pad.div_ceil(NR) panels of
            // kb × NR floats.
            unsafe {
                pack_rows(
                    isa,
                    src.as_ptr(),
                    cs_n,
                    rs_k,
                    n,
                    k0,
                    kb,
                    NR,
                    block.as_mut_ptr(),
                )
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Transposes a 16 × 16 block held as 16 row vectors into 16 column vectors.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn transpose16(r: [__m512; 16]) -> [__m512; 16] {
        let lo = |a, b| _mm512_unpacklo_ps(a, b);
        let hi = |a, b| _mm512_unpackhi_ps(a, b);
        let lo64 = |a: __m512, b: __m512| {
            _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
        };
        let hi64 = |a: __m512, b: __m512| {
            _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
        };
        // Stage 1: interleave 32-bit elements of row pairs.
        let mut t = [_mm512_setzero_ps(); 16];
        for p in 0..8 {
            t[2 * p] = lo(r[2 * p], r[2 * p + 1]);
            t[2 * p + 1] = hi(r[2 * p], r[2 * p + 1]);
        }
        // Stage 2: interleave 64-bit pairs → within each 128-bit lane, 4 rows of one column.
        let mut u = [_mm512_setzero_ps(); 16];
        for q in 0..4 {
            let b = 4 * q;
            u[b] = lo64(t[b], t[b + 2]);
            u[b + 1] = hi64(t[b], t[b + 2]);
            u[b + 2] = lo64(t[b + 1], t[b + 3]);
            u[b + 3] = hi64(t[b + 1], t[b + 3]);
        }
        // Stages 3 and 4: gather the 128-bit lanes.
        let mut v = [_mm512_setzero_ps(); 16];
        for c in 0..4 {
            v[c] = _mm512_shuffle_f32x4::<0x88>(u[c], u[c + 4]);
            v[c + 4] = _mm512_shuffle_f32x4::<0xDD>(u[c], u[c + 4]);
            v[c + 8] = _mm512_shuffle_f32x4::<0x88>(u[c + 8], u[c + 12]);
            v[c + 12] = _mm512_shuffle_f32x4::<0xDD>(u[c + 8], u[c + 12]);
        }
        let mut out = [_mm512_setzero_ps(); 16];
        for c in 0..8 {
            out[c] = _mm512_shuffle_f32x4::<0x88>(v[c], v[c + 8]);
            out[c + 8] = _mm512_shuffle_f32x4::<0xDD>(v[c], v[c + 8]);
        }
        out
    }

    /// Lane mask of the first `n` (≤ 16) lanes.
    #[inline(always)]
    fn lanes(n: usize) -> __mmask16 {
        if n >= 16 {
            0xFFFF
        } else {
            ((1u32 << n) - 1) as __mmask16
        }
    }

    /// [`super::pack_rows`] for unit column stride: 16 rows × 16 columns per transpose.
    ///
    /// # Safety
    /// As [`super::pack_rows`] with `cs = 1`, `mr ≤ 32`; requires AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_rows_avx512(
        a: *const f32,
        rs: usize,
        rows: usize,
        k0: usize,
        kb: usize,
        mr: usize,
        dst: *mut f32,
    ) {
        for p in 0..rows.div_ceil(mr) {
            // SAFETY: panel p is inside dst.
            let d = unsafe { dst.add(p * kb * mr) };
            // Row groups of at most 16 within the panel.
            for g0 in (0..mr).step_by(16) {
                let width = 16.min(mr - g0);
                let store_mask = lanes(width);
                let first_row = p * mr + g0;
                let live = rows.saturating_sub(first_row).min(width);
                for kk in (0..kb).step_by(16) {
                    let cols = 16.min(kb - kk);
                    let load_mask = lanes(cols);
                    let mut r = [_mm512_setzero_ps(); 16];
                    for (i, ri) in r.iter_mut().enumerate().take(live) {
                        // SAFETY: row first_row + i < rows; the mask limits the read to the
                        // block's columns k0 + kk .. + cols.
                        *ri = unsafe {
                            _mm512_maskz_loadu_ps(load_mask, a.add((first_row + i) * rs + k0 + kk))
                        };
                    }
                    let t = transpose16(r);
                    for (j, tj) in t.iter().enumerate().take(cols) {
                        // SAFETY: element (kk + j, g0 .. g0 + width) of the panel,
                        // kk + j < kb, g0 + width ≤ mr.
                        unsafe {
                            _mm512_mask_storeu_ps(d.add((kk + j) * mr + g0), store_mask, *tj)
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_panels_equal_scalar_packing_on_every_isa() {
        let (rows, cols, rs) = (37usize, 53usize, 60usize);
        let a: Vec<f32> = (0..rows * rs).map(|i| i as f32).collect();
        for isa in Isa::available() {
            for mr in [4usize, 6, 14, 16, 32] {
                for (k0, kb) in [(0usize, 53usize), (5, 17), (16, 16), (50, 3)] {
                    let len = rows.div_ceil(mr) * kb * mr;
                    let mut got = vec![-1f32; len];
                    // SAFETY: rows × (k0 + kb ≤ 53 ≤ rs) inside `a`; `got` holds len floats.
                    unsafe {
                        pack_rows(isa, a.as_ptr(), rs, 1, rows, k0, kb, mr, got.as_mut_ptr())
                    };
                    for p in 0..rows.div_ceil(mr) {
                        for kk in 0..kb {
                            for i in 0..mr {
                                let r = p * mr + i;
                                let want = if r < rows { a[r * rs + k0 + kk] } else { 0.0 };
                                assert_eq!(
                                    got[p * kb * mr + kk * mr + i],
                                    want,
                                    "{isa:?} mr {mr} block ({k0},{kb}) panel {p} k {kk} row {i}"
                                );
                            }
                        }
                    }
                }
                let _ = cols;
            }
        }
    }

    #[test]
    fn column_panels_from_both_layouts() {
        let (k, n) = (45usize, 70usize);
        let b: Vec<f32> = (0..k * n).map(|i| i as f32 * 0.5).collect(); // row-major [k, n]
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // [n, k]
        let blocks = || [(0usize, 20usize), (20, 20), (40, 5)].into_iter();
        let n_pad = n.div_ceil(NR) * NR;
        for isa in Isa::available() {
            let mut from_rows = vec![-1f32; k * n_pad];
            let mut from_cols = vec![-2f32; k * n_pad];
            pack_cols(isa, &b, k, n, n, 1, blocks(), &mut from_rows);
            pack_cols(isa, &bt, k, n, 1, k, blocks(), &mut from_cols);
            assert_eq!(from_rows, from_cols, "{isa:?}");
            for (k0, kb) in blocks() {
                for j in 0..n_pad / NR {
                    for kk in 0..kb {
                        for c in 0..NR {
                            let col = j * NR + c;
                            let want = if col < n { b[(k0 + kk) * n + col] } else { 0.0 };
                            assert_eq!(from_rows[k0 * n_pad + j * kb * NR + kk * NR + c], want);
                        }
                    }
                }
            }
        }
    }
}
