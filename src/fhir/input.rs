//! Bytes in, raw FHIR entries out: bundles of every type, single resources, JSON arrays of
//! resources and NDJSON bulk-export files.
//!
//! This is the only place that looks at input bytes. It enforces the size limit before reading
//! (an input is never read whole without a bound), refuses non-UTF-8 and over-deep JSON with a
//! clear reason, and leaves normalisation to `prepare.rs`.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::Value as Json;

use super::error::{EntryProblem, InputError, Location};

/// One resource as it arrived, with where it came from.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub at: Location,
    pub full_url: Option<String>,
    pub resource: Json,
}

/// The unit of all-or-nothing ingest: one bundle, one NDJSON file, one array or one resource.
#[derive(Debug, Clone)]
pub struct RawBatch {
    pub entries: Vec<RawEntry>,
    /// Whether the text writes the escape `\u0000` anywhere: only then can a string in it hold
    /// a NUL character (JSON has no other way to write one), so only then must `prepare` look.
    pub may_hold_nul: bool,
}

/// How the bytes are laid out. `Auto` sniffs: NDJSON when the first line is a whole object and
/// more lines follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Auto,
    Json,
    Ndjson,
}

impl Format {
    /// The format a file name suggests.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some("ndjson" | "jsonl") => Format::Ndjson,
            _ => Format::Auto,
        }
    }
}

/// Reads a file with a hard size limit (checked before reading, and enforced while reading).
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let io = |source| InputError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(InputError::TooLarge { size, limit });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge { size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

/// Parses input bytes into raw entries.
pub fn parse(bytes: &[u8], format: Format) -> Result<RawBatch, InputError> {
    let text = std::str::from_utf8(bytes).map_err(|e| InputError::NotUtf8 { offset: e.valid_up_to() })?;
    let trimmed = text.trim_start_matches('\u{feff}');
    let format = match format {
        Format::Auto if looks_like_ndjson(trimmed) => Format::Ndjson,
        Format::Auto => Format::Json,
        f => f,
    };
    let entries = match format {
        Format::Ndjson => parse_ndjson(trimmed)?,
        _ => parse_document(trimmed)?,
    };
    if entries.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(RawBatch { entries, may_hold_nul: trimmed.contains("\\u0000") })
}

fn looks_like_ndjson(text: &str) -> bool {
    let text = text.trim_start();
    let Some((first, rest)) = text.split_once('\n') else {
        return false;
    };
    // Cheap checks first: a pretty-printed document's first line is `{` alone.
    first.trim_start().starts_with('{')
        && !rest.trim().is_empty()
        && serde_json::from_str::<serde::de::IgnoredAny>(first).is_ok()
}

fn json_error(e: serde_json::Error) -> InputError {
    let msg = e.to_string();
    if msg.contains("recursion limit") {
        InputError::TooDeep(msg)
    } else {
        InputError::NotJson(msg)
    }
}

fn parse_ndjson(text: &str) -> Result<Vec<RawEntry>, InputError> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Location::Line(i + 1);
        let resource: Json = serde_json::from_str(line).map_err(|e| match json_error(e) {
            InputError::NotJson(m) => InputError::NotJson(format!("{at}: {m}")),
            other => other,
        })?;
        entries.push(RawEntry { at, full_url: None, resource });
    }
    Ok(entries)
}

fn parse_document(text: &str) -> Result<Vec<RawEntry>, InputError> {
    let doc: Json = serde_json::from_str(text).map_err(json_error)?;
    match doc {
        Json::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(i, resource)| RawEntry { at: Location::Item(i), full_url: None, resource })
            .collect()),
        Json::Object(ref obj) => match obj.get("resourceType").and_then(Json::as_str) {
            Some("Bundle") => bundle_entries(doc),
            Some(_) => Ok(vec![RawEntry { at: Location::Document, full_url: None, resource: doc }]),
            None => Err(InputError::NotFhir("the JSON object has no resourceType".into())),
        },
        _ => Err(InputError::NotFhir("expected a JSON object or array of resources".into())),
    }
}

/// Flattens a Bundle (transaction, batch, collection, searchset, history...) into its resources.
fn bundle_entries(mut bundle: Json) -> Result<Vec<RawEntry>, InputError> {
    let entries = match bundle.get_mut("entry").map(Json::take) {
        None => return Ok(Vec::new()),
        Some(Json::Array(list)) => list,
        Some(_) => return Err(InputError::NotFhir("Bundle.entry is not an array".into())),
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, mut entry) in entries.into_iter().enumerate() {
        let at = Location::Entry(i);
        let problem = |problem| InputError::Entry { at, problem };
        let method = entry.pointer("/request/method").and_then(Json::as_str);
        if let Some(m) = method.filter(|m| !matches!(*m, "POST" | "PUT" | "PATCH")) {
            if m != "GET" || entry.get("resource").is_none() {
                return Err(problem(EntryProblem::UnsupportedMethod { method: m.to_owned() }));
            }
        }
        let full_url = entry.get("fullUrl").and_then(Json::as_str).map(str::to_owned);
        match entry.get_mut("resource").map(Json::take) {
            Some(resource @ Json::Object(_)) => out.push(RawEntry { at, full_url, resource }),
            Some(_) => return Err(problem(EntryProblem::NotAnObject)),
            None => return Err(problem(EntryProblem::NoResource)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_input_shape() {
        let bundle = br#"{"resourceType":"Bundle","type":"searchset","entry":[
            {"fullUrl":"http://x/Patient/1","resource":{"resourceType":"Patient","id":"1"}}]}"#;
        assert_eq!(parse(bundle, Format::Auto).unwrap().entries.len(), 1);
        let ndjson =
            b"{\"resourceType\":\"Patient\",\"id\":\"1\"}\n{\"resourceType\":\"Observation\",\"id\":\"2\"}\n";
        let b = parse(ndjson, Format::Auto).unwrap();
        assert_eq!(b.entries.len(), 2);
        assert_eq!(b.entries[1].at, Location::Line(2));
        let array = br#"[{"resourceType":"Patient","id":"1"}]"#;
        assert_eq!(parse(array, Format::Auto).unwrap().entries.len(), 1);
        let single = br#"{"resourceType":"Patient","id":"1"}"#;
        assert_eq!(parse(single, Format::Auto).unwrap().entries[0].at, Location::Document);
    }

    #[test]
    fn refuses_bad_input_with_a_reason() {
        assert!(matches!(parse(b"not json", Format::Auto), Err(InputError::NotJson(_))));
        assert!(matches!(parse(br#"{"a":1}"#, Format::Auto), Err(InputError::NotFhir(_))));
        assert!(matches!(parse(b"{\"x\":\"\xff\"}", Format::Auto), Err(InputError::NotUtf8 { offset: 6 })));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse(deep.as_bytes(), Format::Json), Err(InputError::TooDeep(_))));
        let no_resource = br#"{"resourceType":"Bundle","entry":[{"fullUrl":"urn:uuid:1"}]}"#;
        let err = parse(no_resource, Format::Auto).unwrap_err();
        assert_eq!(err.to_string(), "entry[0]: entry has no resource");
    }
}
