//! Medications: requests, statements, administrations and dispenses, named by their drug whether
//! it is coded inline or held in a referenced Medication resource.

use serde_json::Value as Json;

use super::{join_labels, Ctx, Parts, Source};
use crate::fhir::concept::Concept;
use crate::fhir::record::Record;
use crate::fhir::value::{format_number, Quantity};

pub fn medication(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    let mut detail = String::new();
    if let Some(form) = src.concept("form") {
        detail.push_str(&format!(" ({})", form.label()));
    }
    Parts { label: rec.code.as_ref().map(|c| c.label()).unwrap_or_default(), detail }
}

pub fn usage(src: &mut Source<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Parts {
    rec.code = drug(src, ctx);
    let label = rec
        .code
        .as_ref()
        .map(|c| c.label())
        .or_else(|| ctx.ref_label(src, "medicationReference"))
        .unwrap_or_default();
    let mut detail = String::new();
    if let Some(d) = dosage(src) {
        detail.push_str(&format!(" ({d})"));
    }
    let mut reasons = src.labels("reasonCode");
    if reasons.is_empty() {
        reasons.extend(ctx.ref_label(src, "reasonReference"));
    }
    if !reasons.is_empty() {
        detail.push_str(&format!(" for {}", join_labels(&reasons, 3)));
    }
    rec.reasons = reason_concepts(src, ctx);
    Parts { label, detail }
}

/// The concepts of the reasons the rendering names after "for": `reasonCode`, else the
/// referenced Condition's code, else the reference's `display` as text.
fn reason_concepts(src: &Source<'_>, ctx: &Ctx<'_>) -> Vec<Concept> {
    let coded: Vec<Concept> =
        src.concepts("reasonCode").into_iter().filter(|c| !c.label().is_empty()).collect();
    if !coded.is_empty() {
        return coded;
    }
    let display =
        src.str("reasonReference.display").map(|d| Concept { text: Some(d.to_owned()), codings: Vec::new() });
    let target = ctx.target("reasonReference").and_then(|t| ctx.concept_of(t));
    match (display, target) {
        // The rendering names the display; the target adds its codes.
        (Some(d), Some(t)) => vec![Concept { text: d.text, codings: t.codings }],
        (d, t) => d.or(t).into_iter().collect(),
    }
}

/// The drug concept: inline, or the code of the referenced Medication in the same input.
fn drug(src: &mut Source<'_>, ctx: &Ctx<'_>) -> Option<Concept> {
    if let Some(c) = src.concept("medicationCodeableConcept") {
        return Some(c);
    }
    let target = ctx.target("medicationReference")?;
    ctx.index.get(target)?.get("code").and_then(Concept::from_json)
}

/// Dosage text: the prescriber's text when given, else dose and timing.
fn dosage(src: &Source<'_>) -> Option<String> {
    let d = src.at("dosageInstruction").or_else(|| src.at("dosage")).filter(|d| d.is_object())?;
    if let Some(t) = d.get("text").and_then(Json::as_str) {
        return Some(t.to_owned());
    }
    let mut parts = Vec::new();
    let dose =
        d.pointer("/doseAndRate/0/doseQuantity").or_else(|| d.get("dose")).and_then(Quantity::from_json);
    if let Some(q) = dose {
        parts.push(format!("dose {q}"));
    }
    if let Some(r) = d.pointer("/timing/repeat") {
        parts.extend(timing(r));
    }
    if d.get("asNeededBoolean").and_then(Json::as_bool) == Some(true) {
        parts.push("as needed".to_owned());
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn timing(r: &Json) -> Option<String> {
    let freq = r.get("frequency").and_then(Json::as_f64)?;
    let period = r.get("period").and_then(Json::as_f64).unwrap_or(1.0);
    let unit = match r.get("periodUnit").and_then(Json::as_str).unwrap_or("d") {
        "s" => "second",
        "min" => "minute",
        "h" => "hour",
        "d" => "day",
        "wk" => "week",
        "mo" => "month",
        "a" => "year",
        other => other,
    };
    Some(if period == 1.0 {
        format!("{}x per {unit}", format_number(freq))
    } else {
        format!("{}x per {} {unit}s", format_number(freq), format_number(period))
    })
}
