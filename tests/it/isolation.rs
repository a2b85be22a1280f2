//! Patient isolation: a search never returns another patient's record, whatever it asks for.

use crate::helpers::{TestData, BOB_JAVA, DONG, MERVIN, SEARCHSET_PATIENT};

async fn owner(t: &TestData, rref: &str) -> Option<String> {
    let (rt, id) = rref.split_once('/').unwrap();
    crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT patient_id FROM records WHERE type = $1 AND id = $2"
    )
    .bind(rt)
    .bind(id)
    .fetch_one(p)
    .await)
    .unwrap()
}

#[tokio::test]
async fn searches_only_ever_return_the_patients_own_records() {
    let t = TestData::new().await;
    t.ingest(&["fhir"]).await;
    let patients = [DONG, MERVIN, BOB_JAVA, SEARCHSET_PATIENT, "bulk-1"];
    let queries = [
        "",
        "encounter",
        "hemoglobin a1c",
        "glucose",
        "blood pressure",
        "Maria Alvarez",
        "thirst",
        "Gaylord",
        "Practitioner",
        "NORTH SHORE MEDICAL CENTER",
        "*",
        "patient:*",
        "type:Observation",
    ];
    let mut seen = 0;
    for p in patients {
        for other in patients.iter().filter(|o| **o != p) {
            for q in
                queries.iter().map(|q| q.to_string()).chain([other.to_string(), format!("patient:{other}")])
            {
                for hit in t.search(p, &q, 200) {
                    assert_eq!(owner(&t, &hit.rref).await.as_deref(), Some(p), "query {q:?} for {p}");
                    seen += 1;
                }
            }
        }
    }
    assert!(seen > 1000, "the queries found records at all ({seen})");
}

#[tokio::test]
async fn shared_resources_without_a_patient_are_never_returned() {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea-java"]).await;
    let hits = t.search(BOB_JAVA, "Practitioner Organization Location", 500);
    assert!(hits.iter().all(|h| !matches!(
        h.rtype.as_str(),
        "Practitioner" | "Organization" | "Location" | "PractitionerRole"
    )));
    assert!(t.search("", "Practitioner", 10).is_empty());
}
