//! The patient header: demographics, allergies, active medications and active problems. Always
//! first in a context, capped at a share of the budget.

use super::{ContextItem, ItemKind, Section};
use crate::fhir::date::FhirDate;
use crate::fhir::Record;
use crate::retrieval::lookup::{Field, Found};
use crate::retrieval::{IndexError, RecordIndex};
use crate::tokens::{context_line, TokenCounter};

const MAX_LIST: usize = 200;

/// Header items in priority order (what is cut first comes last).
pub fn items(
    index: &RecordIndex,
    patient: &str,
    counter: &dyn TokenCounter,
    today: i64,
) -> Result<Vec<(ContextItem, Record)>, IndexError> {
    let mut out = Vec::new();
    let demo = index.lookup(patient, index.clauses().any_of(Field::Type, &["Patient"]), 1)?;
    if let Some(p) = demo.first() {
        out.push(item(counter, &p.record, format!("{}{}", p.record.text, age(&p.record, today))));
    }
    for f in sorted(index.lookup(
        patient,
        index.clauses().any_of(Field::Type, &["AllergyIntolerance"]),
        MAX_LIST,
    )?) {
        if !matches!(f.record.status.as_deref(), Some("inactive" | "resolved" | "entered-in-error")) {
            out.push(item(counter, &f.record, format!("Allergy: {}", f.record.text)));
        }
    }
    let meds = index.clauses().any_of(Field::Type, &["MedicationRequest", "MedicationStatement"]);
    let meds = index.lookup(patient, meds.any_of(Field::Status, &["active"]), MAX_LIST)?;
    for f in latest_of_each(sorted(meds)) {
        out.push(item(counter, &f.record, format!("Active medication: {}", f.record.text)));
    }
    let problems = index
        .clauses()
        .any_of(Field::Type, &["Condition"])
        .any_of(Field::Status, &["active", "recurrence", "relapse"]);
    let mut problems = sorted(index.lookup(patient, problems, MAX_LIST)?);
    // Disorders before findings and situations (employment, stress...), which Synthea also codes.
    problems.sort_by_key(|f| is_finding(&f.record));
    for f in problems {
        out.push(item(counter, &f.record, format!("Active problem: {}", f.record.text)));
    }
    Ok(out)
}

/// The latest of the records that render alike but for their date. Synthea leaves a drug's
/// orders active year after year: one patient had 47 active orders of 16 drugs, and the
/// header's room held 10 lines, three of them the same sertraline order.
fn latest_of_each(found: Vec<Found>) -> Vec<Found> {
    let mut seen = std::collections::HashSet::new();
    found.into_iter().filter(|f| seen.insert(undated(&f.record.text).to_owned())).collect()
}

/// `2026-06-27 MedicationRequest Sertraline ...` -> `MedicationRequest Sertraline ...`.
fn undated(text: &str) -> &str {
    match text.split_once(' ') {
        Some((first, rest)) if first.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => text,
    }
}

fn sorted(mut found: Vec<Found>) -> Vec<Found> {
    found.sort_by_key(|f| std::cmp::Reverse(f.record.date.map(|d| d.timestamp())));
    found
}

fn is_finding(r: &Record) -> bool {
    r.text.ends_with("(finding) [active]") || r.text.contains("(situation)") || r.text.contains("(finding)")
}

/// The item, and the record it shows (for citations).
fn item(counter: &dyn TokenCounter, r: &Record, line: String) -> (ContextItem, Record) {
    let text = format!("[{}] {line}", r.rref);
    let item = ContextItem {
        rref: r.rref.to_string(),
        kind: ItemKind::Header,
        tokens: counter.count(&context_line(&text)),
        text,
        refs: Vec::new(),
        section: Section::Patient,
        ts: None,
        rank: 0,
    };
    (item, r.clone())
}

/// `, age 54` (or the age at death).
fn age(patient: &Record, today: i64) -> String {
    let Some(born) = patient.date else { return String::new() };
    let years = born.years_until(&FhirDate::from_timestamp(today));
    if patient.text.contains(", died ") {
        return String::new();
    }
    format!(", age {years}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::ResourceRef;

    fn found(id: &str, text: &str) -> Found {
        let rref = ResourceRef::parse(&format!("MedicationRequest/{id}")).unwrap();
        let record = Record { status: Some("active".into()), text: text.into(), ..Record::empty(rref) };
        Found { record, tokens: None, score: 0.0 }
    }

    #[test]
    fn an_order_renewed_year_after_year_is_one_line_citing_the_latest() {
        let latest = latest_of_each(vec![
            found("a3", "2026-06-27 MedicationRequest Sertraline 100 MG [active]"),
            found("b", "2026-06-27 MedicationRequest Naproxen 220 MG [active]"),
            found("a2", "2025-06-20 MedicationRequest Sertraline 100 MG [active]"),
            found("a1", "1994-09-09 MedicationRequest Sertraline 100 MG [active]"),
        ]);
        let ids: Vec<String> = latest.iter().map(|f| f.record.rref.to_string()).collect();
        assert_eq!(ids, ["MedicationRequest/a3", "MedicationRequest/b"]);
    }
}
