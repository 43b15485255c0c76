//! Token-measured recursive text splitting, in the style of LangChain's
//! `RecursiveCharacterTextSplitter.from_huggingface_tokenizer`.
//!
//! # Algorithm
//!
//! The text is cut into *pieces* at the coarsest separator that makes them small enough, in
//! this order:
//!
//! 1. paragraphs (separated by one or more blank lines),
//! 2. lines,
//! 3. sentences (Unicode UAX #29 sentence boundaries),
//! 4. words (UAX #29 word boundaries; whitespace between words is dropped, punctuation is its
//!    own piece),
//! 5. extended grapheme clusters, for a single "word" that alone is longer than `chunk_size`.
//!
//! A piece is only split further when it does not fit: a paragraph of at most `chunk_size`
//! tokens stays whole. Pieces are then merged greedily, in order, into chunks of at most
//! `chunk_size` tokens; when the next piece does not fit, the chunk is emitted and the next one
//! starts with the *carry*: the longest run of trailing pieces of the previous chunk that
//! counts at most `chunk_overlap` tokens (as LangChain's `_merge_splits`). If the previous
//! chunk's last piece alone is longer than `chunk_overlap`, the carry is taken from its
//! sub-pieces (trailing sentences, else trailing words, else trailing graphemes), so that
//! consecutive chunks share text whenever `chunk_overlap > 0`. When the carry plus the next
//! piece do not fit, the next piece is split at the next separator (rather than dropping the
//! overlap); only an indivisible grapheme makes the carry shrink.
//!
//! Two deliberate differences from LangChain: merging is *flat* — the sub-pieces of a piece that
//! had to be split continue the current chunk and the overlap is carried across such
//! boundaries (LangChain restarts the merge for every over-long piece, which leaves short
//! chunks and no overlap there) — and the overlap descends into the last piece when it is
//! longer than `chunk_overlap` (LangChain then has no overlap at all).
//!
//! # Token counts
//!
//! Every piece is counted once with the [`TokenCounter`]; while merging, the size of a chunk is
//! estimated as the exact count of its carry plus the sum of its pieces' counts. Whitespace
//! between pieces adds no token of its own with the usual pre-tokenizers (BERT WordPiece,
//! SentencePiece's metaspace, byte-level BPE), so the estimate is normally exact, and an
//! over-estimate (e.g. grapheme pieces of one word) only makes a chunk a little shorter. When a
//! chunk is emitted its real count is checked with the counter; if it is over `chunk_size`,
//! trailing pieces are given back to the next chunk until it fits (when only one new piece is
//! left after the carry, that piece is split further; only an indivisible grapheme makes the
//! carry shrink). The cost is about one tokenization of each piece plus one of each chunk.
//!
//! So every chunk counts at most `chunk_size` tokens (real count) **except** a chunk made of a
//! single grapheme cluster that alone counts more than `chunk_size` (e.g. an emoji ZWJ sequence
//! with a character-level counter and `chunk_size` 1): such a grapheme cannot be split without
//! breaking a character, and is emitted alone. The text shared by two consecutive chunks counts
//! at most `chunk_overlap` tokens (real count). It is empty only when `chunk_overlap` is 0, or
//! when the carry had to be dropped for an indivisible grapheme (or, with a counter that counts
//! whitespace, such as a character counter, for the space before it).
//!
//! # Offsets
//!
//! Chunks are slices of the source: `chunk.text == source[chunk.start..chunk.end]` with byte
//! offsets that always fall on grapheme-cluster boundaries. Chunks are trimmed of whitespace
//! (whole whitespace graphemes: a space carrying a combining mark is a grapheme that is not
//! whitespace, so it is kept and a chunk may then begin with that space). Chunks are never empty
//! or whitespace-only, chunk starts and ends strictly increase, and every non-whitespace
//! character of the source lies in at least one chunk.

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Result, RetrievalError};
use crate::TokenCounter;

/// Default chunk size, in embedder tokens (special tokens not included).
///
/// Chosen for embedders and cross-encoders with a 256–512-token window (all-MiniLM-L6-v2
/// truncates at 256 tokens, BERT-style cross-encoders at 256 or 512): a 200-token passage plus
/// the `[CLS]`/`[SEP]` special tokens fits a 256-token bi-encoder untruncated, and in a
/// cross-encoder pair `[CLS] query [SEP] passage [SEP]` it leaves room for the query (≈ 50
/// tokens at 256, ≈ 300 at 512), so the reranker sees the whole passage.
pub const DEFAULT_CHUNK_SIZE: usize = 200;

/// Default overlap between consecutive chunks, in tokens (15 % of [`DEFAULT_CHUNK_SIZE`]):
/// about one sentence of context carried from the end of a chunk into the next one.
pub const DEFAULT_CHUNK_OVERLAP: usize = 30;

/// A passage cut from a source text: `text == source[start..end]` (byte offsets).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chunk {
    /// The passage, a slice of the source trimmed of surrounding whitespace.
    pub text: String,
    /// Byte offset of the first byte in the source.
    pub start: usize,
    /// Byte offset one past the last byte in the source.
    pub end: usize,
}

/// Recursive, token-measured splitter (see the module documentation for the algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecursiveSplitter {
    /// Maximum tokens per chunk (see the module documentation for the one exception).
    pub chunk_size: usize,
    /// Maximum tokens shared by consecutive chunks; `0` for disjoint chunks.
    pub chunk_overlap: usize,
}

impl Default for RecursiveSplitter {
    /// [`DEFAULT_CHUNK_SIZE`] tokens with [`DEFAULT_CHUNK_OVERLAP`] tokens of overlap.
    fn default() -> Self {
        RecursiveSplitter {
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunk_overlap: DEFAULT_CHUNK_OVERLAP,
        }
    }
}

/// Separator levels, coarsest first.
const PARAGRAPH: u8 = 0;
const LINE: u8 = 1;
const SENTENCE: u8 = 2;
const WORD: u8 = 3;
const GRAPHEME: u8 = 4;

/// A trimmed, non-empty byte range of the source, produced by splitting at `level`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    level: u8,
    /// Token count of `source[start..end]`, once known.
    tokens: Option<usize>,
}

impl RecursiveSplitter {
    /// A splitter of `chunk_size` tokens with `chunk_overlap` tokens of overlap.
    ///
    /// Errors: [`RetrievalError::InvalidArgument`] when `chunk_size` is 0 or
    /// `chunk_overlap >= chunk_size`.
    pub fn new(chunk_size: usize, chunk_overlap: usize) -> Result<Self> {
        if chunk_size == 0 {
            return Err(RetrievalError::InvalidArgument(
                "chunk size must be at least 1 token".into(),
            ));
        }
        if chunk_overlap >= chunk_size {
            return Err(RetrievalError::InvalidArgument(format!(
                "chunk overlap ({chunk_overlap}) must be smaller than the chunk size ({chunk_size})"
            )));
        }
        Ok(RecursiveSplitter {
            chunk_size,
            chunk_overlap,
        })
    }

    /// Splits `text` into chunks measured with `counter` (see the module documentation).
    /// An empty or whitespace-only text gives no chunk.
    pub fn split(&self, text: &str, counter: &dyn TokenCounter) -> Vec<Chunk> {
        let mut merger = Merger {
            chunk_size: self.chunk_size,
            chunk_overlap: self.chunk_overlap,
            src: text,
            counter,
            chunks: Vec::new(),
            cur: Vec::new(),
            carry_len: 0,
            cur_tokens: 0,
        };
        // A stack: the next piece is at the end.
        let mut pending = split_level(text, 0, text.len(), PARAGRAPH);
        pending.reverse();

        loop {
            let Some(mut piece) = pending.pop() else {
                if merger.has_own() {
                    merger.emit(&mut pending);
                    continue;
                }
                break;
            };
            let n = merger.tokens(&mut piece);
            if merger.cur_tokens + n <= self.chunk_size {
                merger.push(piece, n);
                continue;
            }
            let own = merger.has_own();
            if n > self.chunk_size || !own {
                // Too long on its own, or too long after the carry: split it further.
                if piece.level < GRAPHEME {
                    let mut subs = split_level(text, piece.start, piece.end, piece.level + 1);
                    if let [only] = subs.as_mut_slice() {
                        if only.start == piece.start && only.end == piece.end {
                            only.tokens = Some(n);
                        }
                    }
                    subs.reverse();
                    pending.extend(subs);
                    continue;
                }
                // An indivisible grapheme cluster.
                if own {
                    pending.push(piece);
                    merger.emit(&mut pending);
                } else {
                    merger.shrink_carry_to_fit(n);
                    merger.push(piece, n);
                }
                continue;
            }
            // It fits alone but not in the current chunk: close the chunk.
            pending.push(piece);
            merger.emit(&mut pending);
        }
        merger.chunks
    }
}

/// Merge state of one [`RecursiveSplitter::split`] call.
struct Merger<'a> {
    chunk_size: usize,
    chunk_overlap: usize,
    src: &'a str,
    counter: &'a dyn TokenCounter,
    chunks: Vec<Chunk>,
    /// Pieces of the chunk being built: `cur[..carry_len]` is the carry from the previous chunk.
    cur: Vec<Piece>,
    carry_len: usize,
    /// Estimated tokens of `cur`: exact count of the carry + sum of the new pieces' counts.
    cur_tokens: usize,
}

impl Merger<'_> {
    fn count(&self, start: usize, end: usize) -> usize {
        self.counter.count_tokens(&self.src[start..end])
    }

    fn tokens(&self, piece: &mut Piece) -> usize {
        match piece.tokens {
            Some(n) => n,
            None => {
                let n = self.count(piece.start, piece.end);
                piece.tokens = Some(n);
                n
            }
        }
    }

    /// Whether the chunk being built holds anything beyond the carry.
    fn has_own(&self) -> bool {
        self.cur.len() > self.carry_len
    }

    fn push(&mut self, piece: Piece, n: usize) {
        self.cur.push(piece);
        self.cur_tokens += n;
    }

    /// Drops carry pieces from the front until `n` more tokens fit (or the carry is empty).
    fn shrink_carry_to_fit(&mut self, n: usize) {
        while self.carry_len > 0 {
            let tokens = self.count(self.cur[0].start, self.cur[self.carry_len - 1].end);
            if tokens + n <= self.chunk_size {
                self.cur_tokens = tokens;
                return;
            }
            self.cur.remove(0);
            self.carry_len -= 1;
        }
        self.cur_tokens = 0;
    }

    /// Emits the chunk being built (after checking its real token count) and starts the next
    /// one with the carry. When the chunk is over `chunk_size` and holds a single new piece
    /// after the carry, that piece is split further instead and nothing is emitted yet.
    fn emit(&mut self, pending: &mut Vec<Piece>) {
        debug_assert!(self.has_own());
        let (start, end) = loop {
            let start = self.cur[0].start;
            let end = self.cur[self.cur.len() - 1].end;
            if self.count(start, end) <= self.chunk_size {
                break (start, end);
            }
            // The estimate was too low: give pieces back, or shorten the carry.
            if self.cur.len() - self.carry_len >= 2 {
                pending.push(self.cur.pop().expect("at least two own pieces"));
            } else if self.carry_len > 0 {
                let last = self.cur[self.cur.len() - 1];
                if last.level < GRAPHEME {
                    // Keep the overlap: split the new piece further, as when it does not fit
                    // after the carry in the first place.
                    self.cur.pop();
                    self.cur_tokens = self.count(start, self.cur[self.carry_len - 1].end);
                    let mut subs = split_level(self.src, last.start, last.end, last.level + 1);
                    subs.reverse();
                    pending.extend(subs);
                    return;
                }
                self.cur.remove(0);
                self.carry_len -= 1;
            } else {
                // A single piece is counted exactly: only an over-long grapheme gets here.
                break (start, end);
            }
        };
        self.chunks.push(Chunk {
            text: self.src[start..end].to_owned(),
            start,
            end,
        });
        let (carry, tokens) = if self.chunk_overlap > 0 {
            self.tail(&self.cur, start)
        } else {
            (Vec::new(), 0)
        };
        self.carry_len = carry.len();
        self.cur = carry;
        self.cur_tokens = tokens;
    }

    /// The longest run of trailing `pieces` that starts after `chunk_start` and counts at most
    /// `chunk_overlap` tokens, descending into the last piece's sub-pieces when it alone is too
    /// long. Returns the pieces and their exact token count.
    fn tail(&self, pieces: &[Piece], chunk_start: usize) -> (Vec<Piece>, usize) {
        let mut owned: Vec<Piece>;
        let mut pieces = pieces;
        loop {
            let Some(last) = pieces.last().copied() else {
                return (Vec::new(), 0);
            };
            let end = last.end;
            let mut best = None;
            for j in (0..pieces.len()).rev() {
                let piece = pieces[j];
                if piece.start <= chunk_start {
                    break;
                }
                let tokens = match piece.tokens {
                    Some(n) if j == pieces.len() - 1 => n,
                    _ => self.count(piece.start, end),
                };
                if tokens > self.chunk_overlap {
                    break;
                }
                best = Some((j, tokens));
            }
            if let Some((j, tokens)) = best {
                return (pieces[j..].to_vec(), tokens);
            }
            // The last piece alone is too long (or is the whole chunk): look inside it.
            let mut level = last.level;
            owned = loop {
                if level >= GRAPHEME {
                    return (Vec::new(), 0);
                }
                level += 1;
                let subs = split_level(self.src, last.start, last.end, level);
                // A single sub-piece spanning the whole piece is as long: look deeper.
                let same = matches!(subs.as_slice(),
                    [only] if only.start == last.start && only.end == last.end);
                if !same {
                    break subs;
                }
            };
            pieces = &owned;
        }
    }
}

/// Splits `src[start..end]` at the separators of `level` into trimmed, non-empty pieces.
fn split_level(src: &str, start: usize, end: usize, level: u8) -> Vec<Piece> {
    let s = &src[start..end];
    let mut out = Vec::new();
    let mut push = |a: usize, b: usize| {
        if let Some((a, b)) = trim(src, start + a, start + b) {
            out.push(Piece {
                start: a,
                end: b,
                level,
                tokens: None,
            });
        }
    };
    match level {
        PARAGRAPH => {
            // Maximal runs of non-blank lines.
            let mut para: Option<(usize, usize)> = None;
            let mut pos = 0;
            for line in s.split_inclusive('\n') {
                let (a, b) = (pos, pos + line.len());
                pos = b;
                if line.trim().is_empty() {
                    if let Some((pa, pb)) = para.take() {
                        push(pa, pb);
                    }
                } else {
                    para = Some((para.map_or(a, |(pa, _)| pa), b));
                }
            }
            if let Some((pa, pb)) = para {
                push(pa, pb);
            }
        }
        LINE => {
            let mut pos = 0;
            for line in s.split_inclusive('\n') {
                push(pos, pos + line.len());
                pos += line.len();
            }
        }
        SENTENCE => {
            for (i, sentence) in s.split_sentence_bound_indices() {
                push(i, i + sentence.len());
            }
        }
        WORD => {
            for (i, word) in s.split_word_bound_indices() {
                push(i, i + word.len());
            }
        }
        _ => {
            for (i, g) in s.grapheme_indices(true) {
                push(i, i + g.len());
            }
        }
    }
    out
}

fn is_blank(grapheme: &str) -> bool {
    grapheme.chars().all(char::is_whitespace)
}

/// `src[start..end]` without leading and trailing whitespace grapheme clusters, if anything is
/// left.
fn trim(src: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = &src[start..end];
    let (first, last) = (s.chars().next()?, s.chars().next_back()?);
    if !first.is_whitespace() && !last.is_whitespace() {
        return Some((start, end));
    }
    let a = s
        .grapheme_indices(true)
        .find(|(_, g)| !is_blank(g))
        .map(|(i, _)| i)?;
    let b = s
        .grapheme_indices(true)
        .rev()
        .find(|(_, g)| !is_blank(g))
        .map(|(i, g)| i + g.len())?;
    Some((start + a, start + b))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Words;
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    struct Chars;
    impl TokenCounter for Chars {
        fn count_tokens(&self, text: &str) -> usize {
            text.chars().count()
        }
    }

    fn texts(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn trim_keeps_grapheme_boundaries() {
        let s = "  a b \u{301}  ";
        let (a, b) = trim(s, 0, s.len()).unwrap();
        assert_eq!(&s[a..b], "a b \u{301}");
        assert_eq!(trim(" \n\t ", 0, 4), None);
        assert_eq!(trim("", 0, 0), None);
    }

    #[test]
    fn paragraphs_stay_whole_when_they_fit() {
        let text = "one two three.\nfour five.\n\n  \nsix seven eight nine.\n\nten.";
        let chunks = RecursiveSplitter::new(7, 0).unwrap().split(text, &Words);
        assert_eq!(
            texts(&chunks),
            [
                "one two three.\nfour five.",
                "six seven eight nine.\n\nten."
            ]
        );
    }

    #[test]
    fn carry_descends_into_the_last_piece() {
        let text = "a b c d e. f g h i j.\n\nk l m n o p q r.";
        let chunks = RecursiveSplitter::new(10, 3).unwrap().split(text, &Words);
        assert_eq!(
            texts(&chunks),
            [
                "a b c d e. f g h i j.",
                "h i j.\n\nk l m n o p q",
                "o p q r."
            ]
        );
    }

    #[test]
    fn over_long_word_is_split_into_graphemes() {
        let text = "ab\u{301}cd 👨‍👩‍👧";
        let chunks = RecursiveSplitter::new(2, 0).unwrap().split(text, &Chars);
        // "b\u{301}" is one grapheme of 2 chars; the family emoji is one grapheme of 5 chars,
        // longer than chunk_size, so it is emitted alone.
        assert_eq!(texts(&chunks), ["a", "b\u{301}", "cd", "👨‍👩‍👧"]);
    }

    #[test]
    fn blank_text_gives_nothing() {
        let splitter = RecursiveSplitter::default();
        assert!(splitter.split("", &Words).is_empty());
        assert!(splitter.split(" \n\n\t ", &Words).is_empty());
    }
}
