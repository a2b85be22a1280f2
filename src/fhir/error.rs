//! Errors of the FHIR layer: why one input (a bundle, an NDJSON file, a resource) was refused.
//! Every variant renders as one line a user can act on.

use std::fmt;
use std::path::PathBuf;

/// Where in an input a problem sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `Bundle.entry[i]` (0-based in FHIR paths, shown that way).
    Entry(usize),
    /// Line of an NDJSON file (1-based, as editors count).
    Line(usize),
    /// Item of a JSON array of resources (0-based).
    Item(usize),
    /// The input is a single resource.
    Document,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Entry(i) => write!(f, "entry[{i}]"),
            Location::Line(n) => write!(f, "line {n}"),
            Location::Item(i) => write!(f, "item[{i}]"),
            Location::Document => f.write_str("resource"),
        }
    }
}

/// Why one entry makes its whole input unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("entry has no resource")]
    NoResource,
    #[error("resource is not a JSON object")]
    NotAnObject,
    #[error("resource has no resourceType")]
    MissingType,
    #[error("unknown resourceType {0:?}")]
    UnknownType(String),
    #[error("invalid resource id {0:?}")]
    BadId(String),
    #[error("{method} entries are not supported (only resources to store)")]
    UnsupportedMethod { method: String },
    #[error("{path}: {reason}")]
    BadAttachment { path: String, reason: String },
}

/// Why an input was refused. Nothing of a refused input is stored.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("input is {size} bytes, over the limit of {limit} bytes (raise --max-input-bytes)")]
    TooLarge { size: u64, limit: u64 },
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("JSON nested too deeply ({0})")]
    TooDeep(String),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not FHIR: {0}")]
    NotFhir(String),
    #[error("{at}: {problem}")]
    Entry { at: Location, problem: EntryProblem },
    #[error("empty input: no resources")]
    Empty,
}
