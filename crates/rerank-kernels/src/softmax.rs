//! Softmax with the attention scale folded into the same pass: `p = softmax(x · scale)`,
//! computed as PyTorch does — max-subtracted `exp`, then a multiply by the reciprocal of the
//! sum — over rows ([`softmax_rows_scaled`]) or over columns ([`softmax_cols_scaled`], for
//! transposed attention scores: vectorised across columns, no horizontal reductions).

use super::isa::Isa;
use super::vmath;

/// In place on `rows` rows of `cols` values (row stride `ld`):
/// `x[i, ·] ← softmax(x[i, ·] · scale)`. Rows with `cols == 0` are left as they are.
pub fn softmax_rows_scaled(x: &mut [f32], rows: usize, cols: usize, ld: usize, scale: f32) {
    softmax_rows_scaled_isa(Isa::active(), x, rows, cols, ld, scale);
}

pub(crate) fn softmax_rows_scaled_isa(
    isa: Isa,
    x: &mut [f32],
    rows: usize,
    cols: usize,
    ld: usize,
    scale: f32,
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        ld >= cols && x.len() >= (rows - 1) * ld + cols,
        "softmax: buffer too small"
    );
    for i in 0..rows {
        let row = &mut x[i * ld..i * ld + cols];
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
            Isa::Avx512 => unsafe { x86::row_avx512(row, scale) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 and FMA are present when `Isa::Avx2Fma` is chosen.
            Isa::Avx2Fma => unsafe { x86::row_fma(row, scale) },
            _ => row_scalar(row, scale),
        }
    }
}

#[inline(always)]
fn row_scalar(row: &mut [f32], scale: f32) {
    let mut max = f32::NEG_INFINITY;
    for v in row.iter_mut() {
        *v *= scale;
        max = max.max(*v);
    }
    let mut lanes = [0f32; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for chunk in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(chunk.iter_mut()) {
            *v = vmath::exp(*v - max);
            *l += *v;
        }
    }
    for (l, v) in lanes.iter_mut().zip(chunks.into_remainder()) {
        *v = vmath::exp(*v - max);
        *l += *v;
    }
    let sum = lanes.iter().sum::<f32>();
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::vmath;

    /// [`super::cols_scalar`] compiled with FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn cols_fma(
        x: &mut [f32],
        rows: usize,
        cols: usize,
        ld: usize,
        scale: f32,
        stats: &mut [f32],
    ) {
        super::cols_scalar(x, rows, cols, ld, scale, stats);
    }

    /// Column softmax, 16 columns per vector (masked last chunk); max and sum per column in
    /// `stats`.
    #[target_feature(enable = "avx512f")]
    pub(super) fn cols_avx512(
        x: &mut [f32],
        rows: usize,
        cols: usize,
        ld: usize,
        scale: f32,
        stats: &mut [f32],
    ) {
        assert!(
            rows == 0 || cols == 0 || (ld >= cols && x.len() >= (rows - 1) * ld + cols),
            "softmax: buffer too small"
        );
        let (max, sum) = stats[..2 * cols].split_at_mut(cols);
        max.fill(f32::NEG_INFINITY);
        sum.fill(0.0);
        let p = x.as_mut_ptr();
        let (mp, sp) = (max.as_mut_ptr(), sum.as_mut_ptr());
        let vscale = _mm512_set1_ps(scale);
        for r in 0..rows {
            let mut j = 0;
            while j < cols {
                let m = lanes(cols - j);
                // SAFETY: row r < rows and the column chunk j..j + 16 masked to `cols` lie in
                // x (asserted above); max holds `cols` floats.
                unsafe {
                    let at = p.add(r * ld + j);
                    let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, at), vscale);
                    _mm512_mask_storeu_ps(at, m, v);
                    let mx = _mm512_maskz_loadu_ps(m, mp.add(j));
                    _mm512_mask_storeu_ps(mp.add(j), m, _mm512_max_ps(mx, v));
                }
                j += 16;
            }
        }
        for r in 0..rows {
            let mut j = 0;
            while j < cols {
                let m = lanes(cols - j);
                // SAFETY: as above; sum holds `cols` floats.
                unsafe {
                    let at = p.add(r * ld + j);
                    let v = _mm512_maskz_loadu_ps(m, at);
                    let e =
                        vmath::avx512::exp(_mm512_sub_ps(v, _mm512_maskz_loadu_ps(m, mp.add(j))));
                    _mm512_mask_storeu_ps(at, m, e);
                    let s = _mm512_maskz_loadu_ps(m, sp.add(j));
                    _mm512_mask_storeu_ps(sp.add(j), m, _mm512_add_ps(s, e));
                }
                j += 16;
            }
        }
        let mut j = 0;
        while j < cols {
            let m = lanes(cols - j);
            // SAFETY: the masked chunk j..j + 16 lies in sum (`cols` floats).
            unsafe {
                let s = _mm512_maskz_loadu_ps(m, sp.add(j));
                _mm512_mask_storeu_ps(sp.add(j), m, _mm512_div_ps(_mm512_set1_ps(1.0), s));
            }
            j += 16;
        }
        for r in 0..rows {
            let mut j = 0;
            while j < cols {
                let m = lanes(cols - j);
                // SAFETY: as in the first pass; sum holds `cols` floats.
                unsafe {
                    let at = p.add(r * ld + j);
                    let v = _mm512_maskz_loadu_ps(m, at);
                    _mm512_mask_storeu_ps(
                        at,
                        m,
                        _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, sp.add(j))),
                    );
                }
                j += 16;
            }
        }
    }

    /// [`super::row_scalar`] compiled with FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn row_fma(row: &mut [f32], scale: f32) {
        super::row_scalar(row, scale);
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

    /// 16 lanes at a time, masked tail.
    #[target_feature(enable = "avx512f")]
    pub(super) fn row_avx512(row: &mut [f32], scale: f32) {
        let n = row.len();
        let p = row.as_mut_ptr();
        let vscale = _mm512_set1_ps(scale);
        let mut vmax = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut j = 0;
        while j < n {
            let m = lanes(n - j);
            // SAFETY: the mask limits the access to row[j..n].
            unsafe {
                let v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p.add(j)), vscale);
                _mm512_mask_storeu_ps(p.add(j), m, v);
                vmax = _mm512_mask_max_ps(vmax, m, vmax, v);
            }
            j += 16;
        }
        let max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
        let mut vsum = _mm512_setzero_ps();
        j = 0;
        while j < n {
            let m = lanes(n - j);
            // SAFETY: as above.
            unsafe {
                let v = _mm512_maskz_loadu_ps(m, p.add(j));
                let e = vmath::avx512::exp(_mm512_sub_ps(v, max));
                _mm512_mask_storeu_ps(p.add(j), m, e);
                vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
            }
            j += 16;
        }
        let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(vsum));
        j = 0;
        while j < n {
            let m = lanes(n - j);
            // SAFETY: as above.
            unsafe {
                let v = _mm512_maskz_loadu_ps(m, p.add(j));
                _mm512_mask_storeu_ps(p.add(j), m, _mm512_mul_ps(v, inv));
            }
            j += 16;
        }
    }
}

/// In place on the columns `0..cols` of a `[rows, ld]` matrix: every column
/// `x[·, j] ← softmax(x[·, j] · scale)`. `stats` is scratch of at least `2·cols` floats.
/// Columns `cols..ld` are not touched.
pub fn softmax_cols_scaled(
    x: &mut [f32],
    rows: usize,
    cols: usize,
    ld: usize,
    scale: f32,
    stats: &mut [f32],
) {
    softmax_cols_scaled_isa(Isa::active(), x, rows, cols, ld, scale, stats);
}

pub(crate) fn softmax_cols_scaled_isa(
    isa: Isa,
    x: &mut [f32],
    rows: usize,
    cols: usize,
    ld: usize,
    scale: f32,
    stats: &mut [f32],
) {
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        ld >= cols && x.len() >= (rows - 1) * ld + cols,
        "softmax: buffer too small"
    );
    assert!(stats.len() >= 2 * cols, "softmax: stats too small");
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F is present when `Isa::Avx512` is chosen.
        Isa::Avx512 => unsafe { x86::cols_avx512(x, rows, cols, ld, scale, stats) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2 and FMA are present when `Isa::Avx2Fma` is chosen.
        Isa::Avx2Fma => unsafe { x86::cols_fma(x, rows, cols, ld, scale, stats) },
        _ => cols_scalar(x, rows, cols, ld, scale, stats),
    }
}

#[inline(always)]
fn cols_scalar(x: &mut [f32], rows: usize, cols: usize, ld: usize, scale: f32, stats: &mut [f32]) {
    let (max, sum) = stats[..2 * cols].split_at_mut(cols);
    max.fill(f32::NEG_INFINITY);
    sum.fill(0.0);
    for r in 0..rows {
        for (v, m) in x[r * ld..r * ld + cols].iter_mut().zip(max.iter_mut()) {
            *v *= scale;
            *m = m.max(*v);
        }
    }
    for r in 0..rows {
        for ((v, m), s) in x[r * ld..r * ld + cols]
            .iter_mut()
            .zip(&*max)
            .zip(sum.iter_mut())
        {
            *v = vmath::exp(*v - m);
            *s += *v;
        }
    }
    sum.iter_mut().for_each(|s| *s = 1.0 / *s);
    for r in 0..rows {
        for (v, inv) in x[r * ld..r * ld + cols].iter_mut().zip(&*sum) {
            *v *= inv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_softmax_equals_row_softmax_of_the_transpose() {
        for isa in Isa::available() {
            for (rows, cols) in [(1usize, 1usize), (7, 3), (150, 17), (33, 40)] {
                let ld = cols + 3;
                let x: Vec<f32> = (0..rows * ld)
                    .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0)
                    .collect();
                let mut got = x.clone();
                let mut stats = vec![0f32; 2 * cols];
                softmax_cols_scaled_isa(isa, &mut got, rows, cols, ld, 0.3, &mut stats);
                for j in 0..cols {
                    let col: Vec<f64> = (0..rows).map(|r| (x[r * ld + j] * 0.3) as f64).collect();
                    let max = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = col.iter().map(|v| (v - max).exp()).sum();
                    for r in 0..rows {
                        let want = (col[r] - max).exp() / sum;
                        let g = got[r * ld + j] as f64;
                        assert!(
                            (g - want).abs() <= 2e-6 * want + 1e-12,
                            "{isa:?} ({r},{j}): {g} vs {want}"
                        );
                    }
                }
                for r in 0..rows {
                    assert_eq!(
                        &got[r * ld + cols..r * ld + ld],
                        &x[r * ld + cols..r * ld + ld]
                    );
                }
            }
        }
    }

    #[test]
    fn matches_f64_softmax_on_every_isa() {
        for isa in Isa::available() {
            for cols in [1usize, 2, 15, 16, 17, 150, 513] {
                let rows = 3;
                let ld = cols + 5;
                let mut x: Vec<f32> = (0..rows * ld)
                    .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0)
                    .collect();
                let orig = x.clone();
                let scale = 0.176_776_7;
                softmax_rows_scaled_isa(isa, &mut x, rows, cols, ld, scale);
                for i in 0..rows {
                    let r: Vec<f64> = orig[i * ld..i * ld + cols]
                        .iter()
                        .map(|&v| (v * scale) as f64)
                        .collect();
                    let max = r.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = r.iter().map(|v| (v - max).exp()).sum();
                    for j in 0..cols {
                        let want = (r[j] - max).exp() / sum;
                        let got = x[i * ld + j] as f64;
                        assert!(
                            (got - want).abs() <= 1e-6 * want + 1e-12,
                            "{isa:?} cols {cols} ({i},{j}): {got} vs {want}"
                        );
                    }
                    // Padding between rows untouched.
                    assert_eq!(
                        &x[i * ld + cols..(i * ld + ld).min(x.len())],
                        &orig[i * ld + cols..(i * ld + ld).min(x.len())]
                    );
                }
            }
        }
    }
}
