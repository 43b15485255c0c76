//! bf16 operands of the bf16 GEMM: f32 → bf16 rounding, the packed layouts, and the 32×32
//! block kernels of the non-AMX instruction sets (AVX512-BF16, AVX2 + FMA, portable).
//!
//! Layouts (bf16 stored as `u16`, the upper half of the f32 bit pattern):
//! - **A** (activations, packed per call by [`pack_a`]): row-major `[rows_pad, k_pad]`,
//!   `k_pad = k` rounded up to [`TILE_K`] = 32 and `rows_pad` to [`BLOCK`] = 32, zero-filled;
//! - **B** (weights, packed once by [`pack_b`]): 16-column panels, each `k_pad / 2` rows of
//!   32 bf16 in VNNI order — row `r` of panel `p` holds `B[2r][16p + j], B[2r+1][16p + j]` for
//!   `j = 0..16` — i.e. exactly one AMX `B` tile row and one `vdpbf16ps` operand. Panel `p`
//!   starts at `p · 16 · k_pad`; columns past `n` are zero up to a multiple of 32.
//!
//! Rounding is round-to-nearest-even (NaN stays NaN), as PyTorch's `tensor.to(torch.bfloat16)`.

/// bf16 elements per AMX tile row (64 bytes): the k-step of the kernels.
pub const TILE_K: usize = 32;
/// Columns of a VNNI panel (one AMX tile / one zmm of f32 results).
pub const PANEL: usize = 16;
/// Rows and columns of the kernels' output block.
pub const BLOCK: usize = 32;

/// `x` rounded to the nearest bf16 (ties to even), as its 16-bit pattern.
#[inline]
pub fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        // Keep a quiet NaN (the rounding could carry into the exponent otherwise).
        return ((b >> 16) | 0x40) as u16;
    }
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// The f32 value of a bf16 bit pattern (exact).
#[inline]
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// `x` rounded to bf16 precision, as f32.
#[cfg(test)]
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    bf16_to_f32(f32_to_bf16(x))
}

pub use super::buffer::AlignedBf16;

/// `k` rounded up to a multiple of [`TILE_K`].
pub fn k_padded(k: usize) -> usize {
    k.div_ceil(TILE_K) * TILE_K
}

/// Packs `weight` (`[n, k]` row-major, `B[kk][j] = weight[j·k + kk]`) into VNNI panels (see
/// the module docs). Returns the buffer, `k_pad` and `n_pad` (a multiple of [`BLOCK`]).
pub fn pack_b(weight: &[f32], n: usize, k: usize) -> (AlignedBf16, usize, usize) {
    assert_eq!(weight.len(), n * k, "weight is not [{n}, {k}]");
    let (data, k_pad) = pack_b_strided(weight, n, k, k, 1);
    (data, k_pad, n.div_ceil(BLOCK) * BLOCK)
}

/// The packing of [`pack_b`] for a strided operand (which [`pack_b`] is, with stride `k`): `B[kk][j] = src[j·stride_n + kk·stride_k]` for `j < n`,
/// `kk < k` (attention packs its keys, `stride_k = 1`, and its values, `stride_n = 1`, per
/// head and sequence this way). Returns the buffer and `k_pad`.
///
/// Panics if `src` is too short for the largest offset.
pub fn pack_b_strided(
    src: &[f32],
    n: usize,
    k: usize,
    stride_n: usize,
    stride_k: usize,
) -> (AlignedBf16, usize) {
    let k_pad = k_padded(k);
    let n_pad = n.div_ceil(BLOCK) * BLOCK;
    let mut data = AlignedBf16::zeros(n_pad * k_pad);
    if n == 0 || k == 0 {
        return (data, k_pad);
    }
    assert!(
        src.len() > (n - 1) * stride_n + (k - 1) * stride_k,
        "pack_b_strided: source too short"
    );
    let d = data.as_mut_slice();
    #[cfg(target_arch = "x86_64")]
    if crate::isa::Isa::active() == crate::isa::Isa::Avx512 {
        if stride_k == 1 && k.is_multiple_of(16) {
            // SAFETY: AVX-512F is present (Isa::Avx512); bounds checked above.
            unsafe { x86::pack_rows_avx512(src, n, k, k_pad, stride_n, d) };
            return (data, k_pad);
        }
        if stride_n == 1 && n.is_multiple_of(PANEL) {
            // SAFETY: as above.
            unsafe { x86::pack_cols_avx512(src, n, k, k_pad, stride_k, d) };
            return (data, k_pad);
        }
    }
    for j in 0..n {
        let panel = &mut d[(j / PANEL) * PANEL * k_pad..][..PANEL * k_pad];
        let col = (j % PANEL) * 2;
        let base = j * stride_n;
        for kk in 0..k {
            panel[(kk / 2) * 2 * PANEL + col + kk % 2] = f32_to_bf16(src[base + kk * stride_k]);
        }
    }
    (data, k_pad)
}

/// Converts rows `0..rows` of `A` (`a[i·lda + kk]`, `kk < k`) to bf16 into `dst`, row-major
/// with row stride `k_pad`; zero-fills columns `k..k_pad` and rows `rows..rows_pad`.
///
/// # Safety
/// `a` valid for reads at `i·lda + kk` for `i < rows`, `kk < k`; `dst` valid for writes of
/// `rows_pad · k_pad` elements; `k ≤ k_pad`, `rows ≤ rows_pad`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn pack_a(
    avx512bf16: bool,
    a: *const f32,
    lda: usize,
    rows: usize,
    k: usize,
    k_pad: usize,
    rows_pad: usize,
    dst: *mut u16,
) {
    for i in 0..rows {
        // SAFETY: row i of A has k readable floats; row i of dst has k_pad writable elements.
        let (src, out) = unsafe {
            (
                std::slice::from_raw_parts(a.add(i * lda), k),
                std::slice::from_raw_parts_mut(dst.add(i * k_pad), k_pad),
            )
        };
        #[cfg(target_arch = "x86_64")]
        if avx512bf16 {
            // SAFETY: the caller only sets avx512bf16 when the CPU has it.
            unsafe { convert_row_avx512bf16(src, &mut out[..k]) };
        } else {
            convert_row(src, &mut out[..k]);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = avx512bf16;
            convert_row(src, &mut out[..k]);
        }
        out[k..].fill(0);
    }
    if rows_pad > rows {
        // SAFETY: rows rows..rows_pad of dst are writable (caller's contract).
        unsafe {
            std::ptr::write_bytes(dst.add(rows * k_pad), 0, (rows_pad - rows) * k_pad);
        }
    }
}

/// `out[i] = bf16(src[i])`.
fn convert_row(src: &[f32], out: &mut [u16]) {
    for (o, &x) in out.iter_mut().zip(src) {
        *o = f32_to_bf16(x);
    }
}

/// [`convert_row`] with `vcvtneps2bf16`, 16 floats at a time. (The instruction treats f32
/// subnormal inputs as zero; they are below every value that matters here.)
///
/// # Safety
/// The CPU supports AVX-512F and AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_row_avx512bf16(src: &[f32], out: &mut [u16]) {
    use std::arch::x86_64::*;
    let n = src.len().min(out.len());
    let full = n / 16 * 16;
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 ≤ n for both slices; unaligned loads/stores.
        unsafe {
            let v = _mm512_loadu_ps(src.as_ptr().add(i));
            let h = _mm512_cvtneps_pbh(v);
            _mm256_storeu_si256(
                out.as_mut_ptr().add(i) as *mut __m256i,
                std::mem::transmute::<__m256bh, __m256i>(h),
            );
        }
    }
    convert_row(&src[full..n], &mut out[full..n]);
}

/// `c[32 × 32] = A[32 × k_pad] · B[k_pad × 32]` (operands as in [`crate::amx::block_32x32`])
/// with `vdpbf16ps`, as four 8-row strips of 16 accumulators.
///
/// # Safety
/// The CPU supports AVX-512F and AVX512-BF16; `k_pad` even; pointers valid as in
/// [`crate::amx::block_32x32`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn block_32x32_avx512bf16(
    a: *const u16,
    lda: usize,
    b0: *const u16,
    b1: *const u16,
    k_pad: usize,
    c: *mut f32,
) {
    use std::arch::x86_64::*;
    const R: usize = 8;
    for strip in 0..BLOCK / R {
        let a = a.wrapping_add(strip * R * lda);
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for kp in 0..k_pad / 2 {
            // SAFETY: VNNI row kp of each panel is 32 bf16 = 64 bytes inside the panel; A's
            // pair (2kp, 2kp+1) of row i < 32 is inside A (caller's contract).
            unsafe {
                let v0: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b0.add(kp * 32) as *const _));
                let v1: __m512bh =
                    std::mem::transmute(_mm512_loadu_si512(b1.add(kp * 32) as *const _));
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let pair = (a.add(i * lda + 2 * kp) as *const i32).read_unaligned();
                    let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                    acc_i[0] = _mm512_dpbf16_ps(acc_i[0], av, v0);
                    acc_i[1] = _mm512_dpbf16_ps(acc_i[1], av, v1);
                }
            }
        }
        for (i, acc_i) in acc.iter().enumerate() {
            // SAFETY: row strip·8 + i < 32 of c holds 32 floats.
            unsafe {
                let row = c.add((strip * R + i) * BLOCK);
                _mm512_storeu_ps(row, acc_i[0]);
                _mm512_storeu_ps(row.add(PANEL), acc_i[1]);
            }
        }
    }
}

/// `c[rows × 32] = A[rows × k_pad] · B[k_pad × 32]` (operands as in
/// [`crate::amx::block_32x32`]) with AVX2 + FMA, for CPUs without AVX512-BF16 (AMD Zen 2/3,
/// Intel before Cooper Lake). bf16 → f32 is exact and free of rounding: each 32-bit lane of a
/// VNNI row holds the pair `(B[2kp][j], B[2kp+1][j])`, so `lane << 16` is the even-k value and
/// `lane & 0xFFFF_0000` the odd-k one. Two rows at a time, 4 × 8 accumulators; per k the sum is
/// `fma(a_odd, b_odd, fma(a_even, b_even, acc))`. Rows `rows..32` of `c` are not written.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `k_pad` even; `rows ≤ 32`; pointers valid as in
/// [`crate::amx::block_32x32`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn block_32x32_avx2(
    a: *const u16,
    lda: usize,
    b0: *const u16,
    b1: *const u16,
    k_pad: usize,
    c: *mut f32,
    rows: usize,
) {
    use std::arch::x86_64::*;
    const R: usize = 2;
    const HI: u32 = 0xFFFF_0000;
    let hi = _mm256_set1_epi32(HI as i32);
    let mut i0 = 0;
    while i0 < rows {
        let nr = R.min(rows - i0);
        // An odd last row is computed twice and stored once.
        let rows_a = [
            a.wrapping_add(i0 * lda),
            a.wrapping_add((i0 + nr - 1) * lda),
        ];
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        for kp in 0..k_pad / 2 {
            // SAFETY: VNNI row kp of each panel is 32 bf16 = 64 bytes inside the panel; A's
            // pair (2kp, 2kp+1) of rows i0 .. i0 + nr < rows ≤ 32 is inside A (caller's contract).
            unsafe {
                let p0 = b0.add(kp * 32) as *const __m256i;
                let p1 = b1.add(kp * 32) as *const __m256i;
                let src = [p0, p0.add(1), p1, p1.add(1)];
                let pairs = [
                    (rows_a[0].add(2 * kp) as *const u32).read_unaligned(),
                    (rows_a[1].add(2 * kp) as *const u32).read_unaligned(),
                ];
                let mut b = [_mm256_setzero_ps(); 4];
                for (bv, &p) in b.iter_mut().zip(&src) {
                    *bv = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_loadu_si256(p)));
                }
                for (acc_r, &pair) in acc.iter_mut().zip(&pairs) {
                    let av = _mm256_set1_ps(f32::from_bits(pair << 16));
                    for (a_v, bv) in acc_r.iter_mut().zip(&b) {
                        *a_v = _mm256_fmadd_ps(av, *bv, *a_v);
                    }
                }
                for (bv, &p) in b.iter_mut().zip(&src) {
                    *bv = _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(p), hi));
                }
                for (acc_r, &pair) in acc.iter_mut().zip(&pairs) {
                    let av = _mm256_set1_ps(f32::from_bits(pair & HI));
                    for (a_v, bv) in acc_r.iter_mut().zip(&b) {
                        *a_v = _mm256_fmadd_ps(av, *bv, *a_v);
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate().take(nr) {
            // SAFETY: row i0 + r < rows ≤ 32 of c holds 32 floats.
            unsafe {
                let row = c.add((i0 + r) * BLOCK);
                for (v, a_v) in acc_r.iter().enumerate() {
                    _mm256_storeu_ps(row.add(8 * v), *a_v);
                }
            }
        }
        i0 += R;
    }
}

/// Portable `c[32 × 32] = A · B` on the same operands: f32 sums of the exact bf16 products,
/// k-pairs in order.
///
/// # Safety
/// Pointers valid as in [`crate::amx::block_32x32`]; `k_pad` even.
pub unsafe fn block_32x32_scalar(
    a: *const u16,
    lda: usize,
    b0: *const u16,
    b1: *const u16,
    k_pad: usize,
    c: *mut f32,
) {
    for i in 0..BLOCK {
        for j in 0..BLOCK {
            let panel = if j < PANEL { b0 } else { b1 };
            let col = (j % PANEL) * 2;
            let mut s = 0f32;
            for kp in 0..k_pad / 2 {
                // SAFETY: in bounds by the caller's contract (see the AMX kernel).
                unsafe {
                    let a0 = bf16_to_f32(*a.add(i * lda + 2 * kp));
                    let a1 = bf16_to_f32(*a.add(i * lda + 2 * kp + 1));
                    let w0 = bf16_to_f32(*panel.add(kp * 32 + col));
                    let w1 = bf16_to_f32(*panel.add(kp * 32 + col + 1));
                    s += a0 * w0 + a1 * w1;
                }
            }
            // SAFETY: c holds 32 × 32 floats.
            unsafe { *c.add(i * BLOCK + j) = s };
        }
    }
}

/// AVX-512F forms of [`pack_b_strided`]'s two common cases, with [`f32_to_bf16`]'s integer
/// rounding (the same bits).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::PANEL;

    /// [`super::f32_to_bf16`] of 16 floats, in the low halves of the lanes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn round16(x: __m512) -> __m512i {
        let b = _mm512_castps_si512(x);
        let odd = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
        let r = _mm512_srli_epi32::<16>(_mm512_add_epi32(
            b,
            _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd),
        ));
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        let q = _mm512_or_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(0x40));
        _mm512_mask_blend_epi32(nan, r, q)
    }

    /// Rows `j` of `k` contiguous floats at `src[j·stride_n ..]` (`k % 16 == 0`): each row's
    /// bf16 pairs are one column of its panel.
    ///
    /// # Safety
    /// AVX-512F; `src` holds every row; `d` is the zeroed `[n_pad · k_pad]` panel buffer.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_rows_avx512(
        src: &[f32],
        n: usize,
        k: usize,
        k_pad: usize,
        stride_n: usize,
        d: &mut [u16],
    ) {
        let mut pairs = [0u32; 8];
        for j in 0..n {
            let panel = (j / PANEL) * PANEL * k_pad;
            let col = j % PANEL;
            let row = &src[j * stride_n..j * stride_n + k];
            for c in (0..k).step_by(16) {
                // SAFETY: row holds k ≥ c + 16 floats; pairs holds 8 u32 = 16 u16.
                unsafe {
                    let v = round16(_mm512_loadu_ps(row.as_ptr().add(c)));
                    _mm256_storeu_si256(pairs.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(v));
                }
                for (t, &p) in pairs.iter().enumerate() {
                    // VNNI row r = c/2 + t of the panel, column `col`: two u16 at
                    // r·2·PANEL + 2·col.
                    let at = panel + (c / 2 + t) * 2 * PANEL + 2 * col;
                    d[at] = p as u16;
                    d[at + 1] = (p >> 16) as u16;
                }
            }
        }
    }

    /// Columns `j < n` (`n % 16 == 0`) of rows `kk < k` at `src[kk·stride_k + j]`: two rows
    /// interleave into one VNNI row of each panel.
    ///
    /// # Safety
    /// As [`pack_rows_avx512`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_cols_avx512(
        src: &[f32],
        n: usize,
        k: usize,
        k_pad: usize,
        stride_k: usize,
        d: &mut [u16],
    ) {
        for r in 0..k.div_ceil(2) {
            let r0 = &src[2 * r * stride_k..2 * r * stride_k + n];
            let r1 =
                (2 * r + 1 < k).then(|| &src[(2 * r + 1) * stride_k..(2 * r + 1) * stride_k + n]);
            for p in 0..n / PANEL {
                // SAFETY: both rows hold n ≥ 16p + 16 floats; the destination is VNNI row r
                // of panel p, 32 u16 inside `d`.
                unsafe {
                    let lo = round16(_mm512_loadu_ps(r0.as_ptr().add(p * PANEL)));
                    let hi = match r1 {
                        Some(r1) => round16(_mm512_loadu_ps(r1.as_ptr().add(p * PANEL))),
                        None => _mm512_setzero_si512(),
                    };
                    let v = _mm512_or_si512(
                        _mm512_and_si512(lo, _mm512_set1_epi32(0xFFFF)),
                        _mm512_slli_epi32::<16>(hi),
                    );
                    let at = p * PANEL * k_pad + r * 2 * PANEL;
                    _mm512_storeu_si512(d.as_mut_ptr().add(at).cast(), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3F80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(f32_to_bf16(1.0 + 1.0 / 256.0), 0x3F80);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up to even.
        assert_eq!(f32_to_bf16(1.0 + 3.0 / 256.0), 0x3F82);
        assert_eq!(f32_to_bf16(-2.0), 0xC000);
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
        assert_eq!(bf16_to_f32(f32_to_bf16(f32::INFINITY)), f32::INFINITY);
        // Agrees with the `half` crate on a sweep of values.
        for i in 0..10_000u32 {
            let x = f32::from_bits(i.wrapping_mul(2_654_435_761));
            if x.is_nan() {
                continue;
            }
            assert_eq!(f32_to_bf16(x), half::bf16::from_f32(x).to_bits(), "{x}");
        }
    }

    #[test]
    fn vector_conversion_matches_scalar() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            let src: Vec<f32> = (0..37).map(|i| (i as f32 - 18.3) * 0.7311).collect();
            let mut want = vec![0u16; 37];
            convert_row(&src, &mut want);
            let mut got = vec![1u16; 37];
            // SAFETY: feature checked above.
            unsafe { convert_row_avx512bf16(&src, &mut got) };
            assert_eq!(got, want);
        }
    }

    #[test]
    fn pack_b_places_vnni_pairs() {
        let (n, k) = (35, 5);
        let w: Vec<f32> = (0..n * k).map(|v| v as f32).collect();
        let (p, k_pad, n_pad) = pack_b(&w, n, k);
        assert_eq!((k_pad, n_pad), (32, 64));
        let d = p.as_slice();
        for j in 0..n_pad {
            for kk in 0..k_pad {
                let v =
                    bf16_to_f32(d[(j / 16) * 16 * k_pad + (kk / 2) * 32 + (j % 16) * 2 + kk % 2]);
                let want = if j < n && kk < k {
                    round_bf16(w[j * k + kk])
                } else {
                    0.0
                };
                assert_eq!(v, want, "({kk}, {j})");
            }
        }
    }

    /// The VNNI panels of `[n, k]` row-major `w`, element by element from the layout of the
    /// module docs.
    fn reference_panels(w: &[f32], n: usize, k: usize) -> Vec<u16> {
        let (k_pad, n_pad) = (k.div_ceil(32) * 32, n.div_ceil(32) * 32);
        let mut d = vec![0u16; n_pad * k_pad];
        for j in 0..n {
            for kk in 0..k {
                d[(j / 16) * 16 * k_pad + (kk / 2) * 32 + (j % 16) * 2 + kk % 2] =
                    f32_to_bf16(w[j * k + kk]);
            }
        }
        d
    }

    #[test]
    fn strided_packing_equals_pack_b_of_the_gathered_matrix() {
        // Rows (keys: stride_k = 1) and columns (values: stride_n = 1), with a NaN and a
        // tie, odd and padded depths: the vector forms give the reference layout's bytes,
        // and so does pack_b (contiguous rows).
        for &(n, k) in &[(17usize, 64usize), (32, 33), (64, 7), (48, 160), (3, 16)] {
            let ld = k + 5;
            let mut src: Vec<f32> = (0..n * ld)
                .map(|i| (i as f32 * 0.731).sin() * 3.0)
                .collect();
            src[1] = f32::NAN;
            src[2] = f32::from_bits(0x3F80_8000); // exactly halfway between two bf16
            let gathered: Vec<f32> = (0..n)
                .flat_map(|j| src[j * ld..j * ld + k].to_vec())
                .collect();
            let want_vec = reference_panels(&gathered, n, k);
            let want = &want_vec[..];
            let (packed, k_pad, _) = pack_b(&gathered, n, k);
            assert_eq!(packed.as_slice(), want, "pack_b n={n} k={k}");
            let (got, got_k_pad) = pack_b_strided(&src, n, k, ld, 1);
            assert_eq!(k_pad, got_k_pad);
            assert_eq!(got.as_slice(), want, "rows n={n} k={k}");
            // The transpose: B[kk][j] = t[kk·ldt + j].
            let ldt = n + 3;
            let mut t = vec![0f32; k * ldt];
            for j in 0..n {
                for kk in 0..k {
                    t[kk * ldt + j] = gathered[j * k + kk];
                }
            }
            let (got, _) = pack_b_strided(&t, n, k, 1, ldt);
            assert_eq!(got.as_slice(), want, "cols n={n} k={k}");
        }
    }
}
