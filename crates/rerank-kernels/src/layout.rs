//! Where a kernel finds its operands and writes its results: [`OutLayout`] for the output of
//! a linear layer (row-major or one block per attention head), [`HeadLayout`] for the Q, K
//! and V buffers attention and RoPE read.

use std::ops::Range;

/// Column alignment of the linear layers: a column range passed to
/// [`crate::Linear::forward_to`] starts at a multiple of this, and the blocks of a blocked
/// [`OutLayout`] are a multiple of it wide (the `NR` of the f32 micro-kernel and the 32-column
/// block of the bf16 kernels).
pub const COL_ALIGN: usize = 32;

const _: () = assert!(crate::microkernel::NR == COL_ALIGN && crate::bf16::BLOCK == COL_ALIGN);

/// Where element `(i, j)` of a product's output lives:
/// `c[(j / block_cols)·block_stride + i·ldc + j % block_cols]`.
///
/// Row-major output is one block (`[m, ldc]`); a *blocked* output stores each group of
/// `block_cols` columns as its own `[rows, block_cols]` matrix — e.g. Q/K/V per attention head,
/// `[3·heads, tokens, head_dim]`, so that a head's rows are contiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutLayout {
    /// Row stride within a block, in floats.
    pub ldc: usize,
    /// Columns per block (a multiple of [`COL_ALIGN`] unless the layout is row-major).
    pub block_cols: usize,
    /// Distance between blocks, in floats.
    pub block_stride: usize,
}

impl OutLayout {
    /// Plain row-major output with row stride `ldc`.
    pub fn row_major(ldc: usize) -> Self {
        OutLayout {
            ldc,
            block_cols: usize::MAX,
            block_stride: 0,
        }
    }

    /// Blocks of `block_cols` columns (a multiple of [`COL_ALIGN`]), each a dense
    /// `[rows, block_cols]` matrix.
    pub fn blocked(block_cols: usize, rows: usize) -> Self {
        OutLayout {
            ldc: block_cols,
            block_cols,
            block_stride: rows * block_cols,
        }
    }

    /// Whether this is the plain row-major layout.
    pub fn is_row_major(&self) -> bool {
        self.block_cols == usize::MAX
    }

    /// Offset of element `(i, j)`.
    #[inline]
    pub fn offset(&self, i: usize, j: usize) -> usize {
        (j / self.block_cols) * self.block_stride + i * self.ldc + j % self.block_cols
    }

    /// The argument checks of a packed-weight GEMM's `forward` (bf16 and int8): `out[i, j]`
    /// for `i < m`, `j ∈ cols` of an `n × k` weight, from `a` (`a_len` floats, row stride
    /// `lda`) and `bias` (`[n]` at least), into `out_len` floats laid out as `self`.
    /// Returns `false` when there is nothing to compute (`m = 0` or no columns).
    ///
    /// Panics unless `cols.start` is a multiple of [`COL_ALIGN`], `cols.end ≤ n`, and `a`,
    /// `bias` and the output are large enough.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_forward(
        &self,
        n: usize,
        k: usize,
        a_len: usize,
        lda: usize,
        m: usize,
        cols: &Range<usize>,
        bias: Option<&[f32]>,
        out_len: usize,
    ) -> bool {
        assert!(
            cols.start <= cols.end && cols.end <= n,
            "columns {cols:?} outside 0..{n}"
        );
        assert!(
            cols.start.is_multiple_of(COL_ALIGN) || cols.is_empty(),
            "column range must start on a multiple of {COL_ALIGN}"
        );
        if let Some(b) = bias {
            assert!(b.len() >= n, "bias shorter than {n}");
        }
        if m == 0 || cols.is_empty() {
            return false;
        }
        assert!(lda >= k && a_len >= (m - 1) * lda + k, "A too small");
        self.check(m, cols, out_len);
        true
    }

    /// Checks that `m` rows × columns `cols` fit in `len` floats without overlapping blocks,
    /// and that no [`COL_ALIGN`]-wide panel starting at a multiple of it straddles two blocks.
    /// Panics otherwise.
    pub(crate) fn check(&self, m: usize, cols: &Range<usize>, len: usize) {
        if m == 0 || cols.is_empty() {
            return;
        }
        let row_major = self.is_row_major();
        assert!(
            row_major
                || (self.block_cols.is_multiple_of(COL_ALIGN) && self.block_stride >= m * self.ldc),
            "blocked output needs blocks of a multiple of {COL_ALIGN} columns that do not overlap"
        );
        let width = if row_major { cols.end } else { self.block_cols };
        assert!(self.ldc >= width, "output row stride too small");
        assert!(
            self.offset(m - 1, cols.end - 1) < len,
            "output buffer too small"
        );
    }
}

/// Where a Q, K or V buffer keeps head `h` of row `r`: `head_dim` floats from
/// `h·head_stride + r·row_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLayout {
    /// Distance between consecutive rows (tokens), in floats.
    pub row_stride: usize,
    /// Distance between consecutive heads, in floats.
    pub head_stride: usize,
}

impl HeadLayout {
    /// Row-major `[rows, ld]` with the heads side by side (`head_stride = head_dim`).
    pub fn row_major(ld: usize, head_dim: usize) -> Self {
        HeadLayout {
            row_stride: ld,
            head_stride: head_dim,
        }
    }

    /// One dense `[rows, head_dim]` block per head (`head_stride = rows · head_dim`), as a
    /// linear layer writes it with [`OutLayout::blocked`]`(head_dim, rows)`.
    pub fn per_head(rows: usize, head_dim: usize) -> Self {
        HeadLayout {
            row_stride: head_dim,
            head_stride: rows * head_dim,
        }
    }

    /// Offset of element 0 of head `h`, row `r`.
    #[inline]
    pub fn at(&self, r: usize, h: usize) -> usize {
        h * self.head_stride + r * self.row_stride
    }

    /// Whether `rows` rows starting at `start` of `heads` heads of `head_dim` floats fit in
    /// `len` floats.
    pub(crate) fn fits(
        &self,
        len: usize,
        start: usize,
        rows: usize,
        heads: usize,
        head_dim: usize,
    ) -> bool {
        rows == 0 || heads == 0 || self.at(start + rows - 1, heads - 1) + head_dim <= len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_of_row_major_and_blocked_layouts() {
        let rm = OutLayout::row_major(100);
        assert_eq!(rm.offset(3, 70), 370);
        let b = OutLayout::blocked(32, 10);
        assert_eq!(b.offset(3, 70), 2 * 320 + 3 * 32 + 6);
        let h = HeadLayout::per_head(10, 16);
        assert_eq!(h.at(3, 2), 2 * 160 + 48);
        assert!(h.fits(3 * 160, 0, 10, 3, 16));
        assert!(!h.fits(3 * 160 - 1, 0, 10, 3, 16));
    }

    #[test]
    #[should_panic(expected = "output buffer too small")]
    fn check_refuses_a_short_buffer() {
        OutLayout::row_major(8).check(4, &(0..8), 31);
    }
}
