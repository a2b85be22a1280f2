//! The FHIR layer: bytes -> raw entries -> resolved, normalised, hashed resources.
//!
//! Nothing here touches the database or the index; `prepare` is a pure function of its input,
//! which is what makes ingest all-or-nothing: every reason to refuse an input is found before
//! the first write.

pub mod attachment;
pub mod compartment;
pub mod concept;
pub mod date;
pub mod error;
pub mod image;
pub mod input;
pub mod normalise;
pub mod prepare;
pub mod record;
pub mod redact;
pub mod reference;
pub mod resolve;
pub mod resource_type;
pub mod value;

pub use error::{InputError, Location};
pub use prepare::{prepare, PreparedBatch, PreparedResource, Threads};
pub use record::{Measured, Record};
pub use reference::ResourceRef;
