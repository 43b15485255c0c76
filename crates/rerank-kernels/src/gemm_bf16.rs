//! bf16 GEMM `C[m, n] = bf16(A)[m, k] · bf16(W)[n, k]ᵀ (+ bias) (→ GELU)` with f32
//! accumulation and an f32 output: the linear layers of bf16 precision.
//!
//! The weight is rounded to bf16 and packed once ([`PackedBf16`], VNNI panels, see
//! [`super::bf16`]); each call rounds the rows of `A` it needs to bf16 into a per-thread
//! buffer. Products of two bf16 values are exact in f32, so the only differences from an f32
//! GEMM on the rounded operands are f32 summation order (AMX may also flush subnormals).
//! Bias and GELU ([`crate::vmath::gelu_erf_fast`]: the output is rounded to bf16 by the next
//! layer anyway) are applied in f32 after the sum.
//!
//! Blocking: rows in blocks of at most [`MC_BF16`] (the packed `A` block, `MC_BF16 × k_pad`
//! bf16, stays in L2); per block, each 32-column pair of panels (`k_pad × 32` bf16, ≤ 192 KiB
//! at k = 3072) is reused by every 32-row group. The whole depth `k` is summed inside the
//! kernel (AMX keeps the 32×32 block in four tiles), so there is no k-blocking.
//!
//! Parallelism: the task grid shared with the f32 GEMM ([`crate::schedule`]), row blocks ×
//! 32-column ranges on rayon's pool, each task on one thread with its own tile configuration.

use std::cell::RefCell;
use std::ops::Range;

use crate::activation;
use crate::bf16::{pack_a, pack_b, AlignedBf16, BLOCK, PANEL};
use crate::buffer::SendPtr;
use crate::isa::Bf16Isa;
use crate::layout::OutLayout;
use crate::schedule::{Grid, Parallelism};

/// Largest row block of a task.
pub(crate) const MC_BF16: usize = 128;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 23;

thread_local! {
    /// Packed bf16 `A` block of the running task.
    static PACK_A: RefCell<AlignedBf16> = RefCell::new(AlignedBf16::default());
}

/// The weight of an `nn.Linear` (`[n, k]`) rounded to bf16 and packed in VNNI panels.
#[derive(Debug, Clone)]
pub(crate) struct PackedBf16 {
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    /// `k` rounded up to 32.
    k_pad: usize,
    data: AlignedBf16,
}

impl PackedBf16 {
    /// Rounds and packs `weight`: `[n, k]` row-major. Panics if `weight.len() != n·k`.
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        let (data, k_pad, _n_pad) = pack_b(weight, n, k);
        PackedBf16 { n, k, k_pad, data }
    }

    /// Packs a strided operand as a weight: `W[j, kk] = src[j·stride_n + kk·stride_k]`,
    /// `[n, k]` (see [`crate::bf16::pack_b_strided`]): attention's keys (`W = K`, for
    /// `Q·Kᵀ`) and values (`W = Vᵀ`, for `P·V`) of one head and sequence.
    pub fn from_strided(src: &[f32], n: usize, k: usize, stride_n: usize, stride_k: usize) -> Self {
        let (data, k_pad) = crate::bf16::pack_b_strided(src, n, k, stride_n, stride_k);
        PackedBf16 { n, k, k_pad, data }
    }

    /// Bytes of packed weight.
    pub fn size_bytes(&self) -> usize {
        self.data.len() * 2
    }
}

/// Computes the 32×32 block `c` from packed `a` (row stride `k_pad`) and the panel pair
/// `(b0, b1)` on `isa`; rows `rows..32` (zero rows of `a`) may be skipped and left unwritten.
///
/// # Safety
/// As [`super::amx::block_32x32`]; `isa` usable (for AMX: a tile guard is live); `rows ≤ 32`.
#[inline]
unsafe fn block(
    isa: Bf16Isa,
    a: *const u16,
    k_pad: usize,
    b0: *const u16,
    b1: *const u16,
    c: *mut f32,
    rows: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Bf16Isa::Amx => super::amx::block_32x32(a, k_pad, b0, b1, k_pad, c),
            #[cfg(target_arch = "x86_64")]
            Bf16Isa::Avx512Bf16 => super::bf16::block_32x32_avx512bf16(a, k_pad, b0, b1, k_pad, c),
            #[cfg(target_arch = "x86_64")]
            Bf16Isa::Avx2Fma => super::bf16::block_32x32_avx2(a, k_pad, b0, b1, k_pad, c, rows),
            _ => super::bf16::block_32x32_scalar(a, k_pad, b0, b1, k_pad, c),
        }
    }
}

/// Single-threaded product on rows `0..m` and columns `cols` (start a multiple of 32).
///
/// # Safety
/// `a` valid for reads at `i·lda + kk`, `i < m`, `kk < w.k`; `c` valid for writes at
/// `out.offset(i, j)`, `i < m`, `j ∈ cols` (32-column groups not straddling blocks); `bias`
/// null or valid for `cols.end` floats; `cols.end ≤ w.n`; `isa` supported.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_serial_raw(
    isa: Bf16Isa,
    w: &PackedBf16,
    m: usize,
    a: *const f32,
    lda: usize,
    cols: Range<usize>,
    c: *mut f32,
    out: OutLayout,
    bias: *const f32,
    gelu: bool,
) {
    if m == 0 || cols.is_empty() {
        return;
    }
    let k_pad = w.k_pad;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AMX is only chosen when `amx::available()` (Bf16Isa::available); the guard
    // lives until the end of this function, on this thread, and no other work runs here
    // in between.
    let _tiles = (isa == Bf16Isa::Amx).then(|| unsafe { super::amx::TileGuard::new() });
    let avx512bf16 = matches!(isa, Bf16Isa::Amx | Bf16Isa::Avx512Bf16);
    let groups = cols.start / BLOCK..cols.end.div_ceil(BLOCK);
    let mut tile = [0f32; BLOCK * BLOCK];
    PACK_A.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.ensure(MC_BF16 * k_pad);
        let pa = buf.as_mut_slice().as_mut_ptr();
        for r0 in (0..m).step_by(MC_BF16) {
            let mb = MC_BF16.min(m - r0);
            let rows_pad = mb.div_ceil(BLOCK) * BLOCK;
            // SAFETY: rows r0..r0 + mb of A are readable (k floats each); the buffer holds
            // MC_BF16 · k_pad ≥ rows_pad · k_pad elements; the AVX512-BF16 converter is only
            // used when isa is AMX or AVX512-BF16, i.e. the CPU has it.
            unsafe {
                pack_a(
                    avx512bf16,
                    a.add(r0 * lda),
                    lda,
                    mb,
                    w.k,
                    k_pad,
                    rows_pad,
                    pa,
                )
            };
            // A full AMX block whose GELU is still to be applied.
            let mut gelu_pending: Option<(usize, usize)> = None;
            for g in groups.clone() {
                // SAFETY: panels 2g and 2g + 1 exist (n_pad is a multiple of 32).
                let (b0, b1) = unsafe {
                    let base = w.data.as_slice().as_ptr();
                    (
                        base.add(2 * g * PANEL * k_pad),
                        base.add((2 * g + 1) * PANEL * k_pad),
                    )
                };
                let j0 = g * BLOCK;
                let ncols = BLOCK.min(cols.end - j0);
                // AMX: full blocks start from the bias and are stored straight into C.
                let mut bias_row = [0f32; BLOCK];
                if !bias.is_null() {
                    // SAFETY: bias holds ≥ cols.end ≥ j0 + ncols floats.
                    let b = unsafe { std::slice::from_raw_parts(bias.add(j0), ncols) };
                    bias_row[..ncols].copy_from_slice(b);
                }
                for i0 in (0..mb).step_by(BLOCK) {
                    #[cfg(target_arch = "x86_64")]
                    if isa == Bf16Isa::Amx && ncols == BLOCK && mb - i0 >= BLOCK {
                        let c0 = c.wrapping_add(out.offset(r0 + i0, j0));
                        // SAFETY: tile guard live; A group and panels as below; rows
                        // r0 + i0 .. + 32 < m and columns j0 .. j0 + 32 ⊂ cols lie in one
                        // block of `out` with row stride out.ldc (caller's contract).
                        unsafe {
                            super::amx::block_32x32_bias(
                                pa.add(i0 * k_pad),
                                k_pad,
                                b0,
                                b1,
                                k_pad,
                                if bias.is_null() {
                                    std::ptr::null()
                                } else {
                                    bias_row.as_ptr()
                                },
                                c0,
                                out.ldc,
                            )
                        };
                        if gelu {
                            // GELU of the previous block, now that this one is issued:
                            // the tile unit computes meanwhile, and the rows are not read
                            // right after the tile stores wrote them.
                            if let Some((row, col)) = gelu_pending.replace((r0 + i0, j0)) {
                                // SAFETY: that block's rows and columns, written above.
                                unsafe { gelu_block(c, out, row, col) };
                            }
                        }
                        continue;
                    }
                    // Partial blocks go through `tile`. On AMX the sums start from the bias
                    // as in full blocks, so a row gets the same bits whichever block it is in.
                    let mut bias_done = false;
                    #[cfg(target_arch = "x86_64")]
                    if isa == Bf16Isa::Amx {
                        // SAFETY: tile guard live; the A group holds 32 rows of k_pad bf16
                        // (zero rows past mb); `tile` holds 32 × 32 floats; bias_row 32.
                        unsafe {
                            super::amx::block_32x32_bias(
                                pa.add(i0 * k_pad),
                                k_pad,
                                b0,
                                b1,
                                k_pad,
                                if bias.is_null() {
                                    std::ptr::null()
                                } else {
                                    bias_row.as_ptr()
                                },
                                tile.as_mut_ptr(),
                                BLOCK,
                            )
                        };
                        bias_done = true;
                    }
                    if !bias_done {
                        // SAFETY: as above.
                        unsafe {
                            block(
                                isa,
                                pa.add(i0 * k_pad),
                                k_pad,
                                b0,
                                b1,
                                tile.as_mut_ptr(),
                                BLOCK.min(mb - i0),
                            )
                        };
                    }
                    for i in 0..BLOCK.min(mb - i0) {
                        let src = &tile[i * BLOCK..i * BLOCK + ncols];
                        // SAFETY: row r0 + i0 + i < m, columns j0..j0 + ncols ⊂ cols lie in
                        // one block of `out` (caller's contract), contiguous.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(
                                c.add(out.offset(r0 + i0 + i, j0)),
                                ncols,
                            )
                        };
                        if bias.is_null() || bias_done {
                            dst.copy_from_slice(src);
                        } else {
                            // SAFETY: bias holds ≥ cols.end ≥ j0 + ncols floats.
                            let b = unsafe { std::slice::from_raw_parts(bias.add(j0), ncols) };
                            for ((d, &s), &bv) in dst.iter_mut().zip(src).zip(b) {
                                *d = s + bv;
                            }
                        }
                        if gelu {
                            activation::gelu_erf_fast(dst);
                        }
                    }
                }
            }
            if let Some((row, col)) = gelu_pending.take() {
                // SAFETY: as above.
                unsafe { gelu_block(c, out, row, col) };
            }
        }
    });
}

/// GELU ([`activation::gelu_erf_fast`]) in place on the full 32×32 block of `c` at
/// `(row, col)`.
///
/// # Safety
/// `c` valid for reads and writes at `out.offset(row + i, col + j)`, `i, j < 32`, the
/// block's 32 columns contiguous.
unsafe fn gelu_block(c: *mut f32, out: OutLayout, row: usize, col: usize) {
    for i in 0..BLOCK {
        // SAFETY: caller's contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(out.offset(row + i, col)), BLOCK) };
        activation::gelu_erf_fast(dst);
    }
}

/// Task grid of the bf16 driver: row blocks of 32-row multiples up to [`MC_BF16`], 32-column
/// blocks.
const GRID: Grid = Grid {
    row_align: BLOCK,
    max_rows: MC_BF16,
    col_unit: BLOCK,
    min_parallel_work: PARALLEL_MIN_MACS,
};

impl PackedBf16 {
    /// `out[layout.offset(i, j)] = Σ_kk bf16(a[i·lda + kk])·bf16(W[j, kk]) + bias[j]`
    /// (→ GELU, [`crate::vmath::gelu_erf_fast`]) for `i < m`, `j ∈ cols`, on `isa`, cut into
    /// tasks by the shared grid when `par` allows. Other elements of `out` are left untouched.
    ///
    /// Panics unless `cols.start` is a multiple of 32, `cols.end ≤ n`, and `a`, `out` and
    /// `bias` (`[n]` at least) are large enough.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        isa: Bf16Isa,
        a: &[f32],
        lda: usize,
        m: usize,
        cols: Range<usize>,
        out: &mut [f32],
        layout: OutLayout,
        bias: Option<&[f32]>,
        gelu: bool,
        par: Parallelism,
    ) {
        if !layout.check_forward(self.n, self.k, a.len(), lda, m, &cols, bias, out.len()) {
            return;
        }
        let c = SendPtr(out.as_mut_ptr());
        let bias = SendPtr(bias.map_or(std::ptr::null(), <[f32]>::as_ptr) as *mut f32);
        let work = m * self.k * cols.len();
        GRID.run(m, cols, work, par, |rows, cols| {
            // SAFETY: sizes checked above; each task writes the disjoint rows `rows` × columns
            // `cols` of `out` (offsets are linear in the row, so shifting the base by row
            // `rows.start` addresses those rows), which outlives this scoped call; `a`, the
            // packed weight and the bias are only read.
            unsafe {
                gemm_serial_raw(
                    isa,
                    self,
                    rows.len(),
                    a.as_ptr().add(rows.start * lda),
                    lda,
                    cols,
                    c.get().add(layout.offset(rows.start, 0)),
                    layout,
                    bias.get(),
                    gelu,
                )
            };
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::bf16::round_bf16;
    use super::*;

    /// Deterministic values in [-1, 1).
    fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32) / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// f64 `bf16(A) · bf16(W)ᵀ + bias` and Σ|a·w| + |bias| per element.
    fn reference(
        a: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        m: usize,
        n: usize,
        k: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let mut out = vec![0f64; m * n];
        let mut mag = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = bias.map_or(0.0, |b| b[j] as f64);
                let mut g = s.abs();
                for kk in 0..k {
                    let p = round_bf16(a[i * k + kk]) as f64 * round_bf16(w[j * k + kk]) as f64;
                    s += p;
                    g += p.abs();
                }
                out[i * n + j] = s;
                mag[i * n + j] = g;
            }
        }
        (out, mag)
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 384, 384),
        (3, 5, 3),
        (13, 33, 17),
        (31, 32, 31),
        (32, 64, 64),
        (33, 100, 95),
        (129, 65, 770),
        (200, 96, 1536),
        (300, 1152, 384),
    ];

    #[test]
    fn matches_f64_reference_on_rounded_inputs_on_every_isa() {
        for isa in Bf16Isa::available() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                if isa == Bf16Isa::Scalar && m * n * k > 2_000_000 {
                    continue;
                }
                let a = rand_vec(m * k, 1 + s as u64);
                let w = rand_vec(n * k, 100 + s as u64);
                let bias = rand_vec(n, 200 + s as u64);
                let packed = PackedBf16::new(&w, n, k);
                let (want, mag) = reference(&a, &w, Some(&bias), m, n, k);
                let mut got = vec![f32::NAN; m * n];
                let layout = OutLayout::row_major(n);
                packed.forward(
                    isa,
                    &a,
                    k,
                    m,
                    0..n,
                    &mut got,
                    layout,
                    Some(&bias),
                    false,
                    Parallelism::Parallel,
                );
                for (idx, ((&g, &r), &s)) in got.iter().zip(&want).zip(&mag).enumerate() {
                    // f32 summation of exact products: error ≤ a few ulps of Σ|a·w|.
                    let err = (g as f64 - r).abs();
                    assert!(
                        err <= 2e-6 * s.max(1e-30),
                        "{isa:?} {m}x{n}x{k} element {idx}: {g} vs {r} (scale {s})"
                    );
                }
                let mut serial = vec![f32::NAN; m * n];
                packed.forward(
                    isa,
                    &a,
                    k,
                    m,
                    0..n,
                    &mut serial,
                    layout,
                    Some(&bias),
                    false,
                    Parallelism::Serial,
                );
                assert_eq!(got, serial, "{isa:?} {m}x{n}x{k}: parallel vs serial");
            }
        }
    }

    #[test]
    fn isas_agree_closely() {
        let isas = Bf16Isa::available();
        let (m, n, k) = (70, 64, 300);
        let a = rand_vec(m * k, 5);
        let w = rand_vec(n * k, 6);
        let packed = PackedBf16::new(&w, n, k);
        let run = |isa| {
            let mut out = vec![0f32; m * n];
            packed.forward(
                isa,
                &a,
                k,
                m,
                0..n,
                &mut out,
                OutLayout::row_major(n),
                None,
                false,
                Parallelism::Parallel,
            );
            out
        };
        let base = run(Bf16Isa::Scalar);
        for isa in isas {
            let got = run(isa);
            for (g, b) in got.iter().zip(&base) {
                assert!((g - b).abs() <= 1e-4, "{isa:?}: {g} vs {b}");
            }
        }
    }

    #[test]
    fn column_range_strides_blocked_layout_and_gelu() {
        for isa in Bf16Isa::available() {
            let (m, n, k) = (37, 128, 50);
            let a_ld = 61;
            let a = rand_vec(m * a_ld, 3);
            let w = rand_vec(n * k, 4);
            let bias = rand_vec(n, 5);
            let packed = PackedBf16::new(&w, n, k);
            let dense: Vec<f32> = (0..m)
                .flat_map(|i| a[i * a_ld..i * a_ld + k].to_vec())
                .collect();
            let (want, mag) = reference(&dense, &w, Some(&bias), m, n, k);
            // Per-head blocks of 64 columns; only columns 32..100 requested.
            let layout = OutLayout::blocked(64, m);
            let mut got = vec![-7f32; 2 * m * 64];
            packed.forward(
                isa,
                &a,
                a_ld,
                m,
                32..100,
                &mut got,
                layout,
                Some(&bias),
                true,
                Parallelism::Parallel,
            );
            for i in 0..m {
                for j in 0..n {
                    let g = got[layout.offset(i, j)];
                    if (32..100).contains(&j) {
                        let x = want[i * n + j];
                        let gelu = x * 0.5 * (1.0 + libm::erf(x / 2f64.sqrt()));
                        let tol = 2e-6 * mag[i * n + j] + 1e-6 * gelu.abs();
                        assert!(
                            (g as f64 - gelu).abs() <= tol,
                            "{isa:?} ({i},{j}): {g} vs {gelu}"
                        );
                    } else {
                        assert_eq!(g, -7.0, "{isa:?} ({i},{j}) written outside the range");
                    }
                }
            }
        }
    }

    #[test]
    fn row_results_do_not_depend_on_m() {
        for isa in Bf16Isa::available() {
            let (n, k) = (96, 200);
            let w = rand_vec(n * k, 7);
            let bias = rand_vec(n, 17);
            let packed = PackedBf16::new(&w, n, k);
            let a = rand_vec(300 * k, 8);
            let run = |rows: &[f32], m: usize| {
                let mut out = vec![0f32; m * n];
                let layout = OutLayout::row_major(n);
                packed.forward(
                    isa,
                    rows,
                    k,
                    m,
                    0..n,
                    &mut out,
                    layout,
                    Some(&bias),
                    true,
                    Parallelism::Parallel,
                );
                out
            };
            let all = run(&a, 300);
            for row in [0usize, 13, 31, 32, 127, 128, 299] {
                let one = run(&a[row * k..(row + 1) * k], 1);
                assert_eq!(&all[row * n..(row + 1) * n], &one[..], "{isa:?} row {row}");
            }
        }
    }

    #[test]
    fn many_threads_give_the_same_bits() {
        let (m, n, k) = (1000, 256, 384);
        let a = rand_vec(m * k, 9);
        let w = rand_vec(n * k, 10);
        let packed = PackedBf16::new(&w, n, k);
        let isa = Bf16Isa::active();
        let mut one = vec![0f32; m * n];
        packed.forward(
            isa,
            &a,
            k,
            m,
            0..n,
            &mut one,
            OutLayout::row_major(n),
            None,
            false,
            Parallelism::Serial,
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(5)
            .build()
            .unwrap();
        let mut many = vec![0f32; m * n];
        pool.install(|| {
            packed.forward(
                isa,
                &a,
                k,
                m,
                0..n,
                &mut many,
                OutLayout::row_major(n),
                None,
                false,
                Parallelism::Parallel,
            )
        });
        assert_eq!(one, many);
    }
}
