//! Normalisation per resource type, asserted on the rendered lines and the record fields.

use ehrqa::fhir::value::Value;
use ehrqa::fhir::Record;

use crate::helpers::TestData;

async fn record(t: &TestData, rref: &str) -> Record {
    let (rt, id) = rref.split_once('/').unwrap();
    let json: String = crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT record FROM records WHERE type = $1 AND id = $2"
    )
    .bind(rt)
    .bind(id)
    .fetch_one(p)
    .await)
    .unwrap();
    serde_json::from_str(&json).unwrap()
}

#[tokio::test]
async fn every_covered_type_renders_one_informative_line() {
    let t = TestData::new().await;
    let report = t.ingest(&["fhir/edge/searchset.json"]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let expected = [
        ("Patient/srch-1", "Patient Maria Alvarez, female, born 1970-01-01; lives in Boston, MA"),
        ("Encounter/enc-1", "2019-03-02 Encounter ambulatory: General examination of patient (procedure) for Diabetes mellitus type 2 (disorder)"),
        ("Observation/obs-a1c", "2019-03-02 Observation Hemoglobin A1c/Hemoglobin.total in Blood = 6.2 % (ref 4.0-5.6) [high]"),
        ("Observation/obs-bp", "2019-03-02 Observation Blood pressure panel with all children optional: Systolic blood pressure = 128 mm[Hg]; Diastolic blood pressure = 82 mm[Hg]"),
        ("Observation/obs-smoke", "2019-03-02 Observation Tobacco smoking status = Never smoked tobacco (finding)"),
        ("Condition/cond-dm", "2015-06-01 Condition Diabetes mellitus type 2 (disorder) [active]"),
        ("Condition/cond-old", "2010-12-01 Condition Acute bronchitis (disorder) (resolved 2011-01-10) [resolved]"),
        ("Medication/med-1", "Medication 24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet"),
        ("MedicationRequest/mr-1", "2015-06-02 MedicationRequest 24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet (dose 1, 1x per day) for Diabetes mellitus type 2 (disorder) [active]"),
        ("MedicationStatement/ms-1", "2016-01-01 MedicationStatement lisinopril 10 MG Oral Tablet (10 mg once daily) [active]"),
        ("MedicationAdministration/ma-1", "2019-03-02 MedicationAdministration Acetaminophen 325 MG Oral Tablet (dose 2 tablet)"),
        ("AllergyIntolerance/al-1", "2005-04-01 AllergyIntolerance Penicillin V (medication) criticality high; reaction: Hives (moderate) [active]"),
        ("Procedure/proc-1", "2018-05-05 Procedure Colonoscopy"),
        ("Immunization/imm-1", "2019-10-01 Immunization Influenza, seasonal, injectable, preservative free"),
        ("DocumentReference/doc-1", "2019-03-02 DocumentReference History and physical note: Patient reports increased thirst over the last month. Assessment: type 2 diabetes, suboptimal control. Plan: continue metformin, recheck HbA1c in 3 months."),
        ("DiagnosticReport/dr-1", "2019-03-02 DiagnosticReport Hemoglobin A1c/Hemoglobin.total in Blood: Hemoglobin A1c; conclusion: Above target"),
        ("CarePlan/cp-1", "2015-06-01 CarePlan Diabetes self management plan: Diabetic diet [active]"),
        ("CareTeam/ct-1", "2015-06-01 CareTeam Diabetes mellitus type 2 (disorder) members: Dr. Ines Ortega (Primary care physician) [active]"),
        ("Goal/goal-1", "2015-06-01 Goal Hemoglobin A1c total in Blood < 7.0 [active]"),
        ("Device/dev-1", "2015-06-01 Device Blood glucose meter (UDI (01)00844588003288) [active]"),
        ("ImagingStudy/img-1", "2018-02-01 ImagingStudy: Digital Radiography of Chest (2 instances)"),
        ("Claim/claim-1", "2019-03-02 Claim Institutional: General examination of patient (procedure); total 120.5 USD"),
        ("ExplanationOfBenefit/eob-1", "2019-03-02 ExplanationOfBenefit Institutional; paid 100 USD"),
        ("FamilyMemberHistory/fmh-1", "FamilyMemberHistory Father had a myocardial infarction at age 60."),
    ];
    for (rref, line) in expected {
        assert_eq!(t.line(rref).await, line, "{rref}");
    }
}

#[tokio::test]
async fn observation_fields_are_structured() {
    let t = TestData::new().await;
    t.ingest(&["fhir/edge/searchset.json"]).await;
    let a1c = record(&t, "Observation/obs-a1c").await;
    assert_eq!(a1c.patient.as_deref(), Some("srch-1"));
    assert_eq!(a1c.date.unwrap().day_string(), "2019-03-02");
    assert_eq!(a1c.status.as_deref(), Some("final"));
    let code = a1c.code.as_ref().unwrap();
    assert_eq!(code.codings[0].code, "4548-4");
    assert_eq!(code.codings[0].system_name(), Some("LOINC"));
    match a1c.value.as_ref().unwrap() {
        Value::Quantity(q) => {
            assert_eq!(q.value, 6.2);
            assert_eq!(q.unit.as_deref(), Some("%"));
        }
        other => panic!("expected a quantity, got {other:?}"),
    }
    let range = a1c.reference_range.as_ref().unwrap();
    assert_eq!((range.low, range.high), (Some(4.0), Some(5.6)));
    assert_eq!(a1c.interpretation, vec!["high".to_owned()]);
    assert_eq!(a1c.encounter.as_ref().unwrap().to_string(), "Encounter/enc-1");
    assert_eq!(a1c.categories[0].label(), "Laboratory");

    let bp = record(&t, "Observation/obs-bp").await;
    let values: Vec<f64> = bp.components.iter().filter_map(|c| c.value.as_ref()?.as_number()).collect();
    assert_eq!(values, vec![128.0, 82.0]);
    assert!(bp.all_codes().any(|c| c == "8480-6"));

    let admin = record(&t, "MedicationAdministration/ma-1").await;
    assert_eq!(admin.encounter.as_ref().unwrap().to_string(), "Encounter/enc-1");
    let note = record(&t, "DocumentReference/doc-1").await;
    assert_eq!(note.encounter.as_ref().unwrap().to_string(), "Encounter/enc-1");
    assert!(note.note.as_deref().unwrap().contains("recheck HbA1c in 3 months"));
}

#[tokio::test]
async fn unreadable_optional_fields_are_reported_not_fatal() {
    let t = TestData::new().await;
    let report = t.ingest(&["fhir/edge/broken-fields.json"]).await;
    assert!(report.failed.is_empty());
    assert_eq!(report.inserted, 3);
    for kind in ["effectiveDateTime", "valueQuantity", "code", "onsetDateTime"] {
        assert_eq!(
            report.normalisation_issues.get(kind),
            Some(&1),
            "{kind}: {:?}",
            report.normalisation_issues
        );
    }
    let weight = record(&t, "Observation/6a1d2a4e-0000-4000-8000-000000000002").await;
    // The unreadable effective date falls back to `issued`; the raw resource keeps everything.
    assert_eq!(weight.date.unwrap().day_string(), "2022-01-05");
    assert!(weight.value.is_none());
    assert_eq!(weight.issues.len(), 2);
    let raw =
        t.ws.store
            .raw_resource(
                &ehrqa::fhir::ResourceRef::parse("Observation/6a1d2a4e-0000-4000-8000-000000000002").unwrap(),
            )
            .await
            .unwrap()
            .unwrap();
    assert!(raw.contains("last tuesday") && raw.contains("n/a"));
}

#[tokio::test]
async fn java_synthea_records_render_with_their_codes() {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea-java"]).await;
    let n: i64 = t.count("SELECT COUNT(*) FROM records WHERE type = 'Observation' AND text NOT LIKE '____-__-__ Observation %'").await;
    assert_eq!(n, 0, "every Java Synthea observation has a date and its type in its line");
    let with_issues = t.count("SELECT COUNT(*) FROM records WHERE record LIKE '%\"issues\"%'").await;
    assert_eq!(with_issues, 0);
}
