//! int8 GEMM `C[m, n] = (Σ_k q_a[m, k]·q_w[n, k]) · s_a[m] · s_w[n] (+ bias) (→ GELU)`:
//! the linear layers of int8 precision, with an f32 output.
//!
//! The weight is quantized per output channel (symmetric, `s_w = max|w| / 127`) and packed
//! once ([`PackedI8`], VNNI panels, see [`super::int8`]); each call quantizes the rows of `A`
//! it needs per row (per token, dynamic: `s_a = max|a| / 127`, u8 codes with zero point 128)
//! into a per-thread buffer. Products are summed exactly in i32 (AMX `tdpbusd`, AVX512-VNNI
//! `vpdpbusd` or portable code — the same integers on every path), the zero-point term
//! `128·Σ_k q_w` is subtracted, and the epilogue computes, in f32,
//! `acc as f32 · (s_a[i] · s_w[j]) + bias[j]` (then GELU with [`crate::vmath::erf_fast`]).
//! So every instruction set, thread count and batch gives the same bits for a row.
//!
//! Blocking and parallelism as the bf16 GEMM ([`super::gemm_bf16`]): row blocks of at most
//! [`MC_INT8`] rows quantized once per task, 32×32 output blocks with the whole depth summed
//! inside the kernel, the task grid of [`crate::schedule`]. The epilogue of a block runs
//! after the next block has been issued (two i32 buffers): the tile unit computes while the
//! vector unit dequantizes, and the block is not read right after `tilestored` wrote it
//! (which stalled on the stores: the epilogue took as long as the products).

use std::cell::RefCell;
use std::ops::Range;

use crate::buffer::{AlignedBuf, SendPtr};
use crate::int8::{pack_b, quantize_rows, PackedI8Operands, BLOCK, PANEL};
use crate::isa::Int8Isa;
use crate::layout::OutLayout;
use crate::schedule::{Grid, Parallelism};

/// Largest row block of a task.
pub(crate) const MC_INT8: usize = 128;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_MACS: usize = 1 << 23;

thread_local! {
    /// Quantized `A` block of the running task and its row scales.
    static PACK_A: RefCell<(AlignedBuf<u8>, Vec<f32>)> =
        RefCell::new((AlignedBuf::default(), Vec::new()));
}

/// The weight of an `nn.Linear` (`[n, k]`) quantized to int8 per output channel and packed.
#[derive(Debug, Clone)]
pub(crate) struct PackedI8 {
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    ops: PackedI8Operands,
}

impl PackedI8 {
    /// Quantizes and packs `weight`: `[n, k]` row-major. Panics if `weight.len() != n·k` or
    /// `k >` [`super::int8::MAX_K`].
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        PackedI8 {
            n,
            k,
            ops: pack_b(weight, n, k),
        }
    }

    /// Bytes of packed weight, scales and compensation.
    pub fn size_bytes(&self) -> usize {
        self.ops.data.len() + self.ops.scale.len() * 4 + self.ops.comp.len() * 4
    }

    /// Per-channel scales `[n]`.
    #[cfg(test)]
    pub fn scales(&self) -> &[f32] {
        &self.ops.scale[..self.n]
    }
}

/// The i32 block `c[32 × 32]` (stride 32) of the u8 codes `a` (row stride `k_pad`) times the
/// panel pair `(b0, b1)`, *including* the zero-point term; rows `rows..32` may be left
/// unwritten.
///
/// # Safety
/// `isa` usable (for AMX: a tile guard is live); `rows ≤ 32`; `a` 32 rows of `k_pad` bytes,
/// the panels `16·k_pad` bytes each, `c` 32 × 32 i32.
#[inline]
unsafe fn block(
    isa: Int8Isa,
    a: *const u8,
    k_pad: usize,
    b0: *const i8,
    b1: *const i8,
    c: *mut i32,
    rows: usize,
) {
    // SAFETY: forwarded contract.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Amx => super::amx_int8::block_32x32(a, k_pad, b0, b1, k_pad, c),
            #[cfg(target_arch = "x86_64")]
            Int8Isa::Avx512Vnni => super::int8::block_32x32_vnni(a, k_pad, b0, b1, k_pad, c, rows),
            _ => super::int8::block_32x32_scalar(a, k_pad, b0, b1, k_pad, c, rows),
        }
    }
}

/// What a serial run writes: either the dequantized f32 output, or (tests) the exact i32
/// sums `Σ_k q_a·q_w` row-major `[m, n]`.
#[derive(Clone, Copy)]
enum Sink {
    F32 {
        c: *mut f32,
        out: OutLayout,
        bias: *const f32,
        gelu: bool,
    },
    #[cfg(test)]
    I32 { c: *mut i32, ldc: usize },
}

/// Single-threaded product on rows `0..m` and columns `cols` (start a multiple of 32).
///
/// # Safety
/// `a` valid for reads at `i·lda + kk`, `i < m`, `kk < w.k`; the sink valid for writes at
/// its offsets of `(i, j)`, `i < m`, `j ∈ cols` (for f32: 32-column groups not straddling
/// blocks; `bias` null or valid for `cols.end` floats); `cols.end ≤ w.n`; `isa` supported.
unsafe fn gemm_serial_raw(
    isa: Int8Isa,
    w: &PackedI8,
    m: usize,
    a: *const f32,
    lda: usize,
    cols: Range<usize>,
    sink: Sink,
) {
    if m == 0 || cols.is_empty() {
        return;
    }
    let k_pad = w.ops.k_pad;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AMX is only chosen when `amx_int8::available()` (Int8Isa::available), which
    // implies `amx::available()`; the guard lives until the end of this function, on this
    // thread, and no other work runs here in between.
    let _tiles = (isa == Int8Isa::Amx).then(|| unsafe { super::amx::TileGuard::new() });
    #[cfg(target_arch = "x86_64")]
    let avx512 = isa != Int8Isa::Scalar;
    #[cfg(not(target_arch = "x86_64"))]
    let avx512 = false;
    let groups = cols.start / BLOCK..cols.end.div_ceil(BLOCK);
    // Two i32 blocks: on AMX the epilogue of a block runs while the tile unit computes the
    // next one (reading a block right after `tilestored` wrote it stalls on the stores).
    let mut tiles = [[0i32; BLOCK * BLOCK]; 2];
    let tiles = tiles.as_mut_ptr();
    PACK_A.with(|cell| {
        let mut guard = cell.borrow_mut();
        let (buf, scales) = &mut *guard;
        buf.ensure(MC_INT8 * k_pad);
        scales.resize(MC_INT8, 0.0);
        let pa = buf.as_mut_slice().as_mut_ptr();
        for r0 in (0..m).step_by(MC_INT8) {
            let mb = MC_INT8.min(m - r0);
            let rows_pad = mb.div_ceil(BLOCK) * BLOCK;
            // SAFETY: rows r0..r0 + mb of A are readable (k floats each); the buffer holds
            // MC_INT8 · k_pad ≥ rows_pad · k_pad bytes; scales holds MC_INT8 ≥ mb; the
            // AVX-512 quantizer is only used when isa is AMX or AVX512-VNNI, i.e. the CPU
            // has AVX-512F.
            unsafe {
                quantize_rows(
                    avx512,
                    a.add(r0 * lda),
                    lda,
                    mb,
                    w.k,
                    k_pad,
                    rows_pad,
                    pa,
                    scales,
                )
            };
            let scales = &scales[..];
            // The epilogue of a computed block.
            let finish_block = |d: Done| {
                // SAFETY: `tiles[d.buf]` holds `d`'s sums, written by an earlier `block` and
                // not overwritten since (the next block goes to the other buffer); the sink's
                // contract is the caller's.
                unsafe { finish(w, &*tiles.add(d.buf), d, scales, r0, sink, avx512) }
            };
            let mut pending: Option<Done> = None;
            let mut cur = 0;
            for g in groups.clone() {
                // SAFETY: panels 2g and 2g + 1 exist (n_pad is a multiple of 32).
                let (b0, b1) = unsafe {
                    let base = w.ops.data.as_slice().as_ptr();
                    (
                        base.add(2 * g * PANEL * k_pad),
                        base.add((2 * g + 1) * PANEL * k_pad),
                    )
                };
                let j0 = g * BLOCK;
                let ncols = BLOCK.min(cols.end - j0);
                for i0 in (0..mb).step_by(BLOCK) {
                    let rows = BLOCK.min(mb - i0);
                    let dst = tiles.wrapping_add(cur).cast::<i32>();
                    // SAFETY: the A group holds 32 rows of k_pad bytes (padding rows past
                    // mb); tiles[cur] holds 32 × 32 i32 and is not the pending block's.
                    unsafe { block(isa, pa.add(i0 * k_pad), k_pad, b0, b1, dst, rows) };
                    if let Some(d) = pending.take() {
                        finish_block(d);
                    }
                    pending = Some(Done {
                        buf: cur,
                        i0,
                        rows,
                        j0,
                        ncols,
                    });
                    cur ^= 1;
                }
            }
            // The row scales are overwritten by the next row block: finish this one's last.
            if let Some(d) = pending.take() {
                finish_block(d);
            }
        }
    });
}

/// A computed 32×32 block waiting for its epilogue: `tiles[buf]` holds the sums of rows
/// `i0..i0 + rows` of the row block and columns `j0..j0 + ncols`.
#[derive(Clone, Copy)]
struct Done {
    buf: usize,
    i0: usize,
    rows: usize,
    j0: usize,
    ncols: usize,
}

/// The epilogue of one block: removes the zero-point term and writes the sink (dequantized
/// f32 with bias and GELU, or the exact sums).
///
/// # Safety
/// `tile` holds the block's sums (rows `0..done.rows`); the sink is valid for rows
/// `r0 + done.i0 ..` and columns `done.j0 .. + done.ncols` (see [`gemm_serial_raw`]);
/// `avx512` only if the CPU has AVX-512F.
#[inline]
unsafe fn finish(
    w: &PackedI8,
    tile: &[i32; BLOCK * BLOCK],
    done: Done,
    scales: &[f32],
    r0: usize,
    sink: Sink,
    avx512: bool,
) {
    let Done {
        i0,
        rows,
        j0,
        ncols,
        ..
    } = done;
    let sw = &w.ops.scale[j0..j0 + BLOCK];
    let comp = &w.ops.comp[j0..j0 + BLOCK];
    match sink {
        Sink::F32 { c, out, bias, gelu } => {
            let bias = if bias.is_null() {
                None
            } else {
                // SAFETY: bias holds ≥ cols.end ≥ j0 + ncols floats (caller's contract);
                // the padded 32 are only read up to ncols below.
                Some(unsafe { std::slice::from_raw_parts(bias.add(j0), ncols) })
            };
            for i in 0..rows {
                let row = r0 + i0 + i;
                // SAFETY: row < m, columns j0..j0 + ncols ⊂ cols lie in one block of `out`
                // (caller's contract), contiguous.
                let dst =
                    unsafe { std::slice::from_raw_parts_mut(c.add(out.offset(row, j0)), ncols) };
                let acc = &tile[i * BLOCK..i * BLOCK + BLOCK];
                let sa = scales[i0 + i];
                #[cfg(target_arch = "x86_64")]
                if avx512 {
                    // SAFETY: the caller vouches for AVX-512F.
                    unsafe { epilogue::row_avx512(acc, comp, sw, sa, bias, gelu, dst) };
                    continue;
                }
                let _ = avx512;
                epilogue::row(acc, comp, sw, sa, bias, gelu, dst);
            }
        }
        #[cfg(test)]
        Sink::I32 { c, ldc } => {
            for i in 0..rows {
                let row = r0 + i0 + i;
                // SAFETY: row < m, columns j0..j0 + ncols ≤ ldc (test sink).
                let dst = unsafe { std::slice::from_raw_parts_mut(c.add(row * ldc + j0), ncols) };
                for ((d, &v), &cj) in dst.iter_mut().zip(&tile[i * BLOCK..]).zip(comp) {
                    *d = v - cj;
                }
            }
        }
    }
}

/// The f32 epilogue of one row of a block, `dst[j] = (acc[j] − comp[j]) as f32 · (sa ·
/// sw[j]) (+ bias[j]) (→ fast GELU)` for `j < dst.len() ≤ 32`: a portable form and an
/// AVX-512 form performing the same operations (same bits).
mod epilogue {
    use crate::vmath;

    pub(super) fn row(
        acc: &[i32],
        comp: &[i32],
        sw: &[f32],
        sa: f32,
        bias: Option<&[f32]>,
        gelu: bool,
        dst: &mut [f32],
    ) {
        for (j, d) in dst.iter_mut().enumerate() {
            let mut v = (acc[j] - comp[j]) as f32 * (sa * sw[j]);
            if let Some(b) = bias {
                v += b[j];
            }
            *d = if gelu { vmath::gelu_erf_fast(v) } else { v };
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `acc`, `comp` and `sw` hold 32 elements, `bias` (if
    /// any) at least `dst.len()`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn row_avx512(
        acc: &[i32],
        comp: &[i32],
        sw: &[f32],
        sa: f32,
        bias: Option<&[f32]>,
        gelu: bool,
        dst: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        debug_assert!(acc.len() >= 32 && comp.len() >= 32 && sw.len() >= 32 && dst.len() <= 32);
        let n = dst.len();
        let sa = _mm512_set1_ps(sa);
        for h in 0..2 {
            let lanes = n.saturating_sub(16 * h).min(16);
            if lanes == 0 {
                break;
            }
            let mask = if lanes == 16 {
                0xffff
            } else {
                ((1u32 << lanes) - 1) as __mmask16
            };
            // SAFETY: acc, comp and sw hold 32 elements; bias and dst are accessed under the
            // mask of their `lanes` remaining elements.
            unsafe {
                let q = _mm512_sub_epi32(
                    _mm512_loadu_si512(acc.as_ptr().add(16 * h).cast()),
                    _mm512_loadu_si512(comp.as_ptr().add(16 * h).cast()),
                );
                let s = _mm512_mul_ps(sa, _mm512_loadu_ps(sw.as_ptr().add(16 * h)));
                let mut v = _mm512_mul_ps(_mm512_cvtepi32_ps(q), s);
                if let Some(b) = bias {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, b.as_ptr().add(16 * h)));
                }
                if gelu {
                    v = vmath::avx512::gelu_erf_fast(v);
                }
                _mm512_mask_storeu_ps(dst.as_mut_ptr().add(16 * h), mask, v);
            }
        }
    }
}

/// Task grid of the int8 driver: row blocks of 32-row multiples up to [`MC_INT8`], 32-column
/// blocks.
const GRID: Grid = Grid {
    row_align: BLOCK,
    max_rows: MC_INT8,
    col_unit: BLOCK,
    min_parallel_work: PARALLEL_MIN_MACS,
};

impl PackedI8 {
    /// `out[layout.offset(i, j)] = (Σ_kk q_a[i, kk]·q_w[j, kk]) · (s_a[i]·s_w[j]) + bias[j]`
    /// (→ GELU, [`crate::vmath::gelu_erf_fast`]) for `i < m`, `j ∈ cols`, on `isa`, cut into
    /// tasks by the shared grid when `par` allows (see the module docs for the quantization).
    /// Other elements of `out` are left untouched.
    ///
    /// Panics unless `cols.start` is a multiple of 32, `cols.end ≤ n`, and `a`, `out` and
    /// `bias` (`[n]` at least) are large enough.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        isa: Int8Isa,
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
                    Sink::F32 {
                        c: c.get().add(layout.offset(rows.start, 0)),
                        out: layout,
                        bias: bias.get(),
                        gelu,
                    },
                )
            };
        });
    }

    /// The exact i32 sums `Σ_kk q_a[i, kk]·q_w[j, kk]` (zero point removed), `[m, n]`
    /// row-major, serially on `isa` (tests compare them with an integer reference).
    #[cfg(test)]
    pub fn int_sums(&self, isa: Int8Isa, a: &[f32], m: usize) -> Vec<i32> {
        assert!(a.len() >= m * self.k);
        let mut out = vec![i32::MIN; m * self.n];
        // SAFETY: a holds m rows of k floats; out holds m · n i32 with row stride n.
        unsafe {
            gemm_serial_raw(
                isa,
                self,
                m,
                a.as_ptr(),
                self.k,
                0..self.n,
                Sink::I32 {
                    c: out.as_mut_ptr(),
                    ldc: self.n,
                },
            )
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::int8::{quantize_row, quantize_weight_row};
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

    /// Activations with a per-row magnitude and a few outlier columns, like a transformer's.
    fn activations(m: usize, k: usize, seed: u64) -> Vec<f32> {
        let mut a = rand_vec(m * k, seed);
        for i in 0..m {
            let mag = 0.1 + (i % 7) as f32;
            for kk in 0..k {
                a[i * k + kk] *= if kk % 37 == 5 { 8.0 * mag } else { mag };
            }
        }
        a
    }

    /// The integer reference, computed independently of the packing and the kernels:
    /// per-row codes of `a` (signed), per-channel codes of `w`, their i64 dot products, and
    /// the scales.
    struct Reference {
        sums: Vec<i64>,
        sa: Vec<f32>,
        sw: Vec<f32>,
    }

    fn reference(a: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Reference {
        let mut qa = vec![0u8; m * k];
        let sa: Vec<f32> = (0..m)
            .map(|i| quantize_row(&a[i * k..(i + 1) * k], &mut qa[i * k..(i + 1) * k]))
            .collect();
        let mut qw = vec![0i8; n * k];
        let sw: Vec<f32> = (0..n)
            .map(|j| quantize_weight_row(&w[j * k..(j + 1) * k], &mut qw[j * k..(j + 1) * k]))
            .collect();
        let mut sums = vec![0i64; m * n];
        for i in 0..m {
            for j in 0..n {
                sums[i * n + j] = (0..k)
                    .map(|kk| (qa[i * k + kk] as i64 - 128) * qw[j * k + kk] as i64)
                    .sum();
            }
        }
        Reference { sums, sa, sw }
    }

    /// Odd shapes: M at 1 / 15 / 16 / 17 / 129, N odd, K not a multiple of 64 nor of 4.
    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 384, 384),
        (15, 33, 17),
        (16, 65, 63),
        (17, 31, 66),
        (3, 5, 3),
        (33, 100, 95),
        (129, 65, 770),
        (129, 97, 1537),
        (200, 96, 1536),
    ];

    #[test]
    fn int32_sums_are_exact_on_every_isa() {
        for isa in Int8Isa::available() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                let a = activations(m, k, 1 + s as u64);
                let w = rand_vec(n * k, 100 + s as u64);
                let packed = PackedI8::new(&w, n, k);
                let r = reference(&a, &w, m, n, k);
                assert_eq!(packed.scales(), &r.sw[..]);
                let got = packed.int_sums(isa, &a, m);
                for (idx, (&g, &want)) in got.iter().zip(&r.sums).enumerate() {
                    assert_eq!(g as i64, want, "{isa:?} {m}x{n}x{k} element {idx}");
                }
            }
        }
    }

    #[test]
    fn dequantized_output_matches_f64_on_every_isa_and_is_isa_independent() {
        let mut first: Vec<Vec<f32>> = Vec::new();
        for isa in Int8Isa::available() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                let a = activations(m, k, 1 + s as u64);
                let w = rand_vec(n * k, 100 + s as u64);
                let bias = rand_vec(n, 200 + s as u64);
                let packed = PackedI8::new(&w, n, k);
                let r = reference(&a, &w, m, n, k);
                let layout = OutLayout::row_major(n);
                let run = |par| {
                    let mut got = vec![f32::NAN; m * n];
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
                        par,
                    );
                    got
                };
                let got = run(Parallelism::Parallel);
                for i in 0..m {
                    for j in 0..n {
                        let idx = i * n + j;
                        let scaled = r.sums[idx] as f64 * r.sa[i] as f64 * r.sw[j] as f64;
                        let want = scaled + bias[j] as f64;
                        // Four f32 roundings: acc → f32, s_a·s_w, the product, + bias.
                        let tol = 4.0 * f32::EPSILON as f64 * (scaled.abs() + bias[j].abs() as f64);
                        let g = got[idx] as f64;
                        assert!(
                            (g - want).abs() <= tol,
                            "{isa:?} {m}x{n}x{k} ({i},{j}): {g} vs {want}"
                        );
                        // And the int8 product is close to the unquantized one: each code is
                        // off by at most half a step.
                        let (mut exact, mut bound) = (bias[j] as f64, tol);
                        for kk in 0..k {
                            let (x, y) = (a[i * k + kk] as f64, w[j * k + kk] as f64);
                            exact += x * y;
                            bound += x.abs() * r.sw[j] as f64 * 0.5
                                + (y.abs() + r.sw[j] as f64 * 0.5) * r.sa[i] as f64 * 0.5;
                        }
                        assert!(
                            (g - exact).abs() <= bound * (1.0 + 1e-5),
                            "{isa:?} {m}x{n}x{k} ({i},{j}): {g} vs unquantized {exact}, bound {bound}"
                        );
                    }
                }
                assert_eq!(
                    got,
                    run(Parallelism::Serial),
                    "{isa:?} {m}x{n}x{k}: parallel vs serial"
                );
                if first.len() <= s {
                    first.push(got);
                } else {
                    assert_eq!(
                        got, first[s],
                        "{isa:?} {m}x{n}x{k}: differs from the first ISA"
                    );
                }
            }
        }
    }

    #[test]
    fn column_range_strides_blocked_layout_and_gelu() {
        // Every ISA's output with bias and GELU (AVX-512 or portable epilogue): same bits.
        let mut first: Option<Vec<f32>> = None;
        for isa in Int8Isa::available() {
            let (m, n, k) = (37, 128, 50);
            let a_ld = 61;
            let a = activations(m, a_ld, 3);
            let w = rand_vec(n * k, 4);
            let bias = rand_vec(n, 5);
            let packed = PackedI8::new(&w, n, k);
            let dense: Vec<f32> = (0..m)
                .flat_map(|i| a[i * a_ld..i * a_ld + k].to_vec())
                .collect();
            let r = reference(&dense, &w, m, n, k);
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
                        let scaled = r.sums[i * n + j] as f64 * r.sa[i] as f64 * r.sw[j] as f64;
                        let x = scaled + bias[j] as f64;
                        let gelu = x * 0.5 * (1.0 + libm::erf(x / 2f64.sqrt()));
                        let tol = 4.0 * f32::EPSILON as f64 * (scaled.abs() + bias[j].abs() as f64)
                            + 1e-6 * gelu.abs()
                            + 1e-7;
                        assert!(
                            (g as f64 - gelu).abs() <= tol,
                            "{isa:?} ({i},{j}): {g} vs {gelu}"
                        );
                    } else {
                        assert_eq!(g, -7.0, "{isa:?} ({i},{j}) written outside the range");
                    }
                }
            }
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    f.iter().zip(&got).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{isa:?} differs from the first ISA's bits"
                ),
            }
        }
    }

    #[test]
    fn row_results_do_not_depend_on_the_batch() {
        for isa in Int8Isa::available() {
            let (n, k) = (96, 200);
            let w = rand_vec(n * k, 7);
            let bias = rand_vec(n, 17);
            let packed = PackedI8::new(&w, n, k);
            let a = activations(300, k, 8);
            let run = |rows: &[f32], m: usize| {
                let mut out = vec![0f32; m * n];
                packed.forward(
                    isa,
                    rows,
                    k,
                    m,
                    0..n,
                    &mut out,
                    OutLayout::row_major(n),
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
                // The same row among other rows (a different batch) as well.
                let mut other = activations(20, k, 99);
                other[11 * k..12 * k].copy_from_slice(&a[row * k..(row + 1) * k]);
                let some = run(&other, 20);
                assert_eq!(&all[row * n..(row + 1) * n], &some[11 * n..12 * n]);
            }
        }
    }

    #[test]
    fn many_threads_give_the_same_bits() {
        let (m, n, k) = (1000, 256, 384);
        let a = activations(m, k, 9);
        let w = rand_vec(n * k, 10);
        let packed = PackedI8::new(&w, n, k);
        let isa = Int8Isa::active();
        let run = |par| {
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
                par,
            );
            out
        };
        let one = run(Parallelism::Serial);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(5)
            .build()
            .unwrap();
        let many = pool.install(|| run(Parallelism::Parallel));
        assert_eq!(one, many);
    }

    #[test]
    fn zero_and_non_finite_rows() {
        let (n, k) = (32, 70);
        let w = rand_vec(n * k, 11);
        let bias = rand_vec(n, 12);
        let packed = PackedI8::new(&w, n, k);
        let mut a = vec![0f32; 3 * k];
        a[k..2 * k].copy_from_slice(&rand_vec(k, 13));
        a[2 * k + 4] = f32::NAN;
        for isa in Int8Isa::available() {
            let mut out = vec![0f32; 3 * n];
            packed.forward(
                isa,
                &a,
                k,
                3,
                0..n,
                &mut out,
                OutLayout::row_major(n),
                Some(&bias),
                false,
                Parallelism::Serial,
            );
            assert_eq!(&out[..n], &bias[..], "{isa:?}: a zero row gives the bias");
            assert!(out[n..2 * n].iter().all(|v| v.is_finite()));
            assert!(out[2 * n..].iter().all(|v| v.is_nan()), "{isa:?}: NaN row");
        }
    }
}
