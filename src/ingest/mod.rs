//! Ingest: the pipeline that joins the FHIR layer, the store and the index.

mod check;
mod error;
mod loaders;
mod pipeline;
mod progress;
mod rebuild;
mod report;
mod sources;
pub mod transcribe;
mod workspace;
mod writer;

pub use check::{check, CheckReport, IndexCheck, InputCheck};
pub use error::IngestError;
pub use pipeline::{ingest_files, ingest_loaded, ingest_stream, load_bytes, load_file, Loaded};
pub use progress::{NoProgress, Progress};
pub use rebuild::rebuild;
pub use report::{Failure, IngestReport, Timings};
pub use sources::{expand, Unlistable};
pub use workspace::Workspace;
pub use writer::{WriteGate, Writing, LOCK_FILE};
