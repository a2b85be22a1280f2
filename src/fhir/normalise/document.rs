//! DiagnosticReport, DocumentReference and Media: reports and notes. The note text itself is
//! decoded in `attachment.rs` and set on the record by the caller.

use super::{join_labels, Parts, Source};
use crate::fhir::record::Record;

pub fn report(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    let mut detail = String::new();
    let results: Vec<String> = src
        .obj()
        .get("result")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("display").and_then(|d| d.as_str()).map(str::to_owned))
        .collect();
    let count = src.obj().get("result").and_then(|r| r.as_array()).map_or(0, Vec::len);
    if !results.is_empty() {
        detail.push_str(&format!(": {}", join_labels(&results, 6)));
    } else if count > 0 {
        detail.push_str(&format!(" ({count} results)"));
    }
    if let Some(c) = src.str("conclusion") {
        detail.push_str(&format!("; conclusion: {c}"));
    }
    note_excerpt(rec, &mut detail);
    Parts { label: rec.code.as_ref().map(|c| c.label()).unwrap_or_default(), detail }
}

pub fn document(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("type");
    let mut label = rec.code.as_ref().map(|c| c.label()).unwrap_or_default();
    if let Some(d) = src.str("description") {
        label = if label.is_empty() { d.to_owned() } else { format!("{label} ({d})") };
    }
    let mut detail = String::new();
    note_excerpt(rec, &mut detail);
    Parts { label, detail }
}

/// The first words of the note, so a one-line rendering says what the note is about.
fn note_excerpt(rec: &Record, detail: &mut String) {
    if let Some(note) = &rec.note {
        let words: Vec<&str> = note.split_whitespace().take(24).collect();
        if !words.is_empty() {
            detail.push_str(&format!(": {}", words.join(" ")));
            if note.split_whitespace().nth(24).is_some() {
                detail.push_str(" ...");
            }
        }
    }
}
