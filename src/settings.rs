//! Settings in one place: the CLI (flags and environment) builds one of these and the library
//! reads nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default refusal threshold for one input file or request body: 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds the database (`ehrqa.sqlite`) and the search index (`index/`).
    pub data_dir: PathBuf,
    /// Inputs larger than this are refused before being read.
    pub max_input_bytes: u64,
    /// Where `scripts/setup` caches the tokenizer and test model (`~/.cache/ehrqa`).
    pub cache_dir: PathBuf,
    /// An explicit tokenizer.json; else the cached Gemma 3 tokenizer is used.
    pub tokenizer: Option<PathBuf>,
    /// How long a write waits for another process that is writing to the same data directory
    /// before it is refused (`ingest::IngestError::Busy`). Zero for the CLI: a second writer is
    /// told at once. The service waits a little, then answers 503 with `Retry-After`.
    pub write_wait: Duration,
}

/// `$HOME/.cache/ehrqa`, the cache `scripts/setup` fills.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from(".cache/ehrqa"), |h| PathBuf::from(h).join(".cache/ehrqa"))
}

impl Settings {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            cache_dir: default_cache_dir(),
            tokenizer: None,
            write_wait: Duration::ZERO,
        }
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
