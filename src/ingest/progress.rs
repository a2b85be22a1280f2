//! Progress reporting for long work, without tying the library to a terminal.

/// Receives progress of an ingest or a rebuild. The CLI draws a bar; tests and the server use
/// [`NoProgress`] or their own.
pub trait Progress: Send + Sync {
    /// Work of `total` units (bytes for ingest, records for a rebuild) is starting.
    fn start(&self, _total: u64, _what: &str) {}
    /// `done` more units are finished.
    fn advance(&self, _done: u64) {}
    fn finish(&self) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}
