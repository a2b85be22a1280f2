//! Records coded in a system the vocabulary has never seen, matched to a concept by their display.
//!
//! The vocabulary maps a question's words to the codes Synthea writes (SNOMED CT conditions,
//! LOINC labs, RxNorm drugs). Other producers code the same things differently: US Core bundles
//! code conditions in ICD-10-CM (`I10` "Essential (primary) hypertension"), report eGFR under
//! the CKD-EPI 2021 LOINC (`98979-8`) or prescribe another RxNorm product of the same drug. A
//! question about "hypertension" would find none of them by code, and the computed facts would
//! say the record has none.
//!
//! So a record whose codes are all unknown to the vocabulary is read the way a question is: the
//! words of its code's display (or text) go through the same vocabulary, and the concepts found
//! at the first matching phrase are what the record is about. The first phrase, because clinical
//! displays put the thing measured or diagnosed first and qualify it after ("Hemoglobin
//! A1c/Hemoglobin.total in Blood" is an A1c, not a hemoglobin; "losartan potassium 50 MG Oral
//! Tablet" is losartan, not potassium). Records whose code the vocabulary knows keep being
//! matched by code alone, so data the vocabulary was built from is unaffected.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::lookup::{Field, Found};
use super::question::{words, AskedConcept, Vocabulary};
use super::{IndexError, RecordIndex};
use crate::fhir::Record;

/// At most this many full-text candidates are checked per concept.
const CANDIDATES: usize = 1_000;

/// Records of `patient` with codes unknown to the vocabulary whose display names `concept`.
pub fn records(index: &RecordIndex, patient: &str, concept: &AskedConcept) -> Result<Vec<Found>, IndexError> {
    if concept.codes.is_empty() || concept.types.is_empty() {
        return Ok(Vec::new());
    }
    let vocab = Vocabulary::embedded();
    let query = query(vocab, &concept.name);
    if query.is_empty() {
        return Ok(Vec::new());
    }
    // Reports are read through their results and their text (a scanned report's transcript is
    // shown as an excerpt around what was asked), not matched as a whole by their panel's name.
    let types: Vec<String> = concept.types.iter().filter(|t| *t != "DiagnosticReport").cloned().collect();
    if types.is_empty() {
        return Ok(Vec::new());
    }
    let clauses = index.clauses().any_of(Field::Type, &types).text(&query);
    let found = index.lookup(patient, clauses, CANDIDATES)?;
    Ok(found
        .into_iter()
        .filter(|f| is_foreign(&f.record) && names(vocab, &f.record, &concept.name))
        .collect())
}

/// A full-text query for the concept's terms, each a phrase: a record it names holds one of them
/// in its rendering (the index stems words, so plurals meet singulars).
fn query(vocab: &Vocabulary, name: &str) -> String {
    let mut phrases: Vec<String> = (0..vocab.len())
        .map(|i| vocab.concept(i))
        .filter(|c| c.name == name)
        .flat_map(|c| c.terms.iter().map(|t| words(t).join(" ")))
        .filter(|t| t.len() >= 3 && t.chars().all(|c| c.is_alphanumeric() || c == ' ' || c == '-'))
        .map(|t| format!("\"{t}\""))
        .collect();
    phrases.sort();
    phrases.dedup();
    phrases.join(" ")
}

/// Every code the vocabulary maps to a concept.
fn known_codes() -> &'static HashSet<String> {
    static KNOWN: OnceLock<HashSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let vocab = Vocabulary::embedded();
        (0..vocab.len()).flat_map(|i| vocab.concept(i).codes.iter().cloned()).collect()
    })
}

/// The record has a main code, and none of its codes is one the vocabulary knows. A code given
/// as text alone (`{"text": "Hemoglobin A1c"}`, as hand-written and converted data often has)
/// is such a code: it has no coding the vocabulary could know.
fn is_foreign(r: &Record) -> bool {
    let known = known_codes();
    let named = |c: &crate::fhir::concept::Concept| {
        !c.codings.is_empty() || c.text.as_deref().is_some_and(|t| !t.trim().is_empty())
    };
    r.code.as_ref().is_some_and(named) && !r.all_codes().any(|c| known.contains(c))
}

/// Whether the first vocabulary phrase of the record's display (or text) names the concept.
fn names(vocab: &Vocabulary, r: &Record, name: &str) -> bool {
    let Some(code) = &r.code else { return false };
    code.text.iter().chain(code.codings.iter().filter_map(|c| c.display.as_ref())).any(|label| {
        let ws = words(label);
        let found = vocab.find(&ws);
        let Some(first) = found.first() else { return false };
        found
            .iter()
            .take_while(|m| m.start == first.start)
            .flat_map(|m| m.concepts.iter())
            .any(|&i| vocab.concept(i).name == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::concept::{Coding, Concept};
    use crate::fhir::ResourceRef;

    fn record(system: &str, code: &str, display: &str) -> Record {
        let coding = Coding {
            system: Some(system.to_owned()),
            code: code.to_owned(),
            display: Some(display.to_owned()),
        };
        Record {
            code: Some(Concept { text: None, codings: vec![coding] }),
            ..Record::empty(ResourceRef::parse("Condition/c1").unwrap())
        }
    }

    fn about(display: &str, name: &str) -> bool {
        names(Vocabulary::embedded(), &record("x", "x", display), name)
    }

    #[test]
    fn a_display_names_what_it_starts_with() {
        assert!(about("Essential (primary) hypertension", "hypertension"));
        assert!(about("Type 2 diabetes mellitus without complications", "diabetes"));
        assert!(about("Chronic kidney disease, stage 3b", "chronic kidney disease"));
        assert!(about(
            "Glomerular filtration rate [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based \
             formula (CKD-EPI 2021)/1.73 sq M",
            "egfr"
        ));
        assert!(about("metformin hydrochloride 500 MG Oral Tablet", "metformin"));
        assert!(!about("Hemoglobin A1c/Hemoglobin.total in Blood", "hemoglobin"));
        assert!(!about("losartan potassium 50 MG Oral Tablet", "potassium"));
        assert!(!about("Glomerular filtration rate by Creatinine-based formula", "creatinine"));
    }

    #[test]
    fn only_codes_the_vocabulary_does_not_know_are_matched_by_display() {
        assert!(is_foreign(&record("http://hl7.org/fhir/sid/icd-10-cm", "I10", "Essential hypertension")));
        assert!(!is_foreign(&record("http://snomed.info/sct", "59621000", "Essential hypertension")));
        let mut no_code = record("x", "x", "x");
        no_code.code = None;
        assert!(!is_foreign(&no_code));
        let mut text_only = record("x", "x", "x");
        text_only.code = Some(Concept { text: Some("Hemoglobin A1c".into()), codings: Vec::new() });
        assert!(is_foreign(&text_only));
        assert!(names(Vocabulary::embedded(), &text_only, "hemoglobin a1c"));
        text_only.code = Some(Concept { text: Some("  ".into()), codings: Vec::new() });
        assert!(!is_foreign(&text_only));
    }
}
