//! Embedding lookup: the sum of word, token-type and position rows of one token, in
//! transformers' order `(word + token_type) + position`.

/// `out[·] = (word[·] + token_type[·]) + position[·]`; all four slices are one `hidden`-wide
/// row.
#[inline]
pub fn sum3(out: &mut [f32], word: &[f32], token_type: &[f32], position: &[f32]) {
    for (((o, w), t), p) in out.iter_mut().zip(word).zip(token_type).zip(position) {
        *o = (w + t) + p;
    }
}

/// Row `index` of a `[rows, width]` table, or `None` when out of range.
#[inline]
pub fn row(table: &[f32], width: usize, index: usize) -> Option<&[f32]> {
    table.get(index * width..(index + 1) * width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_and_adds() {
        let table = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(row(&table, 2, 1), Some(&[2.0f32, 3.0][..]));
        assert_eq!(row(&table, 2, 3), None);
        let mut out = [0f32; 2];
        sum3(&mut out, &[1.0, 2.0], &[0.5, 0.5], &[10.0, 20.0]);
        assert_eq!(out, [11.5, 22.5]);
    }
}
