//! Ingest end to end: counts, reference resolution across inputs, idempotence, versions.

use std::path::PathBuf;

use serde_json::json;

use crate::helpers::{fixture, TestData, DONG, MERVIN};

/// Number of entries in a bundle file.
fn entries(rel: &str) -> usize {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(fixture(rel)).unwrap()).unwrap();
    v["entry"].as_array().unwrap().len()
}

#[tokio::test]
async fn synthea_fixtures_load_completely_with_every_reference_resolved() {
    let t = TestData::new().await;
    let report = t.ingest(&["fhir/synthea", "fhir/synthea-java"]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let files = [
        "fhir/synthea/Dong_Effertz_a8f87e52.json",
        "fhir/synthea/Mervin_Gaylord_d75e2405.json",
        "fhir/synthea-java/Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json",
        "fhir/synthea-java/Cecelia952_Romaguera67_f1731e33-dc55-4ee8-72d7-cece2e49bedd.json",
        "fhir/synthea-java/hospitalInformation1633536936158.json",
        "fhir/synthea-java/practitionerInformation1633536936158.json",
    ];
    let total: usize = files.iter().map(|f| entries(f)).sum();
    assert_eq!(report.resources, total);
    assert_eq!(report.ingested, files.len());
    assert!(report.normalisation_issues.is_empty(), "{:?}", report.normalisation_issues);
    assert_eq!(report.references.unresolved, 0, "{:?}", report.references);
    assert!(report.references.total > 10_000);
    // Shared organisations and practitioners appear in several bundles: stored once.
    let stored = t.count("SELECT COUNT(*) FROM resources").await as usize;
    assert_eq!(stored, report.inserted);
    assert_eq!(stored + report.unchanged + report.updated, total);
    assert_eq!(t.count("SELECT COUNT(*) FROM patients").await, 4);
    assert_eq!(t.ws.index.num_docs().unwrap(), stored as u64);
    // Conditional references point at the practitioner that carries the NPI.
    let resolved = t
        .count(
            "SELECT COUNT(*) FROM refs r JOIN identifiers i ON i.resource_type = r.target_type \
             AND i.resource_id = r.target_id AND i.value = r.cond_value \
             WHERE r.kind = 'conditional'",
        )
        .await;
    let conditional = t.count("SELECT COUNT(*) FROM refs WHERE kind = 'conditional'").await;
    assert!(conditional > 100);
    assert_eq!(resolved, conditional);
}

#[tokio::test]
async fn conditional_references_resolve_whatever_order_the_bundles_arrive() {
    let patient = fixture("fhir/synthea-java/Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json");
    let shared = vec![
        fixture("fhir/synthea-java/hospitalInformation1633536936158.json"),
        fixture("fhir/synthea-java/practitionerInformation1633536936158.json"),
    ];
    let pending = "SELECT COUNT(*) FROM refs WHERE resolved = 0 AND kind = 'conditional'";

    let patient_first = TestData::new().await;
    patient_first.ingest_paths(vec![patient.clone()]).await;
    assert!(patient_first.count(pending).await > 0, "practitioners not loaded yet");
    patient_first.ingest_paths(shared.clone()).await;
    assert_eq!(patient_first.count(pending).await, 0);

    let shared_first = TestData::new().await;
    shared_first.ingest_paths(shared).await;
    shared_first.ingest_paths(vec![patient]).await;
    assert_eq!(shared_first.count(pending).await, 0);
}

/// A `urn:uuid:` reference to a resource of another bundle resolves whichever bundle comes
/// first: the referring bundle's own pending reference against the store, or the patient's
/// bundle against the references that earlier bundles left pending.
#[tokio::test]
async fn urn_references_across_bundles_resolve_whatever_order_the_bundles_arrive() {
    let id = "6f1c2a54-8d1e-4d0b-9a7e-3c1f0e9b2a11";
    let dir = tempfile::tempdir().unwrap();
    let bundle = |entries: serde_json::Value| json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    let patient = write_json(
        dir.path(),
        "patient.json",
        bundle(json!([
            {"fullUrl": format!("urn:uuid:{id}"), "resource": {"resourceType": "Patient", "id": id, "name": [{"family": "Urn"}]}}
        ])),
    );
    let observation = write_json(
        dir.path(),
        "observation.json",
        bundle(json!([
            {"resource": {"resourceType": "Observation", "id": "urn-obs", "status": "final", "code": {"text": "Ferritin"},
                          "subject": {"reference": format!("urn:uuid:{id}")}}}
        ])),
    );
    let resolved =
        "SELECT COUNT(*) FROM refs WHERE kind = 'urn' AND resolved = 1 AND target_type = 'Patient'";
    let pending = "SELECT COUNT(*) FROM refs WHERE resolved = 0";
    for order in [[&observation, &patient], [&patient, &observation]] {
        let t = TestData::new().await;
        t.ingest_paths(vec![order[0].clone()]).await;
        t.ingest_paths(vec![order[1].clone()]).await;
        assert_eq!((t.count(resolved).await, t.count(pending).await), (1, 0), "{order:?}");
    }
}

/// A resource whose only patient reference points into another bundle (a `urn:uuid:` or a
/// conditional reference) joins that patient's records once the reference resolves, whichever
/// bundle comes first or both in one group: it is stored under the patient, its record says so,
/// the patient's search finds it exactly once, and the other patient's search does not.
#[tokio::test]
async fn a_resource_naming_its_patient_in_another_bundle_joins_that_patients_records() {
    let (id, other) = ("5a0c2f1e-1111-4222-8333-444455556666", "9d3e7b20-2222-4333-8444-555566667777");
    let dir = tempfile::tempdir().unwrap();
    let bundle = |entries: serde_json::Value| json!({"resourceType": "Bundle", "type": "collection", "entry": entries});
    let patients = write_json(
        dir.path(),
        "patients.json",
        bundle(json!([
            {"fullUrl": format!("urn:uuid:{id}"), "resource": {"resourceType": "Patient", "id": id,
                "name": [{"family": "Urnson"}], "identifier": [{"system": "http://hosp", "value": "MRN9"}]}},
            {"fullUrl": format!("urn:uuid:{other}"), "resource": {"resourceType": "Patient", "id": other,
                "name": [{"family": "Other"}], "identifier": [{"system": "http://hosp", "value": "MRN10"}]}}
        ])),
    );
    let records = write_json(
        dir.path(),
        "records.json",
        bundle(json!([
            {"resource": {"resourceType": "Observation", "id": "adopt-obs", "status": "final",
                "code": {"text": "Ferritin"}, "subject": {"reference": format!("urn:uuid:{id}")},
                "effectiveDateTime": "2020-01-02", "valueQuantity": {"value": 41, "unit": "ng/mL"}}},
            {"resource": {"resourceType": "Condition", "id": "adopt-cond", "code": {"text": "Sarcoidosis"},
                "subject": {"reference": "Patient?identifier=http://hosp|MRN9"}, "onsetDateTime": "2019-05-01"}}
        ])),
    );
    let under = |p: &str| format!("SELECT COUNT(*) FROM records WHERE patient_id = '{p}'");
    let said = "SELECT COUNT(*) FROM records WHERE record LIKE '%\"patient\":\"5a0c2f1e-%'";
    let waiting = "SELECT COUNT(*) FROM refs WHERE adopts = 1";
    let runs: [Vec<Vec<PathBuf>>; 3] = [
        vec![vec![records.clone()], vec![patients.clone()]],
        vec![vec![patients.clone()], vec![records.clone()]],
        vec![vec![records.clone(), patients.clone()]],
    ];
    for run in runs {
        let t = TestData::new().await;
        for paths in run.clone() {
            t.ingest_paths(paths).await;
        }
        assert_eq!((t.count(&under(id)).await, t.count(&under(other)).await), (3, 1), "{run:?}");
        assert_eq!((t.count(said).await, t.count(waiting).await), (3, 0), "{run:?}");
        for (query, rref) in [("ferritin", "Observation/adopt-obs"), ("sarcoidosis", "Condition/adopt-cond")]
        {
            let found: Vec<String> = t.search(id, query, 10).iter().map(|h| h.rref.to_string()).collect();
            assert_eq!(found, vec![rref.to_owned()], "{run:?}");
            assert!(t.search(other, query, 10).is_empty(), "{run:?}");
        }
        assert_eq!(t.ws.index.num_docs().unwrap(), 4, "{run:?}: no record is indexed twice");
    }
}

async fn snapshot(t: &TestData) -> (i64, i64, String, u64) {
    let resources = t.count("SELECT COUNT(*) FROM resources").await;
    let refs = t.count("SELECT COUNT(*) FROM refs").await;
    let hashes: String = crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT string_agg(hash, '') FROM (SELECT hash FROM resources ORDER BY type, id) AS h",
    )
    .fetch_one(p)
    .await)
    .unwrap();
    (resources, refs, hashes, t.ws.index.num_docs().unwrap())
}

#[tokio::test]
async fn ingesting_the_same_bundles_twice_changes_nothing() {
    let t = TestData::new().await;
    let first = t.ingest(&["fhir/synthea/Dong_Effertz_a8f87e52.json", "fhir/edge"]).await;
    let before = snapshot(&t).await;
    let second = t.ingest(&["fhir/synthea/Dong_Effertz_a8f87e52.json", "fhir/edge"]).await;
    assert_eq!(second.inserted + second.updated, 0);
    assert_eq!(second.unchanged, first.resources);
    assert_eq!(snapshot(&t).await, before);
    let hits = t.search(DONG, "encounter", 1000);
    let mut keys: Vec<_> = hits.iter().map(|h| h.rref.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), hits.len(), "no record is indexed twice");
}

fn write_json(dir: &std::path::Path, name: &str, v: serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

fn patient_version(version: &str, family: &str) -> serde_json::Value {
    json!({"resourceType": "Patient", "id": "ver-1", "meta": {"versionId": version},
           "name": [{"given": ["Vera"], "family": family}], "birthDate": "1990-01-01"})
}

/// Patient/ver-1 as version 1 (family name Oldname) and version 2 (Newname), one file each.
fn two_versions(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let v1 = write_json(dir, "v1.json", patient_version("1", "Oldname"));
    (v1, write_json(dir, "v2.json", patient_version("2", "Newname")))
}

#[tokio::test]
async fn a_newer_version_replaces_the_older_and_an_older_one_is_ignored() {
    let t = TestData::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = two_versions(dir.path());
    assert_eq!(t.ingest_paths(vec![v1.clone()]).await.inserted, 1);
    assert_eq!(t.ingest_paths(vec![v2]).await.updated, 1);
    assert_eq!(t.ingest_paths(vec![v1]).await.stale, 1);
    assert_eq!(t.line("Patient/ver-1").await, "Patient Vera Newname, born 1990-01-01");
    assert_eq!(t.search("ver-1", "Newname", 10).len(), 1);
    assert!(t.search("ver-1", "Oldname", 10).is_empty(), "the old version left the index");
    assert_eq!(t.count("SELECT COUNT(*) FROM resources").await, 1);
}

/// Both versions in one ingest, so in one group: the first is added to the index as new, and
/// the second must still replace it there.
#[tokio::test]
async fn a_resource_added_and_replaced_in_one_ingest_leaves_one_document() {
    let t = TestData::new().await;
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = two_versions(dir.path());
    let report = t.ingest_paths(vec![v1, v2]).await;
    assert_eq!((report.inserted, report.updated), (1, 1));
    assert_eq!(t.search("ver-1", "Newname", 10).len(), 1);
    assert!(t.search("ver-1", "Oldname", 10).is_empty(), "the first version left the index");
    assert_eq!(t.search("ver-1", "Vera", 10).len(), 1, "one document for the resource");
}

/// Files are loaded on several threads but written in the order named: of eight files that
/// each hold the same observation (no version, so a later one replaces an earlier), the last
/// wins.
#[tokio::test]
async fn files_loaded_in_parallel_are_written_in_the_order_named() {
    let t = TestData::new().await;
    let dir = tempfile::tempdir().unwrap();
    let patient = json!({"resourceType": "Patient", "id": "ord-p", "name": [{"family": "Order"}]});
    let mut files = vec![write_json(dir.path(), "0.json", patient)];
    for (i, f) in ["Ann", "Ben", "Cal", "Dee", "Eve", "Fay", "Gus", "Hal"].iter().enumerate() {
        let obs = json!({"resourceType": "Observation", "id": "ord-1", "status": "final",
                         "code": {"text": format!("{f}son panel")}, "subject": {"reference": "Patient/ord-p"}});
        files.push(write_json(dir.path(), &format!("{}.json", i + 1), obs));
    }
    let report = t.ingest_paths(files).await;
    assert_eq!((report.inputs, report.ingested), (9, 9), "{:?}", report.failed);
    assert_eq!((report.inserted, report.updated), (2, 7));
    assert_eq!(t.search("ord-p", "Halson", 10).len(), 1);
    for earlier in ["Annson", "Gusson"] {
        assert!(
            t.search("ord-p", earlier, 10).is_empty(),
            "{earlier}: an earlier file's version left the index"
        );
    }
}

#[tokio::test]
async fn ndjson_bulk_files_resolve_relative_references_across_files() {
    let t = TestData::new().await;
    let report = t.ingest(&["fhir/edge/bulk"]).await;
    assert_eq!(report.ingested, 2);
    assert_eq!(report.by_type.get("Observation"), Some(&3));
    // Observation.ndjson sorts before Patient.ndjson: the subject resolved once the patient came.
    let unresolved: Vec<(String, String)> =
        crate::db!(t.ws.store, |p| sqlx::query_as("SELECT src_id, raw FROM refs WHERE resolved = 0")
            .fetch_all(p)
            .await)
        .unwrap();
    assert_eq!(unresolved, vec![("bulk-obs-2".to_owned(), "Encounter/not-exported".to_owned())]);
    assert_eq!(report.references.unresolved_by_kind.get("literal"), Some(&1));
    let hits = t.search("bulk-1", "glucose", 10);
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.rref.starts_with("Observation/bulk-obs-")));
}

#[tokio::test]
async fn notes_are_decoded_and_searchable_and_binaries_are_kept() {
    let t = TestData::new().await;
    t.ingest(&["fhir/edge/searchset.json", "fhir/synthea/Mervin_Gaylord_d75e2405.json"]).await;
    let hits = t.search("srch-1", "thirst", 5);
    assert_eq!(hits[0].rref, "DocumentReference/doc-1");
    let (ct, size, sha): (String, i64, String) = crate::db!(t.ws.store, |p| sqlx::query_as(
        "SELECT content_type, size, sha256 FROM attachments WHERE resource_id = 'doc-1' AND is_text = 0",
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert_eq!((ct.as_str(), size, sha.len()), ("image/png", 70, 64));
    // Synthea's notes: every DocumentReference of the patient has decoded text.
    let notes = t.count(&format!("SELECT COUNT(*) FROM records WHERE patient_id = '{MERVIN}' AND type = 'DocumentReference' AND record LIKE '%\"note\":%'")).await;
    let docs = t
        .count(&format!(
            "SELECT COUNT(*) FROM records WHERE patient_id = '{MERVIN}' AND type = 'DocumentReference'"
        ))
        .await;
    assert!(docs > 10);
    assert_eq!(notes, docs);
}

#[tokio::test]
async fn search_ranks_the_hba1c_observations_first() {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea"]).await;
    let a1c = t.count(&format!("SELECT COUNT(*) FROM records WHERE patient_id = '{MERVIN}' AND code = '4548-4' AND type = 'Observation'")).await as usize;
    assert_eq!(a1c, 7);
    let hits = t.search(MERVIN, "hemoglobin a1c", 20);
    for h in &hits[..a1c] {
        assert!(h.text.contains("Hemoglobin A1c/Hemoglobin.total in Blood ="), "{}", h.text);
    }
    assert!(t.search(DONG, "hemoglobin a1c", 20).iter().all(|h| !h.text.contains("A1c/Hemoglobin")));
}

/// FHIR strings may not hold NUL, and PostgreSQL's text refuses it: such an input is stored
/// without it, the same on either backend, and found by the words around it.
#[tokio::test]
async fn a_nul_in_a_string_is_dropped_and_the_input_stored() {
    let t = TestData::new().await;
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "nul-1", "name": [{"family": "Nu\u{0}ll", "given": ["Ada"]}]}},
        {"resource": {"resourceType": "Observation", "id": "nul-o", "status": "final",
            "code": {"text": "Glu\u{0}cose"}, "subject": {"reference": "Patient/nul-1"}, "valueString": "high\u{0}"}}
    ]});
    let path = t.dir.path().join("nul.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    let report = t.ingest_paths(vec![path]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(t.line("Observation/nul-o").await, "Observation Glucose = high");
    assert_eq!(t.search("nul-1", "glucose", 5).first().map(|h| h.rref.as_str()), Some("Observation/nul-o"));
}
