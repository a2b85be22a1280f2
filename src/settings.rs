//! Settings in one place: the CLI (flags and environment) builds one of these and the library
//! reads nothing else.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default refusal threshold for one input file or request body: 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Holds the search index (`index/`) and, without `database_url`, the SQLite database
    /// (`ehrqa.sqlite`).
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user@host:port/db`) shared by every replica, instead
    /// of SQLite in the data directory. Each replica keeps its own index in its data directory.
    pub database_url: Option<DatabaseUrl>,
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

/// A database URL, which may hold a password: `Debug` shows it without one.
#[derive(Clone)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:password@host... -> scheme://user@host...
        let s = &self.0;
        let shown = match (s.find("://"), s.rfind('@')) {
            (Some(a), Some(at)) if at > a => {
                let userinfo = &s[a + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}{}", &s[..a + 3], &s[at..])
            }
            _ => s.clone(),
        };
        f.write_str(&shown)
    }
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
            database_url: None,
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
