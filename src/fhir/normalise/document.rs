//! DiagnosticReport, DocumentReference and Media: reports and notes. The note text itself is
//! decoded in `attachment.rs` and set on the record by the caller.

use super::{join_labels, Ctx, Parts, Source};
use crate::fhir::record::Record;

pub fn report(src: &mut Source<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    let mut detail = String::new();
    let list: &[serde_json::Value] =
        src.obj().get("result").and_then(|r| r.as_array()).map_or(&[], Vec::as_slice);
    // Results named by their `display`, or (US Core bundles reference them by `urn:uuid` alone) by
    // the code of the Observation when it is in the same input. References are resolved in order
    // of appearance, one per element that has one.
    let mut targets = ctx.links.iter().filter(|l| l.path == "result").map(|l| l.target.as_ref());
    let results: Vec<String> = list
        .iter()
        .filter_map(|r| {
            let target = r.get("reference").and_then(|v| v.as_str()).and_then(|_| targets.next().flatten());
            r.get("display").and_then(|d| d.as_str()).map(str::to_owned).or_else(|| ctx.label_of(target?))
        })
        .collect();
    if !results.is_empty() {
        detail.push_str(&format!(": {}", join_labels(&results, 6)));
    } else if list.len() == 1 {
        detail.push_str(" (1 result)");
    } else if !list.is_empty() {
        detail.push_str(&format!(" ({} results)", list.len()));
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
