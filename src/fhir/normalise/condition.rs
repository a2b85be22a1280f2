//! Condition and AllergyIntolerance: problems with a clinical status and an onset.

use super::{join_labels, Parts, Source};
use crate::fhir::date::FhirDate;
use crate::fhir::record::Record;

pub fn condition(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    let mut detail = String::new();
    let abated =
        src.str("abatementDateTime").or_else(|| src.str("abatementPeriod.start")).and_then(FhirDate::parse);
    if let Some(d) = abated {
        detail.push_str(&format!(" (resolved {d})"));
    }
    if let Some(v) = src.concept("verificationStatus").and_then(|c| c.codings.first().cloned()) {
        if v.code != "confirmed" {
            detail.push_str(&format!(" ({})", v.code));
        }
    }
    Parts { label: rec.code.as_ref().map(|c| c.label()).unwrap_or_default(), detail }
}

pub fn allergy(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    let mut detail = String::new();
    let kinds: Vec<String> = src
        .obj()
        .get("category")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    if !kinds.is_empty() {
        detail.push_str(&format!(" ({})", kinds.join(", ")));
    }
    if let Some(c) = src.str("criticality") {
        detail.push_str(&format!(" criticality {c}"));
    }
    let reactions: Vec<String> =
        src.obj()
            .get("reaction")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
            .flat_map(|r| {
                crate::fhir::concept::Concept::list_from_json(r.get("manifestation")).into_iter().map(|c| {
                    match r.get("severity").and_then(|s| s.as_str()) {
                        Some(sev) => format!("{} ({sev})", c.label()),
                        None => c.label(),
                    }
                })
            })
            .collect();
    if !reactions.is_empty() {
        detail.push_str(&format!("; reaction: {}", join_labels(&reactions, 4)));
    }
    Parts { label: rec.code.as_ref().map(|c| c.label()).unwrap_or_default(), detail }
}
