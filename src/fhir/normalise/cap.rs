//! Caps on the text a record keeps, so that one huge resource cannot cost gigabytes downstream
//! (token counting, the record's JSON, the search index, contexts).
//!
//! The raw resource is stored whole either way and stays the source of truth; what a cap cuts is
//! marked in the text and listed in `Record::issues`, so it is counted under "normalisation
//! issues" and never lost silently.

use crate::fhir::record::Record;
use crate::fhir::value::Value;

/// The one-line rendering, and a text value (`valueString`): far more than any real one needs
/// (they are well under 1 KiB), yet only about 16K tokens, an eighth of the largest context.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Decoded note text: hundreds of pages of notes; contexts take excerpts of it.
pub const MAX_NOTE_BYTES: usize = 1024 * 1024;

/// Appended where a rendering was cut.
pub const TEXT_MARKER: &str = " [truncated]";
/// Appended where a note was cut.
pub const NOTE_MARKER: &str = "\n[note truncated]";

/// Cuts the record's rendering, text values and note to their caps, noting each cut in `issues`.
pub fn apply(rec: &mut Record) {
    if let Some(len) = truncate(&mut rec.text, MAX_TEXT_BYTES, TEXT_MARKER) {
        rec.issues.push(format!("text: rendering of {len} bytes truncated to {MAX_TEXT_BYTES}"));
    }
    let values = rec.value.iter_mut().chain(rec.components.iter_mut().filter_map(|c| c.value.as_mut()));
    let cut: Vec<usize> = values.filter_map(cap_text_value).collect();
    for len in cut {
        rec.issues.push(format!("value: text value of {len} bytes truncated to {MAX_TEXT_BYTES}"));
    }
    if let Some(len) = rec.note.as_mut().and_then(|n| truncate(n, MAX_NOTE_BYTES, NOTE_MARKER)) {
        rec.issues.push(format!("note: {len} bytes of note text truncated to {MAX_NOTE_BYTES}"));
    }
}

/// A text value cut to `MAX_TEXT_BYTES`; the length it had when it was cut.
fn cap_text_value(value: &mut Value) -> Option<usize> {
    match value {
        Value::Text { text } => truncate(text, MAX_TEXT_BYTES, TEXT_MARKER),
        _ => None,
    }
}

/// Cuts `s` to at most `max` bytes at a character boundary and appends `marker`; the length it
/// had when it was cut. The spare capacity is given back, since the cut text may be megabytes.
fn truncate(s: &mut String, max: usize, marker: &str) -> Option<usize> {
    let len = s.len();
    if len <= max {
        return None;
    }
    let cut = (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
    s.truncate(cut);
    s.push_str(marker);
    s.shrink_to_fit();
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary_with_a_marker() {
        let mut s = "aé".repeat(3); // "aéaéaé": 9 bytes, "é" is 2
        assert_eq!(truncate(&mut s, 5, "|"), Some(9));
        assert_eq!(s, "aéa|"); // byte 5 is inside the second "é"
        let mut short = "short".to_owned();
        assert_eq!(truncate(&mut short, 5, "|"), None);
        assert_eq!(short, "short");
    }
}
