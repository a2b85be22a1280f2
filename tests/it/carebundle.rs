//! Data that is not Synthea: carebundle's US Core transaction bundles (`fixtures/carebundle/`,
//! written byte-identically by `tools/make_carebundle_fixtures.py`). Their resources carry no `id`,
//! only `urn:uuid:` fullUrls; conditions are coded in ICD-10-CM, eGFR under the CKD-EPI 2021 LOINC,
//! lab panels are DiagnosticReports listing their results; two bundles carry injected defects
//! (missing fields, results dated a year after their visit, "QNS" for numbers, site-local code
//! systems, near-duplicates). Everything goes through the real binary.

use ehrqa::eval;
use ehrqa::fhir::date::FhirDate;
use ehrqa::retrieval::context::ItemKind;
use ehrqa::retrieval::{assemble, ContextOptions};
use ehrqa::tokens::TokenBudget;
use serde_json::Value;

use crate::helpers::{fixture, stderr, stdout, tokenizer, TestData};

const PATIENTS: &str = "carebundle/patients";

/// Each bundle of the loadable set: its file name and JSON.
fn bundles() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(fixture(PATIENTS))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn entries(bundle: &Value) -> &Vec<Value> {
    bundle["entry"].as_array().unwrap()
}

/// `Type/id` of an entry, the id as ehrqa derives it: `id`, else the fullUrl's UUID.
fn rref(entry: &Value) -> String {
    let r = &entry["resource"];
    let id = r["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| entry["fullUrl"].as_str().unwrap().strip_prefix("urn:uuid:").unwrap().to_owned());
    format!("{}/{id}", r["resourceType"].as_str().unwrap())
}

/// `ehrqa ingest --format json` of `rel`, with its exit status.
fn ingest(t: &TestData, rel: &str) -> (bool, Value, String) {
    let out = t.ehrqa(&["ingest", "--format", "json", fixture(rel).to_str().unwrap()]);
    let report = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    (out.status.success(), report, stderr(&out))
}

/// The test's workspace, in step with what the CLI wrote.
async fn follow(t: &TestData) {
    t.ws.follow().await.unwrap();
}

#[tokio::test]
async fn resources_without_ids_take_them_from_their_full_urls_and_every_reference_resolves() {
    let t = TestData::new().await;
    let (ok, report, err) = ingest(&t, PATIENTS);
    assert!(ok, "{err}");
    let all = bundles();
    let total: usize = all.iter().map(|(_, b)| entries(b).len()).sum();
    assert_eq!(report["failed"], Value::Array(vec![]));
    assert_eq!(report["ingested"], all.len());
    assert_eq!(report["resources"], total);
    assert_eq!(report["inserted"], total);
    assert_eq!(report["references"]["unresolved"], 0, "{}", report["references"]);
    assert!(report["references"]["total"].as_u64().unwrap() > 700);
    // The same ids again: re-ingesting changes nothing.
    let (ok, again, err) = ingest(&t, PATIENTS);
    assert!(ok, "{err}");
    assert_eq!(again["unchanged"], total);
    assert_eq!(again["inserted"], 0);

    follow(&t).await;
    assert_eq!(t.count("SELECT COUNT(*) FROM resources").await as usize, total);
    assert_eq!(t.count("SELECT COUNT(*) FROM refs").await, 0, "nothing waits for a target");
    let mut without_id = 0;
    for (name, bundle) in &all {
        let patient = entries(bundle).iter().find(|e| e["resource"]["resourceType"] == "Patient").unwrap();
        let pid = rref(patient).strip_prefix("Patient/").unwrap().to_owned();
        for e in entries(bundle) {
            without_id += usize::from(e["resource"].get("id").is_none());
            let r = rref(e);
            let (rt, id) = r.split_once('/').unwrap();
            let (full_url, owner): (Option<String>, Option<String>) =
                crate::db!(t.ws.store, |p| sqlx::query_as(
                    "SELECT full_url, patient_id FROM resources WHERE type = $1 AND id = $2"
                )
                .bind(rt)
                .bind(id)
                .fetch_one(p)
                .await)
                .unwrap_or_else(|_| panic!("{name}: {r} is stored under its fullUrl's UUID"));
            assert_eq!(full_url.as_deref(), e["fullUrl"].as_str(), "{name}: {r}");
            if rt != "Practitioner" && !(rt == "Patient" && id != pid) {
                assert_eq!(
                    owner.as_deref(),
                    Some(pid.as_str()),
                    "{name}: {r} belongs to its bundle's patient"
                );
            }
        }
    }
    assert!(without_id >= total - 5, "carebundle writes no ids ({without_id} of {total} without)");
    // Every Observation's encounter reference resolved to the stored Encounter of its visit.
    let with_encounter = all
        .iter()
        .flat_map(|(_, b)| entries(b))
        .filter(|e| {
            e["resource"]["resourceType"] == "Observation" && e["resource"].get("encounter").is_some()
        })
        .count() as i64;
    // The record's `encounter` field, in each backend's JSON syntax.
    let encounter = match t.ws.store.backend() {
        "postgres" => "CAST(o.record AS json) ->> 'encounter'",
        _ => "json_extract(o.record, '$.encounter')",
    };
    let resolved = t
        .count(&format!(
            "SELECT COUNT(*) FROM resources o JOIN resources e ON e.type = 'Encounter' \
             AND {encounter} = 'Encounter/' || e.id \
             WHERE o.type = 'Observation' AND e.patient_id = o.patient_id"
        ))
        .await;
    assert_eq!(resolved, with_encounter);
    // A panel names its results, which it references by `urn:uuid` alone: the comprehensive
    // metabolic panel lists six of its fourteen.
    let cmp = entries(&all[0].1).iter().find(|e| e["resource"]["code"]["coding"][0]["code"] == "24323-8");
    let panel = t.line(&rref(cmp.unwrap())).await;
    assert!(
        panel.contains(": Sodium [Moles/volume] in Serum or Plasma, Potassium") && panel.ends_with("+8 more"),
        "{panel}"
    );
}

#[tokio::test]
async fn injected_defects_are_normalisation_issues_not_failures() {
    let t = TestData::new().await;
    let (ok, report, err) = ingest(&t, PATIENTS);
    assert!(ok, "{err}");
    assert_eq!(report["failed"], Value::Array(vec![]));
    let defects: Value =
        serde_json::from_slice(&std::fs::read(fixture("carebundle/defects.json")).unwrap()).unwrap();
    let defects = defects.as_object().unwrap();
    assert_eq!(defects.len(), 2, "two bundles carry defects");
    let all = bundles();
    let (mut missing_status, mut missing_category, mut unreadable) = (0, 0, Vec::new());
    for (file, list) in defects {
        let bundle = &all.iter().find(|(n, _)| n == file).unwrap().1;
        for d in list.as_array().unwrap() {
            match (d["kind"].as_str().unwrap(), d["detail"].as_str().unwrap()) {
                ("missing_field", "removed 'status'") => missing_status += 1,
                // Every resource carebundle writes claims a US Core profile, which requires it.
                ("missing_field", "removed 'category'") => missing_category += 1,
                ("unparseable_value", _) => {
                    let e = &entries(bundle)[d["entry_index"].as_u64().unwrap() as usize];
                    unreadable.push((rref(e), e["resource"]["valueString"].as_str().unwrap().to_owned()));
                }
                _ => {}
            }
        }
    }
    assert!(missing_status > 0 && missing_category > 0 && !unreadable.is_empty());
    let issues = &report["normalisation_issues"];
    assert_eq!(issues["status"], missing_status, "{issues}");
    assert_eq!(issues["category"], missing_category, "{issues}");
    assert_eq!(issues.as_object().unwrap().len(), 2, "nothing else is an issue: {issues}");

    follow(&t).await;
    // A number replaced by text ("QNS", "<0.1") is kept and shown as written.
    for (r, text) in &unreadable {
        let line = t.line(r).await;
        assert!(line.ends_with(&format!("= {text}")), "{r}: {line}");
    }
    let flagged = t.count("SELECT COUNT(*) FROM records WHERE record LIKE '%\"issues\"%'").await;
    assert_eq!(flagged, missing_status + missing_category, "one issue per defective resource");
}

#[tokio::test]
async fn the_history_generators_reused_patient_uuid_is_refused_not_merged() {
    let t = TestData::new().await;
    let (ok, report, err) = ingest(&t, PATIENTS);
    assert!(ok, "{err}");
    let stored = report["resources"].as_u64().unwrap() as i64;
    let (ok, clash, err) = ingest(&t, "carebundle/identity-clash");
    assert!(!ok, "the clashing input makes the run fail");
    assert_eq!(clash["failed"].as_array().unwrap().len(), 1, "{clash}");
    assert!(err.contains("different person"), "{err}");

    let clash_bundle: Value = serde_json::from_slice(
        &std::fs::read(fixture("carebundle/identity-clash/history-reuses-patient-0.json")).unwrap(),
    )
    .unwrap();
    let pid = rref(&entries(&clash_bundle)[0]);
    let owner = bundles()
        .into_iter()
        .find(|(_, b)| entries(b).iter().any(|e| rref(e) == pid))
        .expect("the clashing UUID is a stored patient's");
    let family = entries(&owner.1)[0]["resource"]["name"][0]["family"].as_str().unwrap().to_owned();
    follow(&t).await;
    assert_eq!(t.count("SELECT COUNT(*) FROM resources").await, stored, "nothing of it stored");
    let name: String =
        crate::db!(t.ws.store, |p| sqlx::query_scalar("SELECT name FROM patients WHERE id = $1")
            .bind(pid.strip_prefix("Patient/").unwrap())
            .fetch_one(p)
            .await)
        .unwrap();
    assert!(name.contains(&family), "the stored person is kept: {name}");
}

#[tokio::test]
async fn codes_from_other_systems_are_found_by_their_display() {
    let t = TestData::new().await;
    assert!(ingest(&t, PATIENTS).0);
    let ckd = bundles().into_iter().find(|(n, _)| n.contains("ckd")).unwrap().1;
    let pid = rref(&entries(&ckd)[0]).strip_prefix("Patient/").unwrap().to_owned();
    let find = |code: &str| {
        rref(
            entries(&ckd)
                .iter()
                .find(|e| e["resource"]["code"]["coding"][0]["code"] == code)
                .unwrap_or_else(|| panic!("{code} in the CKD bundle")),
        )
    };
    // ICD-10-CM N18.32 for "kidney disease", LOINC 98979-8 (CKD-EPI 2021) for "eGFR": the
    // vocabulary knows neither code.
    for (question, code) in
        [("When was she diagnosed with kidney disease?", "N18.32"), ("What was her latest eGFR?", "98979-8")]
    {
        let out = t.ehrqa(&[
            "context",
            "--patient",
            &pid,
            "--question",
            question,
            "--budget",
            "2048",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let ctx: Value = serde_json::from_str(&stdout(&out)).unwrap();
        let items = ctx["items"].as_array().unwrap();
        let facts: Vec<&Value> = items.iter().filter(|i| i["kind"] == "fact").collect();
        let want = find(code);
        assert!(
            facts
                .iter()
                .any(|f| f["ref"] == want.as_str() && !f["text"].as_str().unwrap().contains("No records")),
            "{question}: {facts:?}"
        );
    }
}

#[tokio::test]
async fn evidence_recall_on_the_carebundle_questions() {
    let t = TestData::new().await;
    assert!(ingest(&t, PATIENTS).0);
    let path = fixture("../eval/questions-carebundle.jsonl");
    let out = t.ehrqa(&[
        "eval",
        "retrieval",
        "--questions",
        path.to_str().unwrap(),
        "--budget",
        "2048",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(report["questions"].as_u64().unwrap() >= 70, "{report}");
    assert!(report["kinds"].as_array().unwrap().len() >= 12, "{report}");
    let recall = report["recall"].as_f64().unwrap();
    assert!(recall >= 0.95, "recall {recall:.3} at 2048 tokens; missed {}", report["missed"]);

    // Recall counts the evidence anywhere in the context, and the header lists every active
    // problem: a context can hold the evidence and still state, as a computed fact, that the
    // record has none of what was asked (the answer then abstains). None may.
    follow(&t).await;
    let today = FhirDate::parse("2026-11-29").unwrap().timestamp();
    let opts = ContextOptions { budget: TokenBudget::new(2048).unwrap(), today };
    for q in eval::questions::read(&path).unwrap().iter().filter(|q| !q.kind.expects_absence()) {
        let ctx = assemble(&t.ws.index, tokenizer().as_ref(), &q.patient, &q.question, opts).unwrap();
        let denial = ctx.items.iter().find(|i| i.kind == ItemKind::Fact && i.text.contains("No records of"));
        assert!(denial.is_none(), "{} {:?}: {}", q.id, q.question, denial.unwrap().text);
    }
}
