//! Patient: the demographics a header needs.

use serde_json::Value as Json;

use super::{Parts, Source};
use crate::fhir::date::FhirDate;
use crate::fhir::record::Record;

/// What the patients table and the context header need about a patient.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Demographics {
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub deceased: Option<String>,
}

impl Demographics {
    pub fn from_json(resource: &Json) -> Option<Self> {
        let obj = resource.as_object()?;
        let s = |k: &str| obj.get(k).and_then(Json::as_str).map(str::to_owned);
        let deceased = s("deceasedDateTime").or_else(|| {
            (obj.get("deceasedBoolean").and_then(Json::as_bool) == Some(true)).then(|| "yes".to_owned())
        });
        Some(Self { name: display_name(obj), birth_date: s("birthDate"), gender: s("gender"), deceased })
    }
}

/// The display name of a Patient resource (official name first).
pub fn display_name(obj: &serde_json::Map<String, Json>) -> Option<String> {
    let names = obj.get("name")?.as_array()?;
    let name = names
        .iter()
        .find(|n| n.get("use").and_then(Json::as_str) == Some("official"))
        .or_else(|| names.first())?;
    if let Some(t) = name.get("text").and_then(Json::as_str) {
        return Some(t.to_owned());
    }
    let mut parts: Vec<&str> =
        name.get("given").and_then(Json::as_array).into_iter().flatten().filter_map(Json::as_str).collect();
    parts.extend(name.get("family").and_then(Json::as_str));
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A person's name with its prefixes (`Dr. Sarah Smith`), as a practitioner is addressed.
pub fn person_name(obj: &serde_json::Map<String, Json>) -> Option<String> {
    let name = display_name(obj)?;
    let names = obj.get("name").and_then(Json::as_array);
    let official = names.and_then(|ns| {
        ns.iter().find(|n| n.get("use").and_then(Json::as_str) == Some("official")).or_else(|| ns.first())
    });
    let prefix: Vec<&str> = official
        .and_then(|n| n.get("prefix"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .collect();
    if prefix.is_empty() || official.and_then(|n| n.get("text")).is_some() {
        Some(name)
    } else {
        Some(format!("{} {name}", prefix.join(" ")))
    }
}

pub fn normalise(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    let label = display_name(src.obj()).unwrap_or_else(|| "(no name)".to_owned());
    let mut detail = String::new();
    if let Some(g) = src.str("gender") {
        detail.push_str(&format!(", {g}"));
    }
    if let Some(b) = rec.date {
        detail.push_str(&format!(", born {b}"));
    }
    if let Some(d) = src.str("deceasedDateTime").and_then(FhirDate::parse) {
        detail.push_str(&format!(", died {d}"));
    } else if src.obj().get("deceasedBoolean").and_then(Json::as_bool) == Some(true) {
        detail.push_str(", deceased");
    }
    if let Some(city) = src.str("address.city") {
        let state = src.str("address.state").map(|s| format!(", {s}")).unwrap_or_default();
        detail.push_str(&format!("; lives in {city}{state}"));
    }
    Parts { label, detail }
}
