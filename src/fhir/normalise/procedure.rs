//! Procedure, Immunization, Device and ImagingStudy: things done to or placed in the patient.

use serde_json::Value as Json;

use super::{join_labels, Ctx, Parts, Source};
use crate::fhir::concept::Concept;
use crate::fhir::record::Record;

fn label(rec: &Record) -> String {
    rec.code.as_ref().map(|c| c.label()).unwrap_or_default()
}

pub fn procedure(src: &mut Source<'_>, ctx: &Ctx<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("code");
    let mut reasons = src.labels("reasonCode");
    if reasons.is_empty() {
        reasons.extend(ctx.ref_label(src, "reasonReference"));
    }
    let mut detail = String::new();
    if !reasons.is_empty() {
        detail.push_str(&format!(" for {}", join_labels(&reasons, 3)));
    }
    Parts { label: label(rec), detail }
}

pub fn immunization(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("vaccineCode");
    let mut detail = String::new();
    if let Some(dose) = src.at("protocolApplied.doseNumberPositiveInt").and_then(Json::as_i64) {
        detail.push_str(&format!(" (dose {dose})"));
    }
    Parts { label: label(rec), detail }
}

pub fn device(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("type");
    let mut detail = String::new();
    if let Some(udi) = src.str("udiCarrier.carrierHRF").or_else(|| src.str("udiCarrier.deviceIdentifier")) {
        detail.push_str(&format!(" (UDI {udi})"));
    }
    Parts { label: label(rec), detail }
}

pub fn imaging_study(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("procedureCode");
    let series = src.obj().get("series").and_then(Json::as_array);
    let mut seen = Vec::new();
    for s in series.into_iter().flatten() {
        let modality = s.get("modality").and_then(Concept::from_json).map(|c| c.label());
        let site = s.get("bodySite").and_then(Concept::from_json).map(|c| c.label());
        let desc = match (modality, site) {
            (Some(m), Some(b)) => format!("{m} of {b}"),
            (m, b) => m.or(b).unwrap_or_default(),
        };
        if !desc.is_empty() && !seen.contains(&desc) {
            seen.push(desc);
        }
    }
    let mut detail = String::new();
    if !seen.is_empty() {
        detail.push_str(&format!(": {}", join_labels(&seen, 3)));
    }
    if let Some(n) = src.obj().get("numberOfInstances").and_then(Json::as_i64) {
        detail.push_str(&format!(" ({n} instances)"));
    }
    Parts { label: label(rec), detail }
}
