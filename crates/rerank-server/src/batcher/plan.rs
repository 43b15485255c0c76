//! Cutting merged inputs into model batches by a padded-token budget.

/// Splits inputs of the given token `lengths` into model batches: inputs are sorted by length
/// (ties keep their order) and each batch grows while `count × longest ≤ max_batch_tokens`
/// (the padded size of the batch). An input longer than the budget forms a batch alone.
/// Returns indices into `lengths`; every index appears in exactly one batch.
pub fn by_token_budget(lengths: &[usize], max_batch_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so the newcomer is the longest of the batch.
        let padded = (current.len() + 1) * lengths[i];
        if !current.is_empty() && padded > max_batch_tokens {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Padded tokens of a batch: `count × longest`.
pub fn padded_tokens(lengths: &[usize], batch: &[usize]) -> usize {
    batch.len() * batch.iter().map(|&i| lengths[i]).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_budget_and_cover_every_input_once() {
        let lengths = [10, 300, 12, 11, 50, 9, 700];
        let batches = by_token_budget(&lengths, 100);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() == 1 || padded_tokens(&lengths, b) <= 100, "{b:?}");
        }
        // The four short inputs (9..12 tokens) share one batch: grouped by length.
        assert!(batches.iter().any(|b| {
            let mut b = b.clone();
            b.sort();
            b == vec![0, 2, 3, 5]
        }));
    }

    #[test]
    fn empty_input_gives_no_batch() {
        assert!(by_token_budget(&[], 10).is_empty());
    }
}
