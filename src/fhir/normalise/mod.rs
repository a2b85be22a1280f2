//! One normalised [`Record`] per resource: date, status, codes, value, range, interpretation,
//! encounter, note text and a one-line rendering.
//!
//! `mod.rs` does what every type shares (date, status, encounter, the line's frame); one file per
//! family of resource types fills in the concept, the value and the detail of the line. Types
//! without a family get the generic treatment and are still indexed by their text.

pub mod cap;
mod care;
mod condition;
mod dates;
mod document;
mod encounter;
mod financial;
mod generic;
mod medication;
mod observation;
pub mod patient;
mod procedure;
mod quality;
mod source;

use serde_json::Value as Json;

use super::concept::Concept;
use super::record::Record;
use super::reference::ResourceRef;
use super::resolve::{InputIndex, RefLink};
pub use source::Source;

/// What a normaliser knows besides the resource itself: its resolved references and the other
/// resources of the same input (to name a referenced Medication or Condition).
pub struct Ctx<'a> {
    pub links: &'a [RefLink],
    pub index: &'a InputIndex<'a>,
}

impl Ctx<'_> {
    /// The resolved target of the first reference at `path`.
    pub fn target(&self, path: &str) -> Option<&ResourceRef> {
        self.links.iter().find(|l| l.path == path).and_then(|l| l.target.as_ref())
    }

    /// A human label for what the reference at `path` points to: its `display`, else the code or
    /// name of the target when it is in the same input.
    pub fn ref_label(&self, src: &Source<'_>, path: &str) -> Option<String> {
        if let Some(d) = src.str(&format!("{path}.display")) {
            return Some(d.to_owned());
        }
        self.label_of(self.target(path)?)
    }

    /// The name of the person the reference at `path` points to: its `display`, else the name
    /// (with its prefix, `Dr.`) of the Practitioner or other person it names in the same input.
    pub fn person(&self, src: &Source<'_>, path: &str) -> Option<String> {
        if let Some(d) = src.str(&format!("{path}.display")) {
            return Some(d.to_owned());
        }
        let target = self.index.get(self.target(path)?)?.as_object()?;
        patient::person_name(target)
    }

    /// The code (or name) of a resource of the same input.
    pub fn label_of(&self, rref: &ResourceRef) -> Option<String> {
        self.concept_of(rref)
            .map(|c| c.label())
            .or_else(|| self.index.get(rref)?.get("name").and_then(Json::as_str).map(str::to_owned))
    }

    /// The main concept (`code`, `vaccineCode` or `type`) of a resource of the same input.
    pub fn concept_of(&self, rref: &ResourceRef) -> Option<Concept> {
        let target = self.index.get(rref)?;
        ["code", "vaccineCode", "type"].iter().find_map(|k| target.get(*k).and_then(Concept::from_json))
    }
}

/// The label and the type-specific detail of a rendering.
#[derive(Default)]
pub struct Parts {
    pub label: String,
    pub detail: String,
}

/// Normalises one resource. Never fails: what cannot be read is listed in `Record::issues`.
pub fn normalise(
    resource: &Json,
    rref: &ResourceRef,
    patient: Option<String>,
    note: Option<String>,
    ctx: &Ctx<'_>,
) -> Record {
    let empty = serde_json::Map::new();
    let mut src = Source::new(resource.as_object().unwrap_or(&empty));
    let rtype = rref.rtype();
    let mut rec = Record {
        patient,
        date: src.first_date(dates::paths(rtype)),
        status: src.status(),
        categories: src.concepts("category"),
        encounter: encounter_of(ctx),
        note,
        ..Record::empty(rref.clone())
    };
    let parts = match rtype {
        "Observation" => observation::normalise(&mut src, &mut rec),
        "Condition" => condition::condition(&mut src, &mut rec),
        "AllergyIntolerance" => condition::allergy(&mut src, &mut rec),
        "MedicationRequest" | "MedicationStatement" | "MedicationAdministration" | "MedicationDispense" => {
            medication::usage(&mut src, ctx, &mut rec)
        }
        "Medication" => medication::medication(&mut src, &mut rec),
        "Encounter" => encounter::normalise(&mut src, ctx, &mut rec),
        "DiagnosticReport" => document::report(&mut src, ctx, &mut rec),
        "DocumentReference" | "Media" => document::document(&mut src, &mut rec),
        "CarePlan" => care::care_plan(&mut src, &mut rec),
        "CareTeam" => care::care_team(&mut src, &mut rec),
        "Goal" => care::goal(&mut src, &mut rec),
        "Procedure" => procedure::procedure(&mut src, ctx, &mut rec),
        "Immunization" => procedure::immunization(&mut src, &mut rec),
        "Device" => procedure::device(&mut src, &mut rec),
        "ImagingStudy" => procedure::imaging_study(&mut src, &mut rec),
        "Claim" | "ExplanationOfBenefit" => financial::normalise(&mut src, &mut rec),
        "Patient" => patient::normalise(&mut src, &mut rec),
        _ => generic::normalise(&mut src, &mut rec),
    };
    rec.text = render(&rec, parts);
    quality::check(&mut src, rtype);
    rec.issues = src.issues;
    cap::apply(&mut rec);
    rec
}

fn encounter_of(ctx: &Ctx<'_>) -> Option<ResourceRef> {
    ["encounter", "context", "context.encounter"]
        .iter()
        .filter_map(|p| ctx.target(p))
        .find(|r| r.rtype() == "Encounter")
        .cloned()
}

/// Statuses that are the normal end state of their type, or of types whose status is
/// administrative, add nothing to a rendering.
fn status_is_informative(rtype: &str, status: &str) -> bool {
    let administrative = matches!(
        rtype,
        "Claim"
            | "ExplanationOfBenefit"
            | "Coverage"
            | "Organization"
            | "Location"
            | "Practitioner"
            | "PractitionerRole"
            | "Provenance"
            | "Medication"
    );
    !administrative
        && !matches!(
            status,
            "final"
                | "completed"
                | "finished"
                | "current"
                | "available"
                | "amended"
                | "corrected"
                | "billable"
                | "generated"
        )
}

/// `2019-03-02 Observation Hemoglobin A1c/Hemoglobin.total in Blood = 6.2 % [high]`.
fn render(rec: &Record, parts: Parts) -> String {
    let mut line = String::new();
    if let Some(d) = rec.date.filter(|_| rec.rref.rtype() != "Patient") {
        line.push_str(&d.day_string());
        line.push(' ');
    }
    line.push_str(rec.rref.rtype());
    if !parts.label.is_empty() {
        line.push(' ');
        line.push_str(parts.label.trim());
    }
    line.push_str(&parts.detail);
    if let Some(s) = rec.status.as_deref().filter(|s| status_is_informative(rec.rref.rtype(), s)) {
        line.push_str(&format!(" [{s}]"));
    }
    collapse_whitespace(&line)
}

/// Without an intermediate list of words, which for a huge value costs several times its size.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `a, b, c` for a list of labels, at most `max` of them, with `+N more`.
pub(crate) fn join_labels(labels: &[String], max: usize) -> String {
    let mut out = labels.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if labels.len() > max {
        out.push_str(&format!(" +{} more", labels.len() - max));
    }
    out
}
