//! Errors that stop an ingest as a whole (a bad input only fails that input; see `report.rs`).

use crate::retrieval::IndexError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The database committed the group but the index could not: the group is stored, and
    /// searches miss it until the next write brings the index in step (`rebuild::catch_up`).
    #[error("stored, but the search index could not be updated ({0}); it catches up at the next write")]
    IndexBehind(IndexError),
    #[error("the database commit stopped unexpectedly")]
    CommitGone,
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
