//! Length-sorted batching for the library's list calls ([`crate::CrossEncoder::predict`],
//! [`crate::CrossEncoder::rank`], [`crate::Embedder::embed`] and the `*_encoded` forms):
//! inputs are sorted by token count, cut into batches, each run as one forward pass, and the
//! caller's order is restored afterwards.
//!
//! Callers that plan their own batches (the server's token-budget batcher) use
//! [`crate::CrossEncoder::predict_batch`] / [`crate::Embedder::embed_batch`] instead, which
//! run exactly the batch given.

/// Default cap of [`plan`]: padded tokens (batch × longest sequence) per forward pass. The
/// engine never pads, so this only bounds the activations of one pass (≈ 16,384 × hidden ×
/// a few floats per layer buffer).
pub const DEFAULT_MAX_BATCH_TOKENS: usize = 16_384;

/// Groups input indices into batches, longest first, so that sequences of similar length
/// share a batch. A batch holds at most `batch_size` sequences and `max_batch_tokens`
/// padded tokens (batch size × its longest sequence; a single sequence longer than that
/// still gets a batch of its own), and a new batch starts when a sequence is more than 25 %
/// shorter than the batch's first (longest) one. `batch_size` and `max_batch_tokens` of 0
/// count as 1.
pub fn plan(lengths: &[usize], batch_size: usize, max_batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]).then(a.cmp(&b)));
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        if let Some(&first) = current.first() {
            let longest = lengths[first].max(1);
            let full = current.len() >= batch_size.max(1)
                || (current.len() + 1).saturating_mul(longest) > max_batch_tokens.max(1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_sorts_by_length_and_covers_every_index_once() {
        let batches = plan(&[8, 9, 1, 9, 7], 2, DEFAULT_MAX_BATCH_TOKENS);
        assert_eq!(batches, vec![vec![1, 3], vec![0, 4], vec![2]]);
    }

    #[test]
    fn plan_does_not_pad_short_sequences_to_long_ones() {
        // 512 and 11 tokens never share a batch, whatever the batch size.
        let batches = plan(&[512, 11, 500, 12], 32, DEFAULT_MAX_BATCH_TOKENS);
        assert_eq!(batches, vec![vec![0, 2], vec![3, 1]]);
        let tokens_cap = plan(&vec![512; 40], 64, DEFAULT_MAX_BATCH_TOKENS);
        assert!(tokens_cap
            .iter()
            .all(|b| b.len() * 512 <= DEFAULT_MAX_BATCH_TOKENS));
    }

    #[test]
    fn the_token_cap_is_a_parameter() {
        let lengths = vec![100; 10];
        assert_eq!(plan(&lengths, 64, 1_000).len(), 1);
        assert_eq!(plan(&lengths, 64, 999).len(), 2);
        assert!(plan(&lengths, 64, 0).iter().all(|b| b.len() == 1));
    }
}
