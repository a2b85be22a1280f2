//! Observation: value, components (blood pressure), reference range and interpretation.

use super::{Parts, Source};
use crate::fhir::record::Record;
use crate::fhir::value::{interpretation_word, Component, ReferenceRange, Value};

pub fn normalise(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    rec.value = read_value(src, src.obj(), "");
    rec.components = components(src);
    rec.reference_range = src.at("referenceRange").and_then(ReferenceRange::from_json);
    rec.interpretation = src.concepts("interpretation").iter().map(interpretation_word).collect();
    let label = rec.code.as_ref().map(|c| c.label()).unwrap_or_default();
    Parts { label, detail: detail(rec) }
}

fn read_value(
    src: &mut Source<'_>,
    obj: &serde_json::Map<String, serde_json::Value>,
    prefix: &str,
) -> Option<Value> {
    match Value::from_parent(obj) {
        Ok(v) => v,
        Err(key) => {
            src.issues.push(format!("{prefix}{key}: unreadable value"));
            None
        }
    }
}

fn components(src: &mut Source<'_>) -> Vec<Component> {
    let Some(list) = src.obj().get("component").and_then(|c| c.as_array()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let Some(obj) = c.as_object() else { continue };
        let Some(code) = obj.get("code").and_then(crate::fhir::concept::Concept::from_json) else {
            src.issues.push(format!("component[{i}].code: missing"));
            continue;
        };
        let value = read_value(src, obj, &format!("component[{i}]."));
        out.push(Component { code, value });
    }
    out
}

fn detail(rec: &Record) -> String {
    let mut d = String::new();
    if let Some(v) = &rec.value {
        d.push_str(&format!(" = {v}"));
    }
    let parts: Vec<String> = rec
        .components
        .iter()
        .filter_map(|c| c.value.as_ref().map(|v| format!("{} = {v}", c.code.label())))
        .collect();
    if !parts.is_empty() {
        d.push_str(": ");
        d.push_str(&parts.join("; "));
    }
    if let Some(r) = &rec.reference_range {
        d.push_str(&format!(" (ref {r})"));
    }
    for word in &rec.interpretation {
        d.push_str(&format!(" [{word}]"));
    }
    d
}
