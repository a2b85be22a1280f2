//! Retrieval: the tantivy record index, per-patient search, question analysis, hybrid ranking,
//! computed facts and context assembly within a token budget.

pub mod clinician;
pub mod context;
mod display_match;
mod error;
pub mod facts;
pub mod history;
mod index;
mod keys;
pub mod lookup;
pub mod question;
pub mod rank;
mod schema;
mod search;
mod stem;
pub mod summary;
pub mod treatment;
pub mod visit;
pub mod visit_reason;

pub use context::{assemble, Context, ContextItem, ContextOptions};
pub use error::IndexError;
pub use index::{IndexUpdater, IndexedRecord, RecordIndex};
pub use search::{Hit, SearchRequest};
