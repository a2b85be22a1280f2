//! Retrieval: the tantivy record index and per-patient search. (Question analysis, ranking and
//! context assembly grow here.)

mod error;
mod index;
mod schema;
mod search;

pub use error::IndexError;
pub use index::{IndexUpdater, RecordIndex};
pub use search::{Hit, SearchRequest};
