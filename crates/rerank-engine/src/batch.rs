//! Length-sorted batching: pairs are sorted by token count, cut into batches, each padded only
//! to its own longest sequence; the caller's order is restored afterwards.

use crate::config::Family;
use crate::model::{bert, xlm_roberta, ModelInput};
use crate::tokenize::Encoded;

/// Padded tokens one forward pass may hold (batch × longest sequence).
pub const MAX_BATCH_TOKENS: usize = 16_384;

/// Groups input indices into batches, longest first, so that sequences of similar length
/// share a batch. A batch holds at most `batch_size` sequences and [`MAX_BATCH_TOKENS`] padded
/// tokens, and a new batch starts when a sequence is more than 25 % shorter than the batch's
/// first (longest) one, so that little compute is spent on padding.
pub fn plan(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        if let Some(&first) = current.first() {
            let longest = lengths[first].max(1);
            let full = current.len() >= batch_size.max(1)
                || (current.len() + 1) * longest > MAX_BATCH_TOKENS
                || lengths[i] * 4 < longest * 3;
            if full {
                batches.push(std::mem::take(&mut current));
            }
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Builds the right-padded model input for `items`.
///
/// Padding uses `pad_id`; position ids follow the family (BERT `0..len`, XLM-R from
/// `pad_id + 1` over non-pad tokens). `single_type_vocab` forces all token type ids to 0
/// (XLM-R has one token type).
pub fn build_input(
    items: &[&Encoded],
    family: Family,
    pad_id: u32,
    single_type_vocab: bool,
) -> ModelInput {
    let batch = items.len();
    let seq_len = items.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);
    let n = batch * seq_len;
    let mut input = ModelInput {
        input_ids: vec![pad_id; n],
        token_type_ids: vec![0; n],
        position_ids: vec![0; n],
        attention_mask: vec![0; n],
        batch,
        seq_len,
    };
    for (row, e) in items.iter().enumerate() {
        let base = row * seq_len;
        let len = e.input_ids.len();
        input.input_ids[base..base + len].copy_from_slice(&e.input_ids);
        if !single_type_vocab {
            input.token_type_ids[base..base + len].copy_from_slice(&e.token_type_ids);
        }
        input.attention_mask[base..base + len].fill(1);
        let positions = &mut input.position_ids[base..base + seq_len];
        match family {
            Family::Bert => positions
                .iter_mut()
                .zip(bert::position_ids(seq_len))
                .for_each(|(p, v)| *p = v),
            Family::XlmRoberta => positions
                .iter_mut()
                .zip(xlm_roberta::position_ids(
                    &input.input_ids[base..base + seq_len],
                    pad_id,
                ))
                .for_each(|(p, v)| *p = v),
        }
    }
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ids: &[u32]) -> Encoded {
        Encoded {
            input_ids: ids.to_vec(),
            token_type_ids: vec![0; ids.len()],
            truncated: false,
        }
    }

    #[test]
    fn plan_sorts_by_length_and_covers_every_index_once() {
        let batches = plan(&[8, 9, 1, 9, 7], 2);
        assert_eq!(batches, vec![vec![1, 3], vec![0, 4], vec![2]]);
    }

    #[test]
    fn plan_does_not_pad_short_sequences_to_long_ones() {
        // 512 and 11 tokens never share a batch, whatever the batch size.
        let batches = plan(&[512, 11, 500, 12], 32);
        assert_eq!(batches, vec![vec![0, 2], vec![3, 1]]);
        let tokens_cap = plan(&vec![512; 40], 64);
        assert!(tokens_cap.iter().all(|b| b.len() * 512 <= MAX_BATCH_TOKENS));
    }

    #[test]
    fn xlmr_padding_gets_padding_idx_positions_and_zero_mask() {
        let a = enc(&[0, 5, 2]);
        let b = enc(&[0, 2]);
        let input = build_input(&[&a, &b], Family::XlmRoberta, 1, true);
        assert_eq!(input.seq_len, 3);
        assert_eq!(input.input_ids, vec![0, 5, 2, 0, 2, 1]);
        assert_eq!(input.position_ids, vec![2, 3, 4, 2, 3, 1]);
        assert_eq!(input.attention_mask, vec![1, 1, 1, 1, 1, 0]);
    }
}
