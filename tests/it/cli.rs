//! The CLI's JSON outputs are contracts: exact keys and types, tested through the real binary.

use serde_json::Value;

use crate::helpers::{ehrqa, fixture, stderr, stdout, MERVIN};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn ingest_fixtures(dir: &std::path::Path) -> Value {
    let out = ehrqa(dir, &["ingest", "--format", "json", fixture("fhir").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("ingest prints one JSON document")
}

#[test]
fn ingest_json_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let report = ingest_fixtures(dir.path());
    assert_eq!(report["failed"], Value::Array(vec![]));
    assert_eq!(report["ingested"], 10);
    assert!(report["resources"].as_u64().unwrap() > 3_000);
    assert!(report["by_type"]["Observation"].as_u64().unwrap() > 1_000);
    assert_eq!(report["references"]["unresolved"], 1);
    assert!(report["resources_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn patients_json_contract() {
    let dir = tempfile::tempdir().unwrap();
    ingest_fixtures(dir.path());
    let out = ehrqa(dir.path(), &["patients", "--format", "json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 7);
    for p in list {
        // `deceased` (added) only for those who died: Mervin, in 1986.
        let mut want = vec!["birth_date", "gender", "id", "name", "resources"];
        if p["id"] == MERVIN {
            want.insert(1, "deceased");
            assert!(p["deceased"].as_str().unwrap().starts_with("1986-04-01"), "{p}");
        }
        assert_eq!(keys(p), want);
        assert!(p["resources"].as_i64().unwrap() > 0);
    }
    let mervin = list.iter().find(|p| p["id"] == MERVIN).unwrap();
    assert_eq!(mervin["name"], "Mervin Gaylord");
    assert_eq!(mervin["gender"], "male");
    assert!(mervin["birth_date"].as_str().unwrap().len() == 10);
}

#[test]
fn search_json_contract_and_text_output() {
    let dir = tempfile::tempdir().unwrap();
    ingest_fixtures(dir.path());
    let out = ehrqa(
        dir.path(),
        &["search", "--patient", MERVIN, "--limit", "3", "--format", "json", "hemoglobin", "a1c"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(keys(&v), ["results"]);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        assert_eq!(keys(r), ["date", "ref", "score", "text", "type"]);
        assert_eq!(r["type"], "Observation");
        assert!(r["ref"].as_str().unwrap().starts_with("Observation/"));
        assert!(r["text"].as_str().unwrap().starts_with(r["date"].as_str().unwrap()));
        assert!(r["score"].as_f64().unwrap() > 0.0);
    }
    let text = ehrqa(dir.path(), &["search", "--patient", MERVIN, "--type", "Immunization", "--limit", "2"]);
    let lines: Vec<String> = stdout(&text).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.contains(" Immunization/") && l.contains(" Immunization ")));
}

#[test]
fn search_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    ingest_fixtures(dir.path());
    for (args, msg) in [
        (vec!["search", "--patient", "nobody", "x"], "error: unknown patient nobody"),
        (vec!["search", "--patient", "a/b", "x"], "error: invalid patient id \"a/b\""),
        (
            vec!["search", "--patient", MERVIN, "--type", "Observations", "x"],
            "error: unknown resource type \"Observations\"",
        ),
    ] {
        let out = ehrqa(dir.path(), &args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stderr(&out).trim_end(), msg);
    }
}
