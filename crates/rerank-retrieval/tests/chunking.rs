//! Recursive token splitter: invariants on the State of the Union text with a whitespace counter
//! and the real all-MiniLM-L6-v2 WordPiece tokenizer, Unicode safety, tiny sizes, bad parameters.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use rerank_engine::tokenize::TextTokenizer;
use rerank_retrieval::chunk::{
    Chunk, RecursiveSplitter, DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_SIZE,
};
use rerank_retrieval::{RetrievalError, TokenCounter};
use unicode_segmentation::UnicodeSegmentation;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn sotu() -> String {
    std::fs::read_to_string(shared().join("data/state_of_the_union.txt")).unwrap()
}

/// Whitespace-separated words.
struct Whitespace;
impl TokenCounter for Whitespace {
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// Unicode scalar values: makes graphemes of several chars longer than one token.
struct Chars;
impl TokenCounter for Chars {
    fn count_tokens(&self, text: &str) -> usize {
        text.chars().count()
    }
}

/// The all-MiniLM-L6-v2 WordPiece tokenizer, without special tokens.
struct WordPiece(TextTokenizer);
impl TokenCounter for WordPiece {
    fn count_tokens(&self, text: &str) -> usize {
        self.0
            .inner()
            .encode(text, false)
            .expect("tokenizes")
            .get_ids()
            .len()
    }
}

fn wordpiece() -> &'static WordPiece {
    static TOKENIZER: OnceLock<WordPiece> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let path = shared().join("models/all-MiniLM-L6-v2/tokenizer.json");
        WordPiece(TextTokenizer::from_file(&path).expect("all-MiniLM-L6-v2 tokenizer.json"))
    })
}

fn is_blank(grapheme: &str) -> bool {
    grapheme.chars().all(char::is_whitespace)
}

/// Checks every documented invariant; `strict_overlap` also requires consecutive chunks to share
/// text when the overlap is positive. Returns the number of consecutive pairs sharing text.
fn check(
    source: &str,
    chunks: &[Chunk],
    splitter: &RecursiveSplitter,
    counter: &dyn TokenCounter,
    strict_overlap: bool,
) -> usize {
    let boundaries: HashSet<usize> = source
        .grapheme_indices(true)
        .map(|(i, _)| i)
        .chain([source.len()])
        .collect();
    let mut covered = vec![false; source.len()];
    let mut shared_pairs = 0;
    for (i, c) in chunks.iter().enumerate() {
        assert!(c.start < c.end, "chunk {i} is empty: {c:?}");
        assert_eq!(&source[c.start..c.end], c.text, "chunk {i} offsets");
        assert!(
            boundaries.contains(&c.start) && boundaries.contains(&c.end),
            "chunk {i} cuts a grapheme cluster: {c:?}"
        );
        let graphemes: Vec<&str> = c.text.graphemes(true).collect();
        assert!(
            !is_blank(graphemes[0]) && !is_blank(graphemes[graphemes.len() - 1]),
            "chunk {i} is not trimmed: {c:?}"
        );
        let tokens = counter.count_tokens(&c.text);
        assert!(
            tokens <= splitter.chunk_size || graphemes.len() == 1,
            "chunk {i} has {tokens} tokens > {}: {c:?}",
            splitter.chunk_size
        );
        if i > 0 {
            let prev = &chunks[i - 1];
            assert!(
                c.start > prev.start && c.end > prev.end,
                "chunks {} and {i} out of order",
                i - 1
            );
            if c.start < prev.end {
                shared_pairs += 1;
                let shared = &source[c.start..prev.end];
                let n = counter.count_tokens(shared);
                assert!(
                    n <= splitter.chunk_overlap,
                    "chunks {} and {i} share {n} tokens > {}: {shared:?}",
                    i - 1,
                    splitter.chunk_overlap
                );
            } else if strict_overlap && splitter.chunk_overlap > 0 {
                panic!("chunks {} and {i} share no text: {prev:?} {c:?}", i - 1);
            }
        }
        covered[c.start..c.end].iter_mut().for_each(|b| *b = true);
    }
    for (i, ch) in source.char_indices() {
        assert!(
            ch.is_whitespace() || covered[i],
            "{ch:?} at byte {i} is in no chunk"
        );
    }
    shared_pairs
}

fn split_and_check(
    source: &str,
    size: usize,
    overlap: usize,
    counter: &dyn TokenCounter,
    strict_overlap: bool,
) -> Vec<Chunk> {
    let splitter = RecursiveSplitter::new(size, overlap).unwrap();
    let chunks = splitter.split(source, counter);
    let shared = check(source, &chunks, &splitter, counter, strict_overlap);
    if overlap == 0 {
        assert_eq!(shared, 0, "overlap 0 but chunks share text");
    }
    chunks
}

#[test]
fn sotu_with_the_wordpiece_tokenizer() {
    let text = sotu();
    let counter = wordpiece();
    let start = Instant::now();
    let total = counter.count_tokens(&text);
    eprintln!(
        "state_of_the_union.txt: {} bytes, {total} WordPiece tokens (counted in {:?})",
        text.len(),
        start.elapsed()
    );
    for (size, overlap) in [
        (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_OVERLAP),
        (DEFAULT_CHUNK_SIZE, 0),
        (256, 50),
        (128, 20),
        (64, 0),
        (32, 8),
    ] {
        let splitter = RecursiveSplitter::new(size, overlap).unwrap();
        let start = Instant::now();
        let chunks = splitter.split(&text, counter);
        let elapsed = start.elapsed();
        assert_eq!(chunks, split_and_check(&text, size, overlap, counter, true));
        let tokens: Vec<usize> = chunks
            .iter()
            .map(|c| counter.count_tokens(&c.text))
            .collect();
        let mean = tokens.iter().sum::<usize>() as f64 / tokens.len() as f64;
        eprintln!(
            "size {size:>3} overlap {overlap:>2}: {:>4} chunks, tokens mean {mean:.1} min {} max {}, split in {elapsed:?}",
            chunks.len(),
            tokens.iter().min().unwrap(),
            tokens.iter().max().unwrap(),
        );
        // Greedy packing: far fewer chunks than one per sentence, at least total / size.
        assert!(chunks.len() >= total / size);
        assert!(
            mean > size as f64 * 0.6,
            "chunks are poorly filled: mean {mean:.1}"
        );
    }
}

#[test]
fn sotu_default_chunks_keep_paragraphs_and_sentences() {
    let text = sotu();
    let counter = wordpiece();
    let chunks = split_and_check(&text, DEFAULT_CHUNK_SIZE, 0, counter, true);
    // Without overlap, every chunk boundary falls at a paragraph or sentence boundary (no
    // sentence of this speech is longer than 200 tokens).
    let sentence_starts: HashSet<usize> = text
        .split_sentence_bound_indices()
        .map(|(i, s)| i + (s.len() - s.trim_start().len()))
        .collect();
    for c in &chunks {
        assert!(
            sentence_starts.contains(&c.start),
            "chunk starts mid-sentence: {c:?}"
        );
    }
    // Paragraphs that fit are kept whole: the first chunk is the first two paragraphs (the
    // third does not fit beside them).
    assert!(
        chunks[0].text.ends_with("triumph over tyranny."),
        "{:?}",
        chunks[0].text
    );
}

#[test]
fn sotu_with_a_whitespace_counter() {
    let text = sotu();
    for (size, overlap) in [(100, 20), (100, 0), (50, 49), (300, 1)] {
        let chunks = split_and_check(&text, size, overlap, &Whitespace, true);
        eprintln!(
            "whitespace size {size} overlap {overlap}: {} chunks",
            chunks.len()
        );
    }
}

#[test]
fn tiny_chunk_sizes() {
    let text = sotu();
    let mut end = 3000;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let text = &text[..end];
    let counter = wordpiece();
    for (size, overlap) in [(1, 0), (2, 0), (2, 1), (3, 2)] {
        let start = Instant::now();
        let chunks = split_and_check(text, size, overlap, counter, true);
        eprintln!(
            "WordPiece size {size} overlap {overlap}: {} chunks in {:?}",
            chunks.len(),
            start.elapsed()
        );
        if size == 1 {
            assert!(chunks.iter().all(|c| counter.count_tokens(&c.text) == 1));
        }
    }
    for (size, overlap) in [(1, 0), (2, 1)] {
        split_and_check(text, size, overlap, &Whitespace, true);
        // A character counter counts the spaces between pieces too, so a carry may have to be
        // dropped to fit (documented): no strict overlap there.
        split_and_check(text, size, overlap, &Chars, false);
    }
}

const UNICODE: &str = "대한민국은 민주공화국이다. 대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다.\n\n\
    Family 👨‍👩‍👧‍👦 and flags 🇰🇷🇺🇸 — thumbs 👍🏽! Café vs. Cafe\u{301}, naïve, A\u{30a}ngstro\u{308}m.\n\
    e\u{301}\u{301}\u{301}\u{301} z\u{335}\u{316}\u{350}a\u{337}\u{34d}l\u{336}g\u{338}o\u{334}  \u{301}combining after a space.\n\n\
    日本語の文章です。句読点もあります。ไทยไม่มีช่องว่าง Ελληνικά κείμενα; русский текст.\r\n\r\n\
    \u{feff}zero\u{200b}width\u{200d}joiner and\u{a0}no-break\u{3000}ideographic space 🏳️‍🌈🏳️‍⚧️";

#[test]
fn unicode_text_is_never_cut_inside_a_grapheme() {
    let counters: [(&str, &dyn TokenCounter); 3] = [
        ("whitespace", &Whitespace),
        ("chars", &Chars),
        ("wordpiece", wordpiece()),
    ];
    for (name, counter) in counters {
        for (size, overlap) in [
            (1, 0),
            (2, 1),
            (3, 0),
            (5, 2),
            (8, 3),
            (16, 4),
            (40, 10),
            (200, 30),
        ] {
            let splitter = RecursiveSplitter::new(size, overlap).unwrap();
            let chunks = splitter.split(UNICODE, counter);
            check(UNICODE, &chunks, &splitter, counter, false);
            assert!(!chunks.is_empty(), "{name} {size}");
        }
    }
    // With a character counter and size 1, multi-char graphemes (ZWJ families, flags, stacked
    // accents) are emitted alone, whole.
    let chunks = RecursiveSplitter::new(1, 0).unwrap().split(UNICODE, &Chars);
    for g in [
        "👨‍👩‍👧‍👦",
        "🇰🇷",
        "🇺🇸",
        "👍🏽",
        "e\u{301}\u{301}\u{301}\u{301}",
        "🏳️‍🌈",
    ] {
        assert!(chunks.iter().any(|c| c.text == g), "{g:?} not a chunk");
    }
    // The space carrying a combining accent is a non-blank grapheme: kept, not cut.
    assert!(chunks.iter().any(|c| c.text == " \u{301}"));
}

#[test]
fn a_5000_character_word_is_split_into_graphemes() {
    let unit = "abcd\u{301}한국어👍🏽"; // 10 chars in 8 graphemes
    let word: String = unit.repeat(500);
    assert_eq!(word.chars().count(), 5000);
    let text = format!("Before the word.\n\n{word}\n\nAfter the word.");
    let chunks = split_and_check(&text, 100, 10, &Chars, true);
    assert!(chunks.len() >= 50, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.text.chars().count() <= 100));
    split_and_check(&text, 7, 3, &Chars, true);
    // WordPiece maps a word longer than 100 characters to a single [UNK]; it still fits.
    let counter = wordpiece();
    assert_eq!(counter.count_tokens(&word), 1);
    let chunks = split_and_check(&text, 5, 1, counter, true);
    assert!(chunks.iter().any(|c| c.text.contains(word.as_str())));
    // A word without spaces of ordinary letters, real WordPiece pieces.
    let letters = "supercalifragilistic".repeat(250);
    let text = format!("{letters} end.");
    split_and_check(&text, 16, 4, &Chars, true);
}

#[test]
fn blank_and_tiny_inputs() {
    let splitter = RecursiveSplitter::default();
    assert!(splitter.split("", &Whitespace).is_empty());
    assert!(splitter.split("  \n\n \t\r\n", wordpiece()).is_empty());
    let chunks = splitter.split("  \n hello  \n\n", wordpiece());
    assert_eq!(
        chunks,
        [Chunk {
            text: "hello".into(),
            start: 4,
            end: 9
        }]
    );
}

#[test]
fn splitting_is_deterministic() {
    let text = sotu();
    let splitter = RecursiveSplitter::default();
    assert_eq!(
        splitter.split(&text, wordpiece()),
        splitter.split(&text, wordpiece())
    );
}

#[test]
fn invalid_parameters_are_rejected() {
    for (size, overlap) in [(0, 0), (10, 10), (10, 11), (1, 1)] {
        match RecursiveSplitter::new(size, overlap) {
            Err(RetrievalError::InvalidArgument(msg)) => assert!(!msg.is_empty()),
            other => panic!("({size}, {overlap}) accepted: {other:?}"),
        }
    }
    assert!(RecursiveSplitter::new(1, 0).is_ok());
    let default = RecursiveSplitter::default();
    assert_eq!(
        (default.chunk_size, default.chunk_overlap),
        (DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_OVERLAP)
    );
    assert_eq!(
        RecursiveSplitter::new(DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_OVERLAP).unwrap(),
        default
    );
}
