//! Required elements a producer left out, noted as issues: the resource is kept and rendered as
//! received, and the ingest summary counts the problem.
//!
//! Real extracts drop elements that FHIR or the profile the resource claims requires
//! (carebundle's `inject_defects` does it on purpose). Neither stops a record from being useful,
//! but an answer citing it should be traceable to a record known to be incomplete. Optional
//! elements (`text`, `encounter`) are not checked: their absence is no defect.

use super::Source;

/// US Core profiles, which every clinical resource here must name in `meta.profile` to be held to
/// them.
const US_CORE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/";

/// Notes the missing required elements of a resource of type `rtype` in `src.issues`.
pub fn check(src: &mut Source<'_>, rtype: &str) {
    if status_required(rtype) && src.str("status").is_none() {
        src.issues.push("status: missing, though FHIR requires it".to_owned());
    }
    if matches!(rtype, "Observation" | "Condition" | "DiagnosticReport")
        && claims_us_core(src)
        && src.concepts("category").is_empty()
    {
        src.issues.push("category: missing, though its US Core profile requires it".to_owned());
    }
}

/// Types whose `status` has cardinality 1..1 in FHIR R4.
fn status_required(rtype: &str) -> bool {
    matches!(
        rtype,
        "Observation"
            | "DiagnosticReport"
            | "Encounter"
            | "MedicationRequest"
            | "MedicationStatement"
            | "MedicationAdministration"
            | "MedicationDispense"
            | "Immunization"
            | "Procedure"
            | "CarePlan"
            | "DocumentReference"
            | "ImagingStudy"
            | "ServiceRequest"
    )
}

fn claims_us_core(src: &Source<'_>) -> bool {
    src.obj()
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(|p| p.as_array())
        .is_some_and(|p| p.iter().filter_map(|v| v.as_str()).any(|u| u.starts_with(US_CORE)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn issues(rtype: &str, v: serde_json::Value) -> Vec<String> {
        let obj = v.as_object().unwrap().clone();
        let mut src = Source::new(&obj);
        check(&mut src, rtype);
        src.issues
    }

    #[test]
    fn a_missing_required_status_or_us_core_category_is_an_issue() {
        let profile =
            json!({"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab"]});
        assert_eq!(issues("Observation", json!({"status": "final", "meta": profile.clone()})).len(), 1);
        assert_eq!(issues("Observation", json!({"meta": profile})).len(), 2);
        assert!(
            issues("Observation", json!({"status": "final"})).is_empty(),
            "no profile, no category needed"
        );
        assert!(issues("Condition", json!({})).is_empty(), "a Condition's status is optional");
        assert_eq!(issues("Encounter", json!({"class": {}}))[0], "status: missing, though FHIR requires it");
    }
}
