//! int8 operands of the int8 GEMM: symmetric quantization (weights per output channel,
//! activations per row), the packed layouts, and the 32×32 block kernels of the non-AMX
//! instruction sets (AVX512-VNNI, portable). The AMX kernel is in [`crate::amx_int8`].
//!
//! Quantization (symmetric, round to nearest, ties to even): a row `x` (one output channel
//! of the weight, or one token of the activations) gets the scale `s = max|x| / 127` and the
//! codes `q = clamp(round(x · (127 / max|x|)), −127, 127)`, so `x ≈ q · s` with
//! `|x − q·s| ≤ s/2` (up to one f32 rounding of the product). A row whose `max|x|` is below
//! [`ZERO_ROW`] quantizes to zero codes with scale 0; a row holding a NaN or an infinity gets
//! the scale NaN, so its products are NaN (as in f32). Weights are stored as `i8`.
//!
//! Activations are stored as `u8 = q + 128` (zero point 128) because `vpdpbusd` and AMX's
//! `tdpbusd` multiply *unsigned* by *signed* bytes. The offset is removed exactly after the
//! integer sum: `Σ_k (q_a + 128)·q_w = Σ_k q_a·q_w + 128·Σ_k q_w`, and the weight's
//! `128·Σ_k q_w[n, k]` is computed once at packing ([`PackedI8Operands::comp`]). Products
//! are summed in i32 without overflow as long as `k ≤` [`MAX_K`] (`k · 255 · 127 < 2³¹`).
//!
//! Layouts:
//! - **A** (activations, quantized per call by [`quantize_rows`]): row-major
//!   `[rows_pad, k_pad]` bytes, `k_pad = k` rounded up to [`K_STEP`] = 64 (one AMX tile row),
//!   `rows_pad` to [`BLOCK`] = 32; padding bytes are 128 (code 0);
//! - **B** (weights, packed once by [`pack_b`]): 16-column panels, each `k_pad / 4` rows of
//!   64 bytes in VNNI order — row `r` of panel `p` holds `B[4r..4r+4][16p + j]` for
//!   `j = 0..16` — exactly one AMX `B` tile row and one `vpdpbusd` operand. Panel `p` starts at
//!   `p · 16 · k_pad`; columns past `n` and depths past `k` are zero, up to 32 columns.

pub use crate::bf16::{BLOCK, PANEL};
use crate::buffer::AlignedBuf;

/// Bytes of one AMX tile row: the k-step of the packed operands.
pub const K_STEP: usize = 64;
/// Largest depth whose i32 sums cannot overflow: `k · 255 · 127 < 2³¹`.
pub const MAX_K: usize = 66_000;
/// Rows with `max|x|` below this quantize to zero (scale 0): keeps `127 / max|x|` finite.
pub const ZERO_ROW: f32 = 1e-30;
/// Zero point of the unsigned activation codes.
pub const ZERO_POINT: u8 = 128;

/// `k` rounded up to a multiple of [`K_STEP`].
pub fn k_padded(k: usize) -> usize {
    k.div_ceil(K_STEP) * K_STEP
}

/// The scale of a row and the multiplier its codes are computed with: `(max|x| / 127,
/// 127 / max|x|)`, `(0, 0)` for a row below [`ZERO_ROW`], `(NaN, 0)` for a row with a NaN or
/// an infinity.
pub fn row_scale(x: &[f32]) -> (f32, f32) {
    let mut amax = 0f32;
    let mut finite = 0f32;
    for &v in x {
        amax = amax.max(v.abs());
        finite += v * 0.0;
    }
    scale_of(amax, finite)
}

#[inline]
fn scale_of(amax: f32, finite: f32) -> (f32, f32) {
    if finite.is_nan() || amax.is_nan() {
        (f32::NAN, 0.0)
    } else if amax < ZERO_ROW {
        (0.0, 0.0)
    } else {
        (amax / 127.0, 127.0 / amax)
    }
}

/// The code of `x` for the multiplier `inv` (see the module docs), in `−127..=127`.
#[inline]
pub fn quantize(x: f32, inv: f32) -> i32 {
    // NaN (only in rows whose scale is NaN) becomes 0.
    (x * inv).round_ties_even().clamp(-127.0, 127.0) as i32
}

/// Quantizes one weight row (output channel): writes the codes, returns the scale.
pub fn quantize_weight_row(x: &[f32], codes: &mut [i8]) -> f32 {
    let (scale, inv) = row_scale(x);
    for (c, &v) in codes.iter_mut().zip(x) {
        *c = quantize(v, inv) as i8;
    }
    scale
}

/// The packed int8 weight: VNNI panels, per-channel scales and the zero-point compensation.
#[derive(Debug, Clone)]
pub struct PackedI8Operands {
    /// Panels (see the module docs), `n_pad · k_pad` bytes.
    pub data: AlignedBuf<i8>,
    /// `k` rounded up to [`K_STEP`].
    pub k_pad: usize,
    /// Scale of each output channel, `[n_pad]` (`n` rounded up to [`BLOCK`]; 0 past `n`).
    pub scale: Vec<f32>,
    /// `128 · Σ_k q[j, k]` of each output channel, `[n_pad]`.
    pub comp: Vec<i32>,
}

/// Quantizes and packs `weight` (`[n, k]` row-major, `B[kk][j] = weight[j·k + kk]`).
/// Panics if `weight.len() != n·k` or `k >` [`MAX_K`].
pub fn pack_b(weight: &[f32], n: usize, k: usize) -> PackedI8Operands {
    assert_eq!(weight.len(), n * k, "weight is not [{n}, {k}]");
    assert!(
        k <= MAX_K,
        "int8 GEMM depth {k} above {MAX_K} (i32 sums could overflow)"
    );
    let k_pad = k_padded(k);
    let n_pad = n.div_ceil(BLOCK) * BLOCK;
    let mut data = AlignedBuf::<i8>::zeros(n_pad * k_pad);
    let mut scale = vec![0f32; n_pad];
    let mut comp = vec![0i32; n_pad];
    let d = data.as_mut_slice();
    let mut codes = vec![0i8; k];
    for j in 0..n {
        scale[j] = quantize_weight_row(&weight[j * k..(j + 1) * k], &mut codes);
        comp[j] = 128 * codes.iter().map(|&c| c as i32).sum::<i32>();
        let panel = &mut d[(j / PANEL) * PANEL * k_pad..][..PANEL * k_pad];
        let col = (j % PANEL) * 4;
        for (kk, &c) in codes.iter().enumerate() {
            panel[(kk / 4) * 4 * PANEL + col + kk % 4] = c;
        }
    }
    PackedI8Operands {
        data,
        k_pad,
        scale,
        comp,
    }
}

/// Quantizes rows `0..rows` of `A` (`a[i·lda + kk]`, `kk < k`) per row into `dst` (u8 codes
/// with zero point 128, row stride `k_pad`) and their scales into `scales[..rows]`; fills
/// columns `k..k_pad` and rows `rows..rows_pad` with 128. The AVX-512 path (when `avx512`)
/// gives the same bytes and scales as the portable one.
///
/// # Safety
/// `a` valid for reads at `i·lda + kk` for `i < rows`, `kk < k`; `dst` valid for writes of
/// `rows_pad · k_pad` bytes; `scales.len() ≥ rows`; `k ≤ k_pad`, `rows ≤ rows_pad`; `avx512`
/// only if the CPU has AVX-512F.
#[allow(clippy::too_many_arguments)]
pub unsafe fn quantize_rows(
    avx512: bool,
    a: *const f32,
    lda: usize,
    rows: usize,
    k: usize,
    k_pad: usize,
    rows_pad: usize,
    dst: *mut u8,
    scales: &mut [f32],
) {
    for (i, s) in scales.iter_mut().enumerate().take(rows) {
        // SAFETY: row i of A has k readable floats; row i of dst has k_pad writable bytes.
        let (src, out) = unsafe {
            (
                std::slice::from_raw_parts(a.add(i * lda), k),
                std::slice::from_raw_parts_mut(dst.add(i * k_pad), k_pad),
            )
        };
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            // SAFETY: the caller only sets avx512 when the CPU has AVX-512F.
            *s = unsafe { quantize_row_avx512(src, &mut out[..k]) };
        } else {
            *s = quantize_row(src, &mut out[..k]);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = avx512;
            *s = quantize_row(src, &mut out[..k]);
        }
        out[k..].fill(ZERO_POINT);
    }
    if rows_pad > rows {
        // SAFETY: rows rows..rows_pad of dst are writable (caller's contract).
        unsafe {
            std::ptr::write_bytes(dst.add(rows * k_pad), ZERO_POINT, (rows_pad - rows) * k_pad);
        }
    }
}

/// One activation row to u8 codes (zero point 128); returns its scale.
pub fn quantize_row(src: &[f32], out: &mut [u8]) -> f32 {
    let (scale, inv) = row_scale(src);
    for (o, &x) in out.iter_mut().zip(src) {
        *o = (quantize(x, inv) + 128) as u8;
    }
    scale
}

/// [`quantize_row`] 16 floats at a time, with the same bytes and scale: the max and the sum
/// of the `x · 0` (NaN iff a NaN or an infinity is present) are exact in any order, and the
/// product, the ties-to-even rounding and the clamp are the same operations.
///
/// # Safety
/// The CPU supports AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn quantize_row_avx512(src: &[f32], out: &mut [u8]) -> f32 {
    use std::arch::x86_64::*;
    let n = src.len().min(out.len());
    let full = n / 16 * 16;
    let mut vmax = _mm512_setzero_ps();
    let mut vfin = _mm512_setzero_ps();
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 ≤ n; unaligned load.
        let v = unsafe { _mm512_loadu_ps(src.as_ptr().add(i)) };
        vmax = _mm512_max_ps(vmax, _mm512_abs_ps(v));
        vfin = _mm512_add_ps(vfin, _mm512_mul_ps(v, _mm512_setzero_ps()));
    }
    let mut amax = _mm512_reduce_max_ps(vmax);
    let mut finite = _mm512_reduce_add_ps(vfin);
    for &v in &src[full..n] {
        amax = amax.max(v.abs());
        finite += v * 0.0;
    }
    // `_mm512_max_ps` may drop a NaN, but then `finite` is NaN.
    let (scale, inv) = scale_of(amax, finite);
    let vinv = _mm512_set1_ps(inv);
    let (lo, hi, zp) = (
        _mm512_set1_epi32(-127),
        _mm512_set1_epi32(127),
        _mm512_set1_epi32(128),
    );
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 ≤ n for both slices; unaligned load and 16-byte store.
        unsafe {
            let v = _mm512_mul_ps(_mm512_loadu_ps(src.as_ptr().add(i)), vinv);
            let q =
                _mm512_cvt_roundps_epi32::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            let q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), zp);
            _mm_storeu_si128(
                out.as_mut_ptr().add(i) as *mut __m128i,
                _mm512_cvtepi32_epi8(q),
            );
        }
    }
    for (o, &x) in out[full..n].iter_mut().zip(&src[full..n]) {
        *o = (quantize(x, inv) + 128) as u8;
    }
    scale
}

/// `c[rows × 32] = A[rows × k_pad] · B[k_pad × 32]` in i32 (u8 codes of `a`, row stride
/// `lda` bytes, times the i8 panels `b0`, `b1` of `k_pad / 4` VNNI rows of 64 bytes) with
/// `vpdpbusd`, in 8-row strips of 16 accumulators; `c` has row stride 32. Only strips
/// covering rows `0..rows` are computed; rows past `rows` (up to the next multiple of 8) are
/// written with the sums of the padding rows.
///
/// # Safety
/// The CPU supports AVX-512F and AVX512-VNNI; `k_pad % 4 == 0`; `rows ≤ 32`; `a` valid for
/// 32 rows of `k_pad` bytes at stride `lda`, the panels for `k_pad · 16` bytes each, `c` for
/// 32 × 32 i32.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
pub unsafe fn block_32x32_vnni(
    a: *const u8,
    lda: usize,
    b0: *const i8,
    b1: *const i8,
    k_pad: usize,
    c: *mut i32,
    rows: usize,
) {
    use std::arch::x86_64::*;
    const R: usize = 8;
    for strip in 0..rows.div_ceil(R) {
        let a = a.wrapping_add(strip * R * lda);
        let mut acc = [[_mm512_setzero_si512(); 2]; R];
        for kq in 0..k_pad / 4 {
            // SAFETY: VNNI row kq of each panel is 64 bytes inside the panel; A's quad
            // (4kq .. 4kq + 4) of row strip·8 + i < 32 is inside A (caller's contract).
            unsafe {
                let v0 = _mm512_loadu_si512(b0.add(kq * 64) as *const _);
                let v1 = _mm512_loadu_si512(b1.add(kq * 64) as *const _);
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let quad = (a.add(i * lda + 4 * kq) as *const i32).read_unaligned();
                    let av = _mm512_set1_epi32(quad);
                    acc_i[0] = _mm512_dpbusd_epi32(acc_i[0], av, v0);
                    acc_i[1] = _mm512_dpbusd_epi32(acc_i[1], av, v1);
                }
            }
        }
        for (i, acc_i) in acc.iter().enumerate() {
            // SAFETY: row strip·8 + i < 32 of c holds 32 i32.
            unsafe {
                let row = c.add((strip * R + i) * BLOCK);
                _mm512_storeu_si512(row as *mut _, acc_i[0]);
                _mm512_storeu_si512(row.add(PANEL) as *mut _, acc_i[1]);
            }
        }
    }
}

/// Portable `c[rows × 32] = A · B` on the same operands as [`block_32x32_vnni`] (i32 sums,
/// exact). Rows past `rows` are not written.
///
/// # Safety
/// As [`block_32x32_vnni`] without the CPU requirement.
pub unsafe fn block_32x32_scalar(
    a: *const u8,
    lda: usize,
    b0: *const i8,
    b1: *const i8,
    k_pad: usize,
    c: *mut i32,
    rows: usize,
) {
    for i in 0..rows {
        // SAFETY: row i < rows ≤ 32 of A holds k_pad bytes (caller's contract).
        let ar = unsafe { std::slice::from_raw_parts(a.add(i * lda), k_pad) };
        let mut sums = [0i32; BLOCK];
        for (half, panel) in [b0, b1].into_iter().enumerate() {
            // SAFETY: a panel holds k_pad · 16 bytes (caller's contract).
            let p = unsafe { std::slice::from_raw_parts(panel, k_pad * PANEL) };
            for (kq, quad) in ar.chunks_exact(4).enumerate() {
                let row = &p[kq * 64..kq * 64 + 64];
                for (j, s) in sums[half * PANEL..(half + 1) * PANEL]
                    .iter_mut()
                    .enumerate()
                {
                    for (t, &av) in quad.iter().enumerate() {
                        *s += av as i32 * row[4 * j + t] as i32;
                    }
                }
            }
        }
        // SAFETY: c holds 32 × 32 i32.
        unsafe { std::ptr::copy_nonoverlapping(sums.as_ptr(), c.add(i * BLOCK), BLOCK) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn round_trip_error_is_at_most_half_a_step() {
        for (len, mag) in [
            (1usize, 1f32),
            (7, 3.5),
            (64, 1e-3),
            (385, 40.0),
            (1000, 1e6),
        ] {
            let x: Vec<f32> = rand_vec(len, len as u64).iter().map(|v| v * mag).collect();
            let mut codes = vec![0i8; len];
            let s = quantize_weight_row(&x, &mut codes);
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(s, amax / 127.0);
            // The largest element maps to ±127 exactly.
            assert!(codes.iter().any(|&c| c.unsigned_abs() == 127));
            for (&v, &c) in x.iter().zip(&codes) {
                assert!((-127..=127).contains(&c));
                let err = (v as f64 - c as f64 * s as f64).abs();
                assert!(
                    err <= s as f64 * (0.5 + 1e-6),
                    "{v} -> {c} · {s}: error {err}"
                );
            }
            let mut bytes = vec![0u8; len];
            assert_eq!(quantize_row(&x, &mut bytes), s);
            for (&b, &c) in bytes.iter().zip(&codes) {
                assert_eq!(b as i32 - 128, c as i32);
            }
        }
    }

    #[test]
    fn zero_tiny_and_non_finite_rows() {
        let mut codes = vec![5i8; 3];
        assert_eq!(quantize_weight_row(&[0.0, -0.0, 1e-31], &mut codes), 0.0);
        assert_eq!(codes, [0, 0, 0]);
        assert!(quantize_weight_row(&[1.0, f32::NAN, 2.0], &mut codes).is_nan());
        assert!(quantize_weight_row(&[1.0, f32::INFINITY], &mut codes).is_nan());
        // Ties go to even: 0.5 → 0, 1.5 → 2, −2.5 → −2 (row max 127 makes inv = 1).
        let mut c4 = vec![0i8; 4];
        assert_eq!(quantize_weight_row(&[127.0, 0.5, 1.5, -2.5], &mut c4), 1.0);
        assert_eq!(c4, [127, 0, 2, -2]);
    }

    #[test]
    fn vector_quantization_matches_scalar() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            for len in [1usize, 15, 16, 17, 100, 384, 1000] {
                let src: Vec<f32> = rand_vec(len, 3 + len as u64)
                    .iter()
                    .map(|v| v * 7.0)
                    .collect();
                let mut want = vec![0u8; len];
                let ws = quantize_row(&src, &mut want);
                let mut got = vec![1u8; len];
                // SAFETY: feature checked above.
                let gs = unsafe { quantize_row_avx512(&src, &mut got) };
                assert_eq!(got, want, "len {len}");
                assert_eq!(gs.to_bits(), ws.to_bits(), "len {len}");
            }
            let mut src = vec![1f32; 40];
            src[21] = f32::NAN;
            let mut got = vec![0u8; 40];
            // SAFETY: feature checked above.
            assert!(unsafe { quantize_row_avx512(&src, &mut got) }.is_nan());
        }
    }

    #[test]
    fn pack_b_places_vnni_quads_and_compensation() {
        let (n, k) = (35, 70);
        let w = rand_vec(n * k, 9);
        let p = pack_b(&w, n, k);
        assert_eq!((p.k_pad, p.scale.len(), p.comp.len()), (128, 64, 64));
        assert_eq!(p.data.len(), 64 * 128);
        let d = p.data.as_slice();
        for j in 0..64 {
            let mut codes = vec![0i8; k];
            let s = if j < n {
                quantize_weight_row(&w[j * k..(j + 1) * k], &mut codes)
            } else {
                0.0
            };
            assert_eq!(p.scale[j], s);
            assert_eq!(
                p.comp[j],
                128 * codes.iter().map(|&c| c as i32).sum::<i32>()
            );
            for kk in 0..p.k_pad {
                let v = d[(j / 16) * 16 * p.k_pad + (kk / 4) * 64 + (j % 16) * 4 + kk % 4];
                let want = if kk < k { codes[kk] } else { 0 };
                assert_eq!(v, want, "({kk}, {j})");
            }
        }
    }

    #[test]
    #[should_panic(expected = "above")]
    fn too_deep_is_refused() {
        pack_b(&vec![0f32; MAX_K + 1], 1, MAX_K + 1);
    }
}
