//! Errors that stop an ingest as a whole (a bad input only fails that input; see `report.rs`).

use crate::retrieval::IndexError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("a loader thread stopped unexpectedly")]
    ReaderGone,
    /// Another process is writing to the data directory (see `writer.rs`).
    #[error(
        "another ehrqa process{} is writing to {}; try again when it has finished",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        dir.display()
    )]
    Busy { dir: std::path::PathBuf, pid: Option<u32> },
    /// The store refused the input (it would merge two people); nothing of it was stored.
    #[error("{0}")]
    Refused(String),
    #[error("cannot use the lock file {path}: {source}")]
    Lock { path: std::path::PathBuf, source: std::io::Error },
}
