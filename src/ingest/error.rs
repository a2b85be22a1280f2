//! Errors that stop an ingest as a whole (a bad input only fails that input; see `report.rs`).

use crate::retrieval::IndexError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("the reader thread stopped unexpectedly")]
    ReaderGone,
}
