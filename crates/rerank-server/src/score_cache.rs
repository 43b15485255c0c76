//! The rerank score cache of `rerank serve` (`--score-cache-mb`, `--score-cache-entries`): a
//! least-recently-used map from a pair's key to the [`Prediction`] the model gave it, so that
//! repeated pairs (pagination, retries, several users asking the same) skip the model.
//!
//! **Key.** A pair is keyed by the first 128 bits of
//! `SHA-256(tag, model, input_ids, token_type_ids)`, where `model` ([`ModelId`]) is the
//! SHA-256 of the reranker's file fingerprint ([`CrossEncoder::fingerprint`]) and its
//! [`info`](CrossEncoder::info) (`compute_dtype` — the precision —, `max_length`, prompt
//! template and default instruction, …), and the ids are the tokenized pair exactly as the
//! model would run it. Keying on the token ids rather than on the texts covers everything that
//! decides them: the query and document, the max length and any truncation
//! (`max_tokens_per_doc`, `truncate`), a request's instruction and prompt template, and any
//! window of a long document (a window is an ordinary pair). Two pairs with the same key are
//! the same model input, so — since the engine's score of a pair does not depend on the batch
//! it ran in — a cached [`Prediction`] is bit for bit the one a computation gives. A collision
//! of two different inputs needs about 2^64 cached pairs.
//!
//! **Bound.** At most `max_entries` pairs, where `max_entries` is the smaller of
//! `--score-cache-entries` and what `--score-cache-mb` holds at [`ENTRY_BYTES`] bytes per
//! pair; the least recently used pair is evicted first. [`ENTRY_BYTES`] counts, per pair, the
//! key and the value, the list links of the LRU node and its heap allocation's rounding, and
//! the hash-table slot at its worst-case load (see [`ENTRY_BYTES`]), so that the heap the cache
//! holds stays under its byte bound (`tests/score_cache_memory.rs` measures it with a counting
//! allocator). The cache never allocates ahead: it grows with what it holds.
//!
//! **Concurrency.** One mutex, held for the lookups or insertions of one request (no await,
//! no model call inside).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use rerank_engine::score::Prediction;
use rerank_engine::tokenize::Encoded;
use rerank_engine::CrossEncoder;
use sha2::{Digest, Sha256};

/// Domain tag of the key digest; bump it when the key's layout changes.
const KEY_TAG: &[u8] = b"rerank score cache key v1\0";

/// Identity of what computes a score: SHA-256 of the reranker's file fingerprint and its
/// [`rerank_engine::ModelInfo`] (precision as `compute_dtype`, `max_length`, template, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId(pub [u8; 32]);

impl ModelId {
    /// The identity of `model` as loaded. When its folder can no longer be read the file
    /// fingerprint is replaced by the folder's path (the info still names the load options).
    pub fn of(model: &CrossEncoder) -> Self {
        let mut h = Sha256::new();
        match model.fingerprint() {
            Ok(f) => {
                h.update(b"fingerprint\0");
                h.update(f.as_bytes());
            }
            Err(e) => {
                tracing::warn!(
                    "score cache: no file fingerprint of the reranker ({e}); keying on its path"
                );
                h.update(b"path\0");
                h.update(model.info().path.to_string_lossy().as_bytes());
            }
        }
        h.update(b"\0info\0");
        // ModelInfo is plain data; its JSON names every load option that changes a score.
        h.update(serde_json::to_vec(model.info()).unwrap_or_default());
        ModelId(h.finalize().into())
    }
}

/// A pair's cache key: the first 128 bits of `SHA-256(tag, model, ids)` (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairKey(u128);

impl PairKey {
    /// The key of the tokenized pair `e` scored by `model`.
    pub fn new(model: &ModelId, e: &Encoded) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_TAG);
        h.update(model.0);
        for ids in [&e.input_ids, &e.token_type_ids] {
            h.update((ids.len() as u64).to_le_bytes());
            for id in ids.iter() {
                h.update(id.to_le_bytes());
            }
        }
        let d: [u8; 32] = h.finalize().into();
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        PairKey(u128::from_le_bytes(first))
    }
}

/// A stored prediction: up to two logits (rerankers have one or two labels) and the score,
/// kept as the exact f32 values, inline (no allocation per entry).
#[derive(Debug, Clone, Copy)]
struct Cached {
    logits: [f32; 2],
    score: f32,
    labels: u8,
}

impl Cached {
    /// `None` for a prediction with more than two logits (never from a loaded reranker).
    fn of(p: &Prediction) -> Option<Self> {
        let mut logits = [0.0f32; 2];
        match p.logits.as_slice() {
            [a] => logits[0] = *a,
            [a, b] => logits = [*a, *b],
            _ => return None,
        }
        Some(Cached {
            logits,
            score: p.score,
            labels: p.logits.len() as u8,
        })
    }

    fn prediction(&self) -> Prediction {
        Prediction {
            logits: self.logits[..self.labels as usize].to_vec(),
            score: self.score,
        }
    }
}

/// Rounds a heap allocation of `size` bytes up to what glibc's malloc takes for it: the size
/// plus an 8-byte header, in 16-byte steps, at least 32 bytes.
const fn malloc_chunk(size: usize) -> usize {
    let n = (size + 8).div_ceil(16) * 16;
    if n < 32 {
        32
    } else {
        n
    }
}

/// Size of one LRU node of the `lru` crate: key, value and two list pointers.
const NODE: usize = std::mem::size_of::<(PairKey, Cached, *const u8, *const u8)>();

/// One hash-table bucket of the `lru` crate's map (a key pointer and a node pointer) plus its
/// control byte.
const BUCKET: usize = 2 * std::mem::size_of::<usize>() + 1;

/// Heap bytes counted per cached pair: the node's allocation (key 16 + value 16 + links 16
/// bytes = 48, rounded up by malloc to 64) plus the hash table's share at its worst load: the
/// table doubles when it is 7/8 full (so just after growing it holds 7/16 of its buckets), and
/// evictions leaving tombstones can make it double once more, so a pair owns at most 32/7
/// buckets of 17 bytes (78 bytes). 142 bytes in all on 64-bit targets.
pub const ENTRY_BYTES: usize = malloc_chunk(NODE) + (32 * BUCKET).div_ceil(7);

/// Bytes counted for the empty cache: the map and list heads, the two sentinel nodes of the
/// list and the hash table's trailing control group.
pub const FIXED_BYTES: usize =
    std::mem::size_of::<LruCache<PairKey, Cached>>() + 2 * malloc_chunk(NODE) + 64;

/// The bounded LRU score cache; share it behind an `Arc` (it locks inside).
pub struct ScoreCache {
    model: ModelId,
    max_entries: usize,
    max_bytes: usize,
    lru: Mutex<LruCache<PairKey, Cached>>,
}

impl ScoreCache {
    /// A cache for the scores of `model`, holding at most `max_bytes` (as counted by
    /// [`ScoreCache::bytes`]) and, when given, at most `max_entries` pairs. `None` when the
    /// bounds hold no pair at all (`--score-cache-mb 0` or `--score-cache-entries 0`): the
    /// cache is disabled. Allocates nothing ahead of use.
    pub fn new(model: ModelId, max_bytes: usize, max_entries: Option<usize>) -> Option<Self> {
        let by_bytes = max_bytes.saturating_sub(FIXED_BYTES) / ENTRY_BYTES;
        let max_entries = max_entries.map_or(by_bytes, |n| n.min(by_bytes));
        NonZeroUsize::new(max_entries)?;
        Some(ScoreCache {
            model,
            max_entries,
            max_bytes,
            lru: Mutex::new(LruCache::unbounded()),
        })
    }

    /// The identity of the model whose scores this cache holds.
    pub fn model(&self) -> &ModelId {
        &self.model
    }

    /// The key of a tokenized pair of this cache's model.
    pub fn key(&self, e: &Encoded) -> PairKey {
        PairKey::new(&self.model, e)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<PairKey, Cached>> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Looks every key up under one lock, marking hits as recently used: the cached
    /// prediction per key, `None` for a miss.
    pub fn get_many(&self, keys: &[PairKey]) -> Vec<Option<Prediction>> {
        let mut lru = self.lock();
        keys.iter()
            .map(|k| lru.get(k).map(Cached::prediction))
            .collect()
    }

    /// Stores predictions under their keys in one lock, evicting the least recently used
    /// pairs beyond the bound. Returns how many pairs were evicted.
    pub fn insert_many<'a>(
        &self,
        entries: impl IntoIterator<Item = (PairKey, &'a Prediction)>,
    ) -> usize {
        let mut lru = self.lock();
        let mut evicted = 0;
        for (k, p) in entries {
            let Some(c) = Cached::of(p) else { continue };
            lru.put(k, c);
            while lru.len() > self.max_entries {
                lru.pop_lru();
                evicted += 1;
            }
        }
        evicted
    }

    /// Pairs held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the cache holds no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes counted for what the cache holds now: [`FIXED_BYTES`] +
    /// [`ENTRY_BYTES`] × pairs. Never above [`ScoreCache::max_bytes`].
    pub fn bytes(&self) -> usize {
        Self::bytes_for(self.len())
    }

    /// Bytes counted for a cache of `entries` pairs.
    pub fn bytes_for(entries: usize) -> usize {
        FIXED_BYTES + ENTRY_BYTES * entries
    }

    /// The most pairs it holds.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Its byte bound (`--score-cache-mb` × 2^20).
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(i: u32) -> Encoded {
        Encoded {
            input_ids: vec![101, i, i / 7, 102],
            token_type_ids: vec![0, 0, 1, 1],
            truncated: false,
        }
    }

    #[test]
    fn entry_bytes_are_the_documented_142_on_64_bit() {
        assert_eq!(NODE, 48);
        assert_eq!(malloc_chunk(NODE), 64);
        assert_eq!(ENTRY_BYTES, 142);
    }

    #[test]
    fn keys_depend_on_every_id_and_on_the_model() {
        let m = ModelId([1; 32]);
        let a = encoded(5);
        let mut b = a.clone();
        b.token_type_ids[2] = 0;
        let mut c = a.clone();
        c.input_ids.push(0);
        c.token_type_ids.push(0);
        let keys = [
            PairKey::new(&m, &a),
            PairKey::new(&m, &b),
            PairKey::new(&m, &c),
            PairKey::new(&ModelId([2; 32]), &a),
        ];
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(keys[i], keys[j], "{i} {j}");
            }
        }
        // `truncated` is not part of the model input.
        let mut t = a.clone();
        t.truncated = true;
        assert_eq!(PairKey::new(&m, &t), keys[0]);
    }

    #[test]
    fn least_recently_used_pairs_are_evicted_first() {
        let cache = ScoreCache::new(ModelId([0; 32]), 1 << 20, Some(3)).unwrap();
        let p = |x: f32| Prediction::from_logits(vec![x]);
        let k: Vec<PairKey> = (0..5).map(|i| cache.key(&encoded(i))).collect();
        let (p0, p1, p2, p3) = (p(0.0), p(1.0), p(2.0), p(3.0));
        assert_eq!(
            cache.insert_many([(k[0], &p0), (k[1], &p1), (k[2], &p2)]),
            0
        );
        // Touch 0, so 1 is the least recently used when 3 arrives.
        assert!(cache.get_many(&k[..1])[0].is_some());
        assert_eq!(cache.insert_many([(k[3], &p3)]), 1);
        let got = cache.get_many(&k);
        assert_eq!(
            got.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false, true, true, false]
        );
        assert_eq!(got[3].as_ref().unwrap().logits, vec![3.0]);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.bytes(), FIXED_BYTES + 3 * ENTRY_BYTES);
    }

    #[test]
    fn two_label_predictions_keep_their_bits() {
        let cache = ScoreCache::new(ModelId([0; 32]), 1 << 20, None).unwrap();
        let p = Prediction::from_logits(vec![-0.1234567, 3.3e-7]);
        let k = cache.key(&encoded(1));
        cache.insert_many([(k, &p)]);
        let got = cache.get_many(&[k]).pop().flatten().unwrap();
        assert_eq!(got.logits.len(), 2);
        for (a, b) in got.logits.iter().zip(&p.logits) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_eq!(got.score.to_bits(), p.score.to_bits());
    }

    #[test]
    fn a_zero_bound_disables_the_cache() {
        assert!(ScoreCache::new(ModelId([0; 32]), 0, None).is_none());
        assert!(ScoreCache::new(ModelId([0; 32]), 1 << 20, Some(0)).is_none());
        assert!(ScoreCache::new(ModelId([0; 32]), FIXED_BYTES + ENTRY_BYTES - 1, None).is_none());
        let one = ScoreCache::new(ModelId([0; 32]), FIXED_BYTES + ENTRY_BYTES, None).unwrap();
        assert_eq!(one.max_entries(), 1);
    }
}
