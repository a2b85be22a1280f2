//! Which element holds the clinically meaningful date, per resource type.
//!
//! The first path that holds a readable date wins; the fallbacks (recorded, issued, created) come
//! last because they say when something was written down, not when it happened.

pub fn paths(rtype: &str) -> &'static [&'static str] {
    match rtype {
        "Observation" | "DiagnosticReport" => {
            &["effectiveDateTime", "effectivePeriod.start", "effectiveInstant", "issued"]
        }
        "Condition" | "AllergyIntolerance" => &["onsetDateTime", "onsetPeriod.start", "recordedDate"],
        "MedicationRequest" => &["authoredOn", "dispenseRequest.validityPeriod.start"],
        "MedicationStatement" => &["effectiveDateTime", "effectivePeriod.start", "dateAsserted"],
        "MedicationAdministration" => &["effectiveDateTime", "effectivePeriod.start"],
        "MedicationDispense" => &["whenHandedOver", "whenPrepared"],
        "Procedure" => &["performedDateTime", "performedPeriod.start"],
        "Immunization" => &["occurrenceDateTime", "recorded"],
        "Encounter" | "CareTeam" | "EpisodeOfCare" | "Coverage" => &["period.start"],
        "DocumentReference" => &["context.period.start", "date"],
        "CarePlan" => &["period.start", "created"],
        "Goal" => &["startDate", "statusDate"],
        "Device" => &["manufactureDate"],
        "ImagingStudy" => &["started"],
        "Claim" | "ExplanationOfBenefit" => &["billablePeriod.start", "created"],
        "Patient" => &["birthDate"],
        "Media" => &["createdDateTime", "createdPeriod.start", "issued"],
        "Provenance" => &["recorded"],
        "SupplyDelivery" => &["occurrenceDateTime", "occurrencePeriod.start"],
        _ => &[
            "effectiveDateTime",
            "occurrenceDateTime",
            "performedDateTime",
            "authoredOn",
            "period.start",
            "date",
            "created",
            "issued",
            "recorded",
        ],
    }
}
