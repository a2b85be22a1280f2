//! ehrqa: answers questions about a patient's FHIR record with cited resources.
//!
//! **Not for clinical use.** See `ARCHITECTURE.md` for how the folders map to the pipeline:
//! `fhir` -> `store` -> `retrieval` -> `ingest` -> `cli`, each using only the ones before it.

pub mod answer;
pub mod blocking;
pub mod chart;
pub mod cli;
pub mod clock;
pub mod conversation;
pub mod draft;
pub mod eval;
pub mod fhir;
pub mod ingest;
pub mod llm;
pub mod outgoing;
pub mod retrieval;
pub mod retry;
pub mod server;
pub mod settings;
pub mod store;
pub mod sync;
pub mod tokens;

pub use settings::Settings;
