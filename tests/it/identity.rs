//! Two different people are never merged under one id: an input whose Patient has a stored
//! Patient's id but is another person (name, birth date, identifiers), or whose resource is
//! stored for another patient, is refused whole with a reason; the same person updated is not.

use serde_json::{json, Value};

use crate::helpers::{TestData, DONG, MERVIN};

/// A transaction bundle of one Patient (urn:uuid fullUrl, no id, as carebundle writes them) and
/// one Observation of theirs.
fn person(patient_id: &str, family: &str, given: &str, birth: &str, mrn: &str, obs_id: &str) -> Value {
    json!({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"fullUrl": format!("urn:uuid:{patient_id}"), "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "http://hospital.smarthealthit.org", "value": mrn}],
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": "female", "birthDate": birth}},
            {"fullUrl": format!("urn:uuid:{obs_id}"), "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
                "subject": {"reference": format!("urn:uuid:{patient_id}")},
                "effectiveDateTime": "2024-03-02T10:00:00Z",
                "valueQuantity": {"value": 101, "unit": "mg/dL"}}}
        ]
    })
}

async fn ingest_json(t: &TestData, name: &str, v: &Value) -> ehrqa::ingest::IngestReport {
    let path = t.dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec(v).unwrap()).unwrap();
    t.ingest_paths(vec![path]).await
}

#[tokio::test]
async fn another_person_with_a_stored_patients_id_is_refused_and_nothing_is_stored() {
    let t = TestData::new().await;
    let pid = "0b0c5a2e-1111-4a4a-9c9c-000000000001";
    let first =
        ingest_json(&t, "a.json", &person(pid, "Lopez", "Maria", "1961-02-03", "MRN-1", "obs-a")).await;
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    let resources = t.count("SELECT COUNT(*) FROM resources").await;
    let clash = person(pid, "Nguyen", "Thi", "1990-11-12", "MRN-2", "obs-b");
    let second = ingest_json(&t, "b.json", &clash).await;
    assert_eq!(second.failed.len(), 1, "the clashing input is refused");
    let reason = &second.failed[0].error;
    assert!(reason.contains("different person") && reason.contains(&format!("Patient/{pid}")), "{reason}");
    for private in ["Nguyen", "Lopez", "1990-11-12", "1961-02-03"] {
        assert!(!reason.contains(private), "the reason names no person's data: {reason}");
    }
    assert_eq!(t.count("SELECT COUNT(*) FROM resources").await, resources, "nothing of it stored");
    assert_eq!(t.count("SELECT COUNT(*) FROM resources WHERE id = 'obs-b'").await, 0);
    let name: String =
        crate::db!(t.ws.store, |p| sqlx::query_scalar("SELECT name FROM patients WHERE id = $1")
            .bind(pid)
            .fetch_one(p)
            .await)
        .unwrap();
    assert!(name.contains("Lopez"), "the stored person is kept: {name}");
}

#[tokio::test]
async fn the_same_person_updated_is_accepted() {
    let t = TestData::new().await;
    let pid = "0b0c5a2e-1111-4a4a-9c9c-000000000002";
    ingest_json(&t, "a.json", &person(pid, "Lopez", "Maria", "1961-02-03", "MRN-1", "obs-a")).await;
    let married = person(pid, "Garcia", "Maria", "1961-02-03", "MRN-1", "obs-c");
    let report = ingest_json(&t, "b.json", &married).await;
    assert!(report.failed.is_empty(), "a changed family name is the same person: {:?}", report.failed);
    assert_eq!(t.count("SELECT COUNT(*) FROM resources WHERE id = 'obs-c'").await, 1);
}

#[tokio::test]
async fn a_resource_stored_for_one_patient_cannot_move_to_another() {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea"]).await;
    let stored: String = crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT id FROM resources WHERE type = 'Observation' AND patient_id = $1 LIMIT 1"
    )
    .bind(DONG)
    .fetch_one(p)
    .await)
    .unwrap();
    let raw: String = crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT raw FROM resources WHERE type = 'Observation' AND id = $1"
    )
    .bind(&stored)
    .fetch_one(p)
    .await)
    .unwrap();
    let mut moved: Value = serde_json::from_str(&raw).unwrap();
    moved["subject"] = json!({"reference": format!("Patient/{MERVIN}")});
    let report = ingest_json(&t, "moved.json", &moved).await;
    assert_eq!(report.failed.len(), 1, "refused: {report:?}");
    assert!(report.failed[0].error.contains("another patient"), "{}", report.failed[0].error);
    let owner: String = crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT patient_id FROM resources WHERE type = 'Observation' AND id = $1"
    )
    .bind(&stored)
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!(owner, DONG, "the record stays with its patient");
}
