//! f32 GEMM `C[m, n] = A[m, k] · W[n, k]ᵀ (+ bias) (→ GELU)` — PyTorch's `nn.Linear` — with
//! the weight packed once at load time ([`PackedF32`], the f32 storage of [`crate::Linear`]),
//! plus a strided single-threaded variant for attention's per-head products
//! ([`gemm_strided_serial`]).
//!
//! Blocking (BLIS-style, sized for 48 KiB L1d / 2 MiB L2 per core):
//! - `k` is cut into [`k_blocks`] of at most [`KC`] = 384 (balanced, so 1536 = 4 × 384);
//!   one packed `B` micro-panel `kc × NR` (≤ 48 KiB, software-prefetched by the kernel) is
//!   reused by every `A` panel of a block;
//! - `m` is cut into blocks of at most [`MC`] = 168 rows; the packed `A` block `MC × kc`
//!   (≤ 252 KiB) stays in L2 while all `n` panels stream past it;
//! - `n` is covered in panels of [`NR`] = 32 columns.
//!
//! Loop order per task: m-block → k-block (pack `A`) → n-panel → `MR`-row panel →
//! micro-kernel. Partial sums of later k-blocks are added to `C` in the kernel epilogue; the
//! bias (and GELU) are applied with the last k-block. Each output element is therefore
//! computed by the same sequence of operations whatever `m` is and whichever task computes it,
//! so a row's result does not depend on the batch it is in.
//!
//! Parallelism: [`PackedF32::forward`] cuts `C` with the task grid shared by every precision
//! ([`crate::schedule`]). The output may be row-major or split into column blocks
//! ([`OutLayout`], e.g. one `[tokens, head_dim]` block per attention head).
//!
//! Tuning (single thread, Sapphire Rapids, m = 4800): the micro-kernel alone reaches
//! ≈ 155–165 GFLOP/s (≈ 95 % of one core's FMA peak); the blocked product on MiniLM's shapes
//! ≈ 85–90 % of that. KC = 256/192/128 and MC = 84/336 measured no better; prefetching the C
//! tile (`prefetchw`) and the B panel were worth ≈ +20 % and ≈ +5 %.

use std::cell::RefCell;
use std::ops::Range;

use crate::buffer::{AlignedVec, SendPtr};
use crate::isa::Isa;
use crate::layout::OutLayout;
use crate::microkernel::{self, Epilogue, NR};
use crate::pack::{pack_cols, pack_rows};
use crate::schedule::{Grid, Parallelism};

/// Largest k-block.
pub(crate) const KC: usize = 384;
/// Largest m-block (a multiple of every ISA's `MR`: 14, 6 and 4).
pub(crate) const MC: usize = 168;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN_FMAS: usize = 1 << 21;

thread_local! {
    /// Packed `A` block of the running task.
    static PACK_A: RefCell<AlignedVec> = RefCell::new(AlignedVec::default());
    /// Packed `B` of [`gemm_strided_serial`].
    static PACK_B: RefCell<AlignedVec> = RefCell::new(AlignedVec::default());
}

/// The k-blocks `(k0, len)` of a depth-`k` product: `ceil(k / KC)` blocks of equal size
/// (the last one possibly shorter).
pub(crate) fn k_blocks(k: usize) -> impl Iterator<Item = (usize, usize)> {
    let kc = block_len(k);
    (0..k)
        .step_by(kc.max(1))
        .map(move |k0| (k0, kc.min(k - k0)))
}

/// Length of the (full) k-blocks of a depth-`k` product.
pub(crate) fn block_len(k: usize) -> usize {
    let nb = k.div_ceil(KC).max(1);
    k.div_ceil(nb)
}

/// A right operand packed by [`pack_cols`] into `NR`-column panels per k-block: the block
/// starting at `k0` of length `kb` holds, from offset `k0 · n_pad`, its panels one after the
/// other, each `kb × NR` (column `j·NR + c` of row `k0 + kk` at `kk·NR + c`, zero past `n`).
#[derive(Clone, Copy)]
struct PackedB<'a> {
    data: &'a [f32],
    n: usize,
    k: usize,
    n_pad: usize,
}

/// Single-threaded blocked product on columns `cols` (panel-aligned start) of `C`:
/// `C[i, j] = Σ_kk A[i, kk]·B[kk, j] (+ bias[j]) (→ GELU)` for `i < m`, `j ∈ cols`.
///
/// # Safety
/// `a` valid for `(i, kk)` at `a[i·a_rs + kk·a_cs]`, `i < m`, `kk < b.k`; `c` valid for
/// reads and writes at `c[out.offset(i, j)]`, `i < m`, `j ∈ cols` (panels not straddling
/// blocks); `bias` null or valid for `b.n_pad` floats; `cols.start % NR == 0`,
/// `cols.end ≤ b.n`; `isa` supported.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_serial_raw(
    isa: Isa,
    m: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: PackedB<'_>,
    cols: Range<usize>,
    c: *mut f32,
    out: OutLayout,
    bias: *const f32,
    gelu: bool,
) {
    debug_assert!(cols.end <= b.n);
    if m == 0 || cols.is_empty() {
        return;
    }
    if b.k == 0 {
        // Empty sum: C = bias (→ GELU).
        for i in 0..m {
            for j in cols.clone() {
                // SAFETY: i < m, j ∈ cols (caller's contract); bias holds n_pad ≥ j floats.
                unsafe {
                    let mut v = if bias.is_null() { 0.0 } else { *bias.add(j) };
                    if gelu {
                        v = super::vmath::gelu_erf(v);
                    }
                    *c.add(out.offset(i, j)) = v;
                }
            }
        }
        return;
    }
    let mr = isa.mr();
    let kc = block_len(b.k);
    let panels = cols.start / NR..cols.end.div_ceil(NR);
    PACK_A.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.ensure(m.min(MC).div_ceil(mr) * mr * kc);
        let pa = buf.as_mut_slice().as_mut_ptr();
        for r0 in (0..m).step_by(MC) {
            let mb = MC.min(m - r0);
            for (k0, kb) in k_blocks(b.k) {
                // SAFETY: rows r0..r0 + mb < m and columns k0..k0 + kb < k of A are
                // readable; the buffer holds MC.div_ceil(mr)·mr·kc ≥ mb.div_ceil(mr)·mr·kb.
                unsafe { pack_rows(isa, a.add(r0 * a_rs), a_rs, a_cs, mb, k0, kb, mr, pa) };
                let last = k0 + kb == b.k;
                for j in panels.clone() {
                    let bp = &b.data[k0 * b.n_pad + j * kb * NR..][..kb * NR];
                    let ncols = NR.min(cols.end - j * NR);
                    let ep = Epilogue {
                        accumulate: k0 > 0,
                        bias: if last && !bias.is_null() {
                            // SAFETY: bias holds n_pad = (j + 1)·NR + … floats.
                            unsafe { bias.add(j * NR) }
                        } else {
                            std::ptr::null()
                        },
                        gelu: last && gelu,
                    };
                    for (p, i0) in (0..mb).step_by(mr).enumerate() {
                        // SAFETY: A panel p holds kb × mr floats; the tile rows r0 + i0 ..
                        // + rows < m and columns j·NR .. + ncols ⊂ cols are in C.
                        unsafe {
                            microkernel::run(
                                isa,
                                kb,
                                pa.add(p * kb * mr),
                                mr,
                                bp.as_ptr(),
                                c.add(out.offset(r0 + i0, j * NR)),
                                out.ldc,
                                mr.min(mb - i0),
                                ncols,
                                ep,
                            )
                        };
                    }
                }
            }
        }
    });
}

/// The weight of an `nn.Linear` (`[n, k]`) packed for the f32 micro-kernels (NR-column
/// panels per k-block). Packing happens once, at load time.
#[derive(Debug, Clone)]
pub(crate) struct PackedF32 {
    /// Output features.
    pub n: usize,
    /// Input features.
    pub k: usize,
    n_pad: usize,
    data: AlignedVec,
}

/// Task grid of the f32 driver: row blocks of `MR` multiples up to [`MC`], NR-column panels.
fn grid(isa: Isa) -> Grid {
    Grid {
        row_align: isa.mr(),
        max_rows: MC,
        col_unit: NR,
        min_parallel_work: PARALLEL_MIN_FMAS,
    }
}

impl PackedF32 {
    /// Packs `weight`: `[n, k]` row-major (PyTorch's `nn.Linear.weight`).
    ///
    /// Panics if `weight.len() != n·k`.
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k, "weight is not [{n}, {k}]");
        let n_pad = n.div_ceil(NR) * NR;
        let mut data = AlignedVec::zeros(k * n_pad);
        pack_cols(
            Isa::active(),
            weight,
            k,
            n,
            1,
            k,
            k_blocks(k),
            data.as_mut_slice(),
        );
        PackedF32 { n, k, n_pad, data }
    }

    /// Bytes of packed weight.
    pub fn size_bytes(&self) -> usize {
        self.data.len() * 4
    }

    fn packed(&self) -> PackedB<'_> {
        PackedB {
            data: self.data.as_slice(),
            n: self.n,
            k: self.k,
            n_pad: self.n_pad,
        }
    }

    /// `out[layout.offset(i, j)] = Σ_kk a[i·lda + kk]·W[j, kk] (+ bias[j]) (→ exact GELU)` for
    /// `i < m`, `j ∈ cols`, on `isa`, cut into tasks by the shared grid when `par` allows.
    /// Other elements of `out` are left untouched.
    ///
    /// The caller has checked the operands: `cols.start` a multiple of `NR`,
    /// `cols.end ≤ n`, `a` holding `m` rows of stride `lda ≥ k`, `out` holding every
    /// `layout.offset(i, j)` named ([`OutLayout::check`]), `bias` (if any) at least
    /// `n.div_ceil(NR)·NR` floats; panics if not (the unsafe kernel relies on it).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        isa: Isa,
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
        if m == 0 || cols.is_empty() {
            return;
        }
        assert!(
            cols.start.is_multiple_of(NR) && cols.end <= self.n,
            "columns {cols:?}"
        );
        assert!(
            lda >= self.k && a.len() >= (m - 1) * lda + self.k,
            "A too small"
        );
        layout.check(m, &cols, out.len());
        if let Some(b) = bias {
            assert!(b.len() >= self.n_pad, "bias shorter than {}", self.n_pad);
        }
        let c = SendPtr(out.as_mut_ptr());
        let bias = SendPtr(bias.map_or(std::ptr::null(), <[f32]>::as_ptr) as *mut f32);
        let packed = self.packed();
        let work = m * self.k * cols.len();
        grid(isa).run(m, cols, work, par, |rows, cols| {
            // SAFETY: operands checked above. Each task writes the disjoint block rows
            // `rows` × columns `cols` of `out` (offsets are linear in the row, so shifting the
            // base by row `rows.start` addresses those rows), which outlives this scoped call;
            // `a`, the packed weight and the bias are only read.
            unsafe {
                gemm_serial_raw(
                    isa,
                    rows.len(),
                    a.as_ptr().add(rows.start * lda),
                    lda,
                    1,
                    packed,
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

/// Strided single-threaded product `C[m, n] = A[m, k] · B[k, n]` with no bias, where
/// `A(i, kk) = a[i·a_rs + kk·a_cs]`, `B(kk, j) = b[kk·b_rs + j·b_cs]`,
/// `C(i, j) = c[i·ldc + j]`. `B` is packed into a per-thread buffer on every call, so this
/// suits attention's small per-(sequence, head) products `Q·Kᵀ` (`B = Kᵀ`: `b_rs = 1`,
/// `b_cs = row stride of K`) and `P·V` (`b_rs = row stride of V`, `b_cs = 1`).
///
/// # Safety
/// `isa` supported by the CPU; every element named above must be in bounds of its buffer (`a`, `b` readable, `c`
/// readable and writable, `c` not overlapping `a` or `b`) for `i < m`, `j < n`, `kk < k`.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_strided_serial(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    a_rs: usize,
    a_cs: usize,
    b: *const f32,
    b_rs: usize,
    b_cs: usize,
    c: *mut f32,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let n_pad = n.div_ceil(NR) * NR;
    PACK_B.with(|cell| {
        let mut buf = cell.borrow_mut();
        buf.ensure(k * n_pad);
        let dst = &mut buf.as_mut_slice()[..k * n_pad];
        // Element (kk, j) of B is b[kk·b_rs + j·b_cs]: view the readable span as a slice.
        let span = if k == 0 {
            0
        } else {
            (k - 1) * b_rs + (n - 1) * b_cs + 1
        };
        // SAFETY: every element of the span up to the last one named is in bounds of `b`
        // (caller's contract; the elements in between lie between named ones in the same
        // buffer).
        let src = unsafe { std::slice::from_raw_parts(b, span) };
        pack_cols(isa, src, k, n, b_rs, b_cs, k_blocks(k), dst);
        let packed = PackedB {
            data: dst,
            n,
            k,
            n_pad,
        };
        // SAFETY: forwarded contract, no bias.
        unsafe {
            gemm_serial_raw(
                isa,
                m,
                a,
                a_rs,
                a_cs,
                packed,
                0..n,
                c,
                OutLayout::row_major(ldc),
                std::ptr::null(),
                false,
            )
        };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bias` zero-padded to a whole panel, as [`crate::Linear`] stores it.
    fn padded(bias: &[f32]) -> Vec<f32> {
        let mut v = bias.to_vec();
        v.resize(bias.len().div_ceil(NR) * NR, 0.0);
        v
    }

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

    /// f64-accumulated `A · Wᵀ + bias` (→ GELU), and Σ|a·w| + |bias| per element (the scale
    /// that bounds the f32 rounding error).
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
                    let p = a[i * k + kk] as f64 * w[j * k + kk] as f64;
                    s += p;
                    g += p.abs();
                }
                out[i * n + j] = s;
                mag[i * n + j] = g;
            }
        }
        (out, mag)
    }

    /// Max over elements of |got − want| / (Σ|a·w| + |bias|).
    fn max_rel_err(got: &[f32], want: &[f64], mag: &[f64]) -> f64 {
        got.iter()
            .zip(want)
            .zip(mag)
            .map(|((&g, &w), &s)| (g as f64 - w).abs() / s.max(1e-30))
            .fold(0.0, f64::max)
    }

    const SHAPES: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 384, 384),
        (1, 7, 1536),
        (3, 5, 3),
        (13, 33, 17),
        (14, 32, 16),
        (15, 31, 385),
        (29, 100, 770),
        (200, 65, 1000),
        (333, 1152, 384),
        (170, 96, 1536),
    ];

    #[test]
    fn packed_linear_matches_f64_reference_on_every_isa() {
        for isa in Isa::available() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                let a = rand_vec(m * k, 1 + s as u64);
                let w = rand_vec(n * k, 100 + s as u64);
                let bias = rand_vec(n, 200 + s as u64);
                let lin = PackedF32::new(&w, n, k);
                let b = padded(&bias);
                let (want, mag) = reference(&a, &w, Some(&bias), m, n, k);
                let run = |par| {
                    let mut got = vec![f32::NAN; m * n];
                    let layout = OutLayout::row_major(n);
                    lin.forward(isa, &a, k, m, 0..n, &mut got, layout, Some(&b), false, par);
                    got
                };
                let got = run(Parallelism::Parallel);
                let err = max_rel_err(&got, &want, &mag);
                assert!(err < 1e-6, "{isa:?} {m}x{n}x{k}: rel err {err}");
                let serial = run(Parallelism::Serial);
                assert_eq!(got, serial, "{isa:?} {m}x{n}x{k}: parallel vs serial");
            }
        }
    }

    #[test]
    fn row_results_do_not_depend_on_m() {
        let (n, k) = (96, 777);
        let w = rand_vec(n * k, 7);
        let lin = PackedF32::new(&w, n, k);
        let a = rand_vec(300 * k, 8);
        let run = |a: &[f32], m: usize| {
            let mut out = vec![0f32; m * n];
            let (isa, layout) = (Isa::active(), OutLayout::row_major(n));
            lin.forward(
                isa,
                a,
                k,
                m,
                0..n,
                &mut out,
                layout,
                None,
                false,
                Parallelism::Parallel,
            );
            out
        };
        let all = run(&a, 300);
        for (i, row) in [0usize, 13, 14, 167, 168, 299].iter().enumerate() {
            let one = run(&a[row * k..(row + 1) * k], 1);
            assert_eq!(&all[row * n..(row + 1) * n], &one[..], "row {row} ({i})");
        }
    }

    #[test]
    fn column_range_strides_and_gelu_epilogue() {
        for isa in Isa::available() {
            let (m, n, k) = (37, 100, 50);
            let a_ld = 61;
            let ldc = 130;
            let a = rand_vec(m * a_ld, 3);
            let w = rand_vec(n * k, 4);
            let bias = rand_vec(n, 5);
            let lin = PackedF32::new(&w, n, k);
            let dense: Vec<f32> = (0..m)
                .flat_map(|i| a[i * a_ld..i * a_ld + k].to_vec())
                .collect();
            let (want, mag) = reference(&dense, &w, Some(&bias), m, n, k);
            let mut got = vec![-7f32; m * ldc];
            lin.forward(
                isa,
                &a,
                a_ld,
                m,
                32..90,
                &mut got,
                OutLayout::row_major(ldc),
                Some(&padded(&bias)),
                true,
                Parallelism::Parallel,
            );
            for i in 0..m {
                for j in 0..ldc {
                    let g = got[i * ldc + j];
                    if (32..90).contains(&j) {
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
    fn blocked_output_layout_equals_row_major() {
        for isa in Isa::available() {
            let (m, n, k) = (45, 3 * 64, 70);
            let a = rand_vec(m * k, 21);
            let w = rand_vec(n * k, 22);
            let bias = rand_vec(n, 23);
            let lin = PackedF32::new(&w, n, k);
            let b = padded(&bias);
            let (par, ser) = (Parallelism::Parallel, Parallelism::Serial);
            let mut dense = vec![0f32; m * n];
            let rm = OutLayout::row_major(n);
            lin.forward(isa, &a, k, m, 0..n, &mut dense, rm, Some(&b), false, par);
            let layout = OutLayout::blocked(64, m);
            let mut blocked = vec![f32::NAN; 3 * m * 64];
            lin.forward(
                isa,
                &a,
                k,
                m,
                64..n,
                &mut blocked,
                layout,
                Some(&b),
                false,
                par,
            );
            lin.forward(
                isa,
                &a,
                k,
                14,
                0..64,
                &mut blocked,
                layout,
                Some(&b),
                false,
                ser,
            );
            for i in 0..m {
                for j in 0..n {
                    let g = blocked[(j / 64) * m * 64 + i * 64 + j % 64];
                    if j >= 64 || i < 14 {
                        assert_eq!(g, dense[i * n + j], "{isa:?} ({i},{j})");
                    } else {
                        assert!(g.is_nan(), "{isa:?} ({i},{j}) written outside the request");
                    }
                }
            }
        }
    }

    #[test]
    fn strided_products_match_reference() {
        for isa in Isa::available() {
            // Q·Kᵀ with K rows of stride 40 (head at column 3), then P·V.
            let (m, n, d, ld) = (19, 23, 33, 40);
            let q = rand_vec(m * ld, 11);
            let kv = rand_vec(n * ld, 12);
            let mut s = vec![0f32; m * n];
            // SAFETY: indices stay below m·ld and n·ld (column 3 + 33 ≤ 40).
            unsafe {
                gemm_strided_serial(
                    isa,
                    m,
                    n,
                    d,
                    q.as_ptr().add(3),
                    ld,
                    1,
                    kv.as_ptr().add(3),
                    1,
                    ld,
                    s.as_mut_ptr(),
                    n,
                )
            };
            for i in 0..m {
                for j in 0..n {
                    let (mut want, mut mag) = (0f64, 0f64);
                    for kk in 0..d {
                        let p = q[i * ld + 3 + kk] as f64 * kv[j * ld + 3 + kk] as f64;
                        want += p;
                        mag += p.abs();
                    }
                    assert!((s[i * n + j] as f64 - want).abs() <= 1e-6 * mag);
                }
            }
            let mut o = vec![0f32; m * ld];
            // SAFETY: P is m × n dense; V(kk, j) = kv[kk·ld + 3 + j] < n·ld; C columns 3..36.
            unsafe {
                gemm_strided_serial(
                    isa,
                    m,
                    d,
                    n,
                    s.as_ptr(),
                    n,
                    1,
                    kv.as_ptr().add(3),
                    ld,
                    1,
                    o.as_mut_ptr().add(3),
                    ld,
                )
            };
            for i in 0..m {
                for j in 0..d {
                    let (mut want, mut mag) = (0f64, 0f64);
                    for kk in 0..n {
                        let p = s[i * n + kk] as f64 * kv[kk * ld + 3 + j] as f64;
                        want += p;
                        mag += p.abs();
                    }
                    assert!((o[i * ld + 3 + j] as f64 - want).abs() <= 1e-6 * mag);
                }
            }
        }
    }

    #[test]
    fn k_blocks_cover_k() {
        for k in [1, 383, 384, 385, 768, 1000, 1536, 3072] {
            let blocks: Vec<_> = k_blocks(k).collect();
            assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), k);
            assert!(blocks.iter().all(|b| b.1 <= KC && b.1 > 0));
            assert_eq!(blocks.len(), k.div_ceil(KC));
        }
        assert_eq!(
            k_blocks(1536).map(|b| b.1).collect::<Vec<_>>(),
            vec![384; 4]
        );
    }
}
