//! Issue 15 item 3: the score cache's memory stays under its bound. A counting global
//! allocator (each allocation rounded up as glibc's malloc does: size + 8 in 16-byte steps, at
//! least 32) measures the heap the cache really holds while 100,000 distinct pairs go into a
//! 1 MiB cache, and checks it against the cache's own count and the bound. One test in this
//! binary, so that no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use rerank_engine::score::Prediction;
use rerank_engine::tokenize::Encoded;
use rerank_server::score_cache::{ModelId, ScoreCache, ENTRY_BYTES};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

fn chunk(size: usize) -> isize {
    ((size + 8).div_ceil(16) * 16).max(32) as isize
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(layout.size()), Ordering::SeqCst);
        // SAFETY: the caller's contract for `alloc`, passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(chunk(layout.size()), Ordering::SeqCst);
        // SAFETY: `ptr` came from `System` through this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(chunk(new_size) - chunk(layout.size()), Ordering::SeqCst);
        // SAFETY: as `dealloc`; the caller's contract for `realloc`, passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::SeqCst)
}

/// A distinct tokenized pair per `i` (BERT-like ids: `[CLS] q [SEP] d… [SEP]`).
fn pair(i: u32) -> Encoded {
    Encoded {
        input_ids: vec![101, 2054, 102, i % 30_000, i / 30_000, 102],
        token_type_ids: vec![0, 0, 0, 1, 1, 1],
        truncated: false,
    }
}

#[test]
fn one_hundred_thousand_distinct_pairs_stay_under_a_1_mib_bound() {
    const BOUND: usize = 1 << 20;
    let before = live();
    let cache = ScoreCache::new(ModelId([7; 32]), BOUND, None).unwrap();
    let max = cache.max_entries();
    // What 1 MiB holds at the counted bytes per pair (≈ 7,380).
    assert!(max > 7_000 && max <= BOUND / ENTRY_BYTES, "{max}");
    let mut peak = 0isize;
    let mut evicted = 0;
    // Insert in requests of 100 pairs, as the server does (keys from the real key function).
    for start in (0..100_000u32).step_by(100) {
        let keys: Vec<_> = (start..start + 100).map(|i| cache.key(&pair(i))).collect();
        let predictions: Vec<Prediction> = (start..start + 100)
            .map(|i| Prediction::from_logits(vec![i as f32 * 1e-3]))
            .collect();
        evicted += cache.insert_many(keys.iter().copied().zip(&predictions));
        drop((keys, predictions));
        let held = live() - before;
        peak = peak.max(held);
        // The heap the cache really holds never exceeds what it counts, nor the bound.
        assert!(
            held as usize <= cache.bytes(),
            "after {} pairs: {held} bytes held, {} counted",
            start + 100,
            cache.bytes()
        );
        assert!(cache.bytes() <= BOUND, "{} counted", cache.bytes());
    }
    assert_eq!(cache.len(), max);
    assert_eq!(evicted, 100_000 - max);
    assert!(peak as usize <= BOUND, "peak {peak}");
    // The newest pairs are held, the oldest were evicted.
    let got = cache.get_many(&[cache.key(&pair(99_999)), cache.key(&pair(0))]);
    assert_eq!(got[0].as_ref().unwrap().logits[0], 99_999f32 * 1e-3);
    assert!(got[1].is_none());
    let (counted, held) = (cache.bytes(), live() - before);
    drop(got);
    drop(cache);
    // Everything is given back (measured before printing: the harness keeps the output).
    let left = live() - before;
    eprintln!(
        "1 MiB bound: {max} pairs, {counted} bytes counted, {held} bytes held at the end, \
         {peak} at the peak, {left} left after the drop"
    );
    assert!(left <= 0, "{left} bytes left");
}
