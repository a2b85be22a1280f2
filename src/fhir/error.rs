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
    #[error("unknown resourceType {}", shown(.0, true))]
    UnknownType(String),
    #[error("invalid resource id {}", shown(.0, true))]
    BadId(String),
    #[error("{} entries are not supported (only resources to store)", shown_word(.method))]
    UnsupportedMethod { method: String },
    #[error("{path}: {reason}")]
    BadAttachment { path: String, reason: String },
}

/// At most this many characters of a value taken from the input are shown in an error. The
/// message goes to logs, the terminal and HTTP responses, and a hostile input must not make it
/// megabytes long (the fuzzer found a 1 MB resource id quoted whole).
const SHOWN_CHARS: usize = 80;

/// A value from the input as an error shows it: Debug-quoted when `quote` (so control characters
/// cannot break the line), cut after `SHOWN_CHARS` characters with its full length noted.
fn shown(value: &str, quote: bool) -> String {
    let cut = value.char_indices().nth(SHOWN_CHARS).map(|(i, _)| i);
    let head = &value[..cut.unwrap_or(value.len())];
    let mut out = if quote { format!("{head:?}") } else { head.to_owned() };
    if cut.is_some() {
        out.push_str(&format!("... ({} bytes)", value.len()));
    }
    out
}

/// A word such as an HTTP method: bare when it is one, quoted like any other value when not.
fn shown_word(value: &str) -> String {
    let plain = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric());
    shown(value, !plain)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_the_input_are_shown_short_and_on_one_line() {
        let short = EntryProblem::UnknownType("Patientt".into());
        assert_eq!(short.to_string(), "unknown resourceType \"Patientt\"");
        let huge = EntryProblem::BadId("0".repeat(1_000_000));
        let msg = huge.to_string();
        assert!(msg.len() < 200 && msg.ends_with("... (1000000 bytes)"), "{msg}");
        let method = EntryProblem::UnsupportedMethod { method: "DELETE".into() };
        assert_eq!(method.to_string(), "DELETE entries are not supported (only resources to store)");
        let sneaky = EntryProblem::UnsupportedMethod { method: "GET\nok".into() };
        assert!(!sneaky.to_string().contains('\n'));
        let wide = EntryProblem::BadId("\u{e9}".repeat(100));
        assert!(wide.to_string().ends_with("... (200 bytes)"));
    }
}
