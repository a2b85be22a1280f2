//! The tables a Gemma 3 tokenizer is made of, held the way encoding and decoding read them:
//! token pieces by id, the merges by left token (`merges.rs`), single characters and byte-fallback
//! tokens for a word's first symbols, and the added tokens. Built from `tokenizer.json`
//! (`json.rs`) or from the preprocessed copy beside it (`cache.rs`).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::bpe;
use super::merges::{Merge, Merges};

/// One added token: matched in raw text before BPE (none of Gemma 3's is normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub content: String,
    pub id: u32,
    /// A control token (`<bos>`, `<start_of_turn>`...): read as plain text when special tokens
    /// are split.
    pub special: bool,
}

/// Everything an encoder and decoder need, in the order the cache writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Token text by id (`▁` for a space, `<0x0A>` for a byte).
    pub pieces: Vec<String>,
    /// Sorted by `(left, right)` (`merges::sorted`).
    pub merges: Vec<Merge>,
    pub added: Vec<Added>,
}

/// A fast hash for the merge map's packed `(left, right)` keys (Fx, as rustc uses).
#[derive(Default)]
pub struct PairHasher(u64);

impl Hasher for PairHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.write_u64(u64::from(b)));
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Words up to this many bytes are remembered once merged.
const CACHED_WORD_BYTES: usize = 64;
/// A thread's word cache is emptied when it holds this many words: about 1 MB for clinical
/// text's short words (6 MB were every word at the size limit), per thread that counts, so a
/// service's many blocking threads stay bounded too.
const CACHED_WORDS: usize = 1 << 14;

/// Merged words, per thread (so that counting on several threads never waits on a lock), for
/// the vocabulary that `owner` names.
#[derive(Default)]
struct WordCache {
    owner: u64,
    words: foldhash::HashMap<Box<str>, Box<[u32]>>,
}

thread_local! {
    static WORDS: std::cell::RefCell<WordCache> = std::cell::RefCell::new(WordCache::default());
}

/// Each `Vocabulary` gets its own id, so a thread's cache never answers for another.
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Where a text's BPE words begin: before a space that follows a character no token joins to a
/// following `▁` (anything but whitespace, `▁` and `>`; see `llm::pieces`). No token spans such a
/// cut, so no merge crosses it, and merging each side alone gives the whole text's tokens.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut prev: Option<char> = None;
        let cut = rest
            .char_indices()
            .find(|&(i, c)| {
                let cut =
                    i > 0 && c == ' ' && prev.is_some_and(|p| !p.is_whitespace() && p != '▁' && p != '>');
                prev = Some(c);
                cut
            })
            .map_or(rest.len(), |(i, _)| i);
        let (word, tail) = rest.split_at(cut);
        rest = tail;
        Some(word)
    })
}

/// The tables, indexed for encoding and decoding.
pub struct Vocabulary {
    id: u64,
    /// Ids in use: the pieces', and the added tokens' beyond them.
    len: usize,
    pieces: Vec<String>,
    added: Vec<Added>,
    merges: Merges,
    chars: HashMap<char, u32, BuildHasherDefault<PairHasher>>,
    /// `<0xNN>` by byte: every character outside `chars` is encoded as its bytes' tokens.
    bytes: [u32; 256],
    /// What each id decodes from: an added token's content, else the vocabulary's piece.
    shown: HashMap<u32, usize, BuildHasherDefault<PairHasher>>,
    /// The byte of each byte-fallback id, for decoding.
    byte_of: HashMap<u32, u8, BuildHasherDefault<PairHasher>>,
    /// ASCII characters whose token no merge takes in (Gemma 3's digits): see `segments`.
    alone: [bool; 128],
}

impl Vocabulary {
    /// Indexes the tables; refuses a vocabulary without all 256 byte-fallback tokens (the
    /// encoder relies on them in place of an unknown token).
    pub fn new(tables: Tables) -> Result<Self, String> {
        let Tables { pieces, merges, added } = tables;
        let len = pieces.len().max(added.iter().map(|a| a.id as usize + 1).max().unwrap_or(0));
        let mut merged = vec![false; len];
        for m in &merges {
            for id in [m.left, m.right] {
                if let Some(flag) = merged.get_mut(id as usize) {
                    *flag = true;
                }
            }
        }
        let merges = Merges::new(merges, len)?;
        let shown = added.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
        let mut chars = HashMap::default();
        let mut bytes = [u32::MAX; 256];
        for (id, piece) in pieces.iter().enumerate() {
            let id = id as u32;
            let mut it = piece.chars();
            if let (Some(c), None) = (it.next(), it.next()) {
                chars.insert(c, id);
            }
            if let Some(b) = byte_token(piece) {
                if *piece == format!("<0x{b:02X}>") {
                    bytes[b as usize] = id;
                }
            }
        }
        if bytes.contains(&u32::MAX) {
            return Err("the vocabulary lacks some of the 256 byte-fallback tokens <0x00>..<0xFF>".into());
        }
        let mut alone = [false; 128];
        for (c, &id) in &chars {
            if c.is_ascii() && *c != ' ' && !merged[id as usize] {
                alone[*c as usize] = true;
            }
        }
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let byte_of = HashMap::default();
        let mut v = Self { id, len, pieces, added, merges, chars, bytes, shown, byte_of, alone };
        // Decoding reads bytes from what an id decodes from (an added token's content wins).
        v.byte_of =
            (0..len as u32).filter_map(|id| v.piece(id).and_then(byte_token).map(|b| (id, b))).collect();
        Ok(v)
    }

    /// Token ids of text with no added token in it, normalised as Gemma 3's normaliser does
    /// (spaces become `▁`) and merged as `tokenizers` merges it: as one word. Merging the
    /// shorter words between exact cuts (`words`) gives the same tokens, and each word is merged
    /// once per thread (`WordCache`): clinical text says the same words again and again.
    pub fn encode_word(&self, text: &str, out: &mut Vec<u32>) {
        for word in words(text) {
            self.segments(word, |seg| self.with_word(seg, |ids| out.extend_from_slice(ids)));
        }
    }

    /// As `encode_word`, counting only.
    pub fn count_word(&self, text: &str) -> usize {
        let mut n = 0;
        for word in words(text) {
            self.segments(word, |seg| n += self.with_word(seg, <[u32]>::len));
        }
        n
    }

    /// Cuts a word before and after each character no merge takes in (`alone`): its token
    /// stays a token of its own whatever surrounds it, so no merge crosses it and each side
    /// merges alone to the same tokens. Gemma 3 merges no digit, so an id or a number splits
    /// into short pieces that the word cache already holds, instead of one new word for every
    /// resource's `[Type/uuid]`.
    fn segments<'w>(&self, word: &'w str, mut f: impl FnMut(&'w str)) {
        let mut start = 0;
        for (i, b) in word.bytes().enumerate() {
            if b < 128 && self.alone[b as usize] {
                if start < i {
                    f(&word[start..i]);
                }
                f(&word[i..=i]);
                start = i + 1;
            }
        }
        if start < word.len() {
            f(&word[start..]);
        }
    }

    fn with_word<R>(&self, word: &str, f: impl FnOnce(&[u32]) -> R) -> R {
        if word.len() > CACHED_WORD_BYTES {
            return f(&self.merge_word(word));
        }
        WORDS.with_borrow_mut(|cache| {
            if cache.owner != self.id || cache.words.len() >= CACHED_WORDS {
                cache.owner = self.id;
                cache.words.clear();
            }
            if let Some(ids) = cache.words.get(word) {
                return f(ids);
            }
            let ids = self.merge_word(word);
            let r = f(&ids);
            cache.words.insert(word.into(), ids.into());
            r
        })
    }

    fn merge_word(&self, word: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        bpe::merge(&self.initial_symbols(word), &self.merges, |id| ids.push(id));
        ids
    }

    /// A word's first symbols: each character's token, else its UTF-8 bytes' tokens.
    fn initial_symbols(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let c = if c == ' ' { '▁' } else { c };
            match self.chars.get(&c) {
                Some(&id) => out.push(id),
                None => {
                    let mut buf = [0u8; 4];
                    out.extend(c.encode_utf8(&mut buf).bytes().map(|b| self.bytes[b as usize]));
                }
            }
        }
        out
    }

    /// The text of `ids`, as Gemma 3's decoder makes it: `▁` read as a space, runs of byte
    /// tokens read as UTF-8 (each byte of an invalid run a U+FFFD), unknown ids skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut run: Vec<u8> = Vec::new();
        for &id in ids {
            if let Some(&b) = self.byte_of.get(&id) {
                run.push(b);
                continue;
            }
            let Some(piece) = self.piece(id) else { continue };
            flush_bytes(&mut run, &mut out);
            out.push_str(&piece.replace('▁', " "));
        }
        flush_bytes(&mut run, &mut out);
        out
    }

    /// Ids in use: the pieces', and the added tokens' beyond them.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn added(&self) -> &[Added] {
        &self.added
    }

    /// The id of the vocabulary piece `piece` (a linear search: for a few lookups at load).
    pub fn piece_id(&self, piece: &str) -> Option<u32> {
        self.pieces.iter().position(|p| p == piece).map(|i| i as u32)
    }

    /// The text of token `id`: an added token's content, else the vocabulary's piece.
    pub fn piece(&self, id: u32) -> Option<&str> {
        match self.shown.get(&id) {
            Some(&i) => Some(&self.added[i].content),
            None => self.pieces.get(id as usize).map(String::as_str),
        }
    }
}

fn flush_bytes(run: &mut Vec<u8>, out: &mut String) {
    if run.is_empty() {
        return;
    }
    match std::str::from_utf8(run) {
        Ok(s) => out.push_str(s),
        Err(_) => run.iter().for_each(|_| out.push('\u{FFFD}')),
    }
    run.clear();
}

/// The byte a `<0xNN>` token stands for.
fn byte_token(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2).then(|| u8::from_str_radix(hex, 16).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::tokenizer::merges;

    /// The 256 byte tokens, then `extra`; merges are `[left, right, merged]` in rank order.
    fn vocabulary(extra: &[&str], ranked: &[[&str; 3]]) -> Vocabulary {
        let mut pieces: Vec<String> = (0..=255u8).map(|b| format!("<0x{b:02X}>")).collect();
        pieces.extend(extra.iter().map(|p| p.to_string()));
        let id = |p: &str| pieces.iter().position(|q| q == p).expect("a listed piece") as u32;
        let ranked: Vec<[u32; 3]> = ranked.iter().map(|[l, r, m]| [id(l), id(r), id(m)]).collect();
        Vocabulary::new(Tables { merges: merges::sorted(&ranked), pieces, added: Vec::new() }).unwrap()
    }

    fn encoded(v: &Vocabulary, text: &str) -> Vec<String> {
        let mut ids = Vec::new();
        v.encode_word(text, &mut ids);
        ids.iter().map(|&id| v.piece(id).unwrap().to_owned()).collect()
    }

    /// The whole word merged at once, without any cut: what the cuts must reproduce.
    fn merged_whole(v: &Vocabulary, text: &str) -> Vec<String> {
        v.merge_word(text).iter().map(|&id| v.piece(id).unwrap().to_owned()).collect()
    }

    #[test]
    fn a_character_no_merge_takes_in_cuts_a_word_without_changing_its_tokens() {
        let v = vocabulary(&["a", "b", "ab", "aba", "1", "-"], &[["a", "b", "ab"], ["ab", "a", "aba"]]);
        assert!(v.alone[b'1' as usize] && v.alone[b'-' as usize]);
        assert!(!v.alone[b'a' as usize] && !v.alone[b'b' as usize]);
        for text in ["ab1aba", "1ab", "ab1", "11", "aba-1-ab", "b1a1b"] {
            assert_eq!(encoded(&v, text), merged_whole(&v, text), "{text}");
        }
        assert_eq!(encoded(&v, "ab1aba"), ["ab", "1", "aba"]);
        assert_eq!(v.count_word("ab1aba-1"), 5);
    }

    #[test]
    fn a_character_some_merge_takes_in_is_not_a_cut() {
        let v = vocabulary(&["a", "1", "2", "12", "a1"], &[["1", "2", "12"], ["a", "1", "a1"]]);
        assert!(!v.alone[b'1' as usize] && !v.alone[b'2' as usize]);
        assert_eq!(encoded(&v, "a12"), merged_whole(&v, "a12"));
        assert_eq!(encoded(&v, "a12"), ["a", "12"]);
    }
}
