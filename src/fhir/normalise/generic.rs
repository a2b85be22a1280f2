//! Any other resource type: stored raw, named by whatever identifies it, indexed by its text.

use serde_json::Value as Json;

use super::{Parts, Source};
use crate::fhir::concept::Concept;
use crate::fhir::record::Record;

pub fn normalise(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    for key in ["code", "suppliedItem.itemCodeableConcept", "vaccineCode", "specialty", "type"] {
        if let Some(c) = src.at(key).and_then(Concept::from_json) {
            rec.code = Some(c);
            break;
        }
    }
    let mut label = rec.code.as_ref().map(|c| c.label()).unwrap_or_default();
    let name = src
        .str("name")
        .map(str::to_owned)
        .or_else(|| super::patient::display_name(src.obj()))
        .or_else(|| src.str("title").map(str::to_owned))
        .or_else(|| src.str("description").map(str::to_owned));
    if let Some(n) = name {
        label = if label.is_empty() { n } else { format!("{n} ({label})") };
    }
    if label.is_empty() {
        label = narrative(src.obj().get("text")).unwrap_or_default();
    }
    Parts { label, detail: String::new() }
}

/// The narrative's visible text, tags stripped, as a last resort.
fn narrative(text: Option<&Json>) -> Option<String> {
    let div = text?.get("div")?.as_str()?;
    let mut out = String::new();
    let mut in_tag = false;
    for ch in div.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let words: Vec<&str> = out.split_whitespace().take(40).collect();
    (!words.is_empty()).then(|| words.join(" "))
}
