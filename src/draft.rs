//! Visit-summary drafts: the question the answer pipeline is asked for one encounter, and the
//! FHIR `DocumentReference` a clinician's edited draft is exported as. Nothing here writes to a
//! FHIR server; the export is handed back to the caller.

use base64::Engine;
use serde_json::{json, Value};

use crate::fhir::date::FhirDate;
use crate::fhir::ResourceRef;

/// Longest draft text exported, characters.
pub const MAX_TEXT: usize = 20_000;
/// Most records a draft may cite.
pub const MAX_RELATED: usize = 200;

/// The question that drafts a summary of one visit. It names the visit by its date and reference
/// only: record text (the encounter's display) never enters the question, which the model reads
/// as the user's words.
pub fn question(encounter: &ResourceRef, date: &FhirDate) -> String {
    format!(
        "Draft a short summary of the visit on {} ({encounter}): the reason for the visit, findings and \
         results, medications started or stopped, and follow-up.",
        date.day_string()
    )
}

/// A draft, as checked: the patient's, about one of their encounters, citing their records.
pub struct Draft<'a> {
    pub patient: &'a str,
    pub encounter: &'a ResourceRef,
    pub text: &'a str,
    pub related: &'a [ResourceRef],
    /// When it was exported (UTC seconds).
    pub now: i64,
}

/// The draft as a FHIR R4 `DocumentReference`: status current, docStatus preliminary, the text
/// as a base64 plain-text attachment, the encounter and the cited records in `context`.
pub fn document_reference(d: &Draft<'_>) -> Result<Value, getrandom::Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    let data = base64::engine::general_purpose::STANDARD.encode(d.text.as_bytes());
    let related: Vec<Value> = d.related.iter().map(|r| json!({ "reference": r.to_string() })).collect();
    Ok(json!({
        "resourceType": "DocumentReference",
        "id": hex::encode(id),
        "status": "current",
        "docStatus": "preliminary",
        "type": {
            "coding": [{ "system": "http://loinc.org", "code": "11506-3", "display": "Progress note" }],
            "text": "Visit summary (draft)"
        },
        "subject": { "reference": format!("Patient/{}", d.patient) },
        "date": FhirDate::instant_string(d.now),
        "description": "Draft visit summary written with ehrqa from cited records. Not for clinical use.",
        "content": [{
            "attachment": {
                "contentType": "text/plain; charset=utf-8",
                "data": data,
                "title": "Visit summary (draft)",
                "creation": FhirDate::instant_string(d.now)
            }
        }],
        "context": {
            "encounter": [{ "reference": d.encounter.to_string() }],
            "related": related
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_exports_as_a_preliminary_document_with_its_citations() {
        let enc = ResourceRef::new("Encounter", "e1").unwrap();
        let related = [ResourceRef::new("Observation", "o1").unwrap()];
        let d =
            Draft { patient: "p1", encounter: &enc, text: "Seen for cough [1].", related: &related, now: 0 };
        let doc = document_reference(&d).unwrap();
        assert_eq!(doc["docStatus"], "preliminary");
        assert_eq!(doc["status"], "current");
        assert_eq!(doc["subject"]["reference"], "Patient/p1");
        assert_eq!(doc["context"]["related"][0]["reference"], "Observation/o1");
        let data = doc["content"][0]["attachment"]["data"].as_str().unwrap();
        let text = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
        assert_eq!(text, b"Seen for cough [1].");
        assert_eq!(doc["id"].as_str().unwrap().len(), 32);
    }

    #[test]
    fn the_question_names_the_visit_by_date_and_reference_only() {
        let enc = ResourceRef::new("Encounter", "e1").unwrap();
        let q = question(&enc, &FhirDate::parse("2019-03-02T10:00:00Z").unwrap());
        assert!(q.contains("2019-03-02") && q.contains("Encounter/e1"), "{q}");
    }
}
