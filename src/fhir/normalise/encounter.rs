//! Encounter: class, type, reason and where.

use super::{join_labels, Ctx, Parts, Source};
use crate::fhir::date::FhirDate;
use crate::fhir::record::Record;

pub fn normalise(src: &mut Source<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Parts {
    let types = src.concepts("type");
    rec.code = types.first().cloned();
    let class = src.str("class.code").map(class_word);
    let label = match (class, rec.code.as_ref()) {
        (Some(c), Some(t)) => format!("{c}: {}", t.label()),
        (Some(c), None) => c.to_owned(),
        (None, Some(t)) => t.label(),
        (None, None) => String::new(),
    };
    let mut detail = String::new();
    // Kept as concepts too, for what a visit was for (`retrieval::visit`).
    rec.reasons = src.concepts("reasonCode").into_iter().filter(|c| !c.label().is_empty()).collect();
    let reasons = src.labels("reasonCode");
    if !reasons.is_empty() {
        detail.push_str(&format!(" for {}", join_labels(&reasons, 3)));
    }
    let end = src.str("period.end").and_then(FhirDate::parse);
    if let (Some(start), Some(end)) = (rec.date, end) {
        if end.day_string() != start.day_string() {
            detail.push_str(&format!(" until {end}"));
        }
    }
    rec.performer = ctx.person(src, "participant.individual");
    if let Some(who) = &rec.performer {
        detail.push_str(&format!(" with {who}"));
    }
    if let Some(p) = ctx.ref_label(src, "serviceProvider") {
        detail.push_str(&format!(" at {p}"));
    }
    Parts { label, detail }
}

fn class_word(code: &str) -> &str {
    match code {
        "AMB" => "ambulatory",
        "EMER" => "emergency",
        "IMP" | "ACUTE" => "inpatient",
        "NONAC" => "inpatient non-acute",
        "OBSENC" => "observation",
        "PRENC" => "pre-admission",
        "SS" => "short stay",
        "VR" => "virtual",
        "HH" => "home health",
        other => other,
    }
}
