//! The chart, timeline, record and draft-export routes the clinician's page uses, over HTTP
//! against `ehrqa serve`: what they return, how they page, and what they refuse (another
//! patient's records never come back through this patient's paths).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{DONG, MERVIN};
use crate::server::{is_outcome, start};

/// Every timeline entry of a patient, page by page, and the number of pages.
async fn whole_timeline(s: &crate::server::Service, patient: &str, query: &str) -> (Vec<Value>, usize) {
    let (mut entries, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/patients/{patient}/timeline?{query}&cursor={c}"),
            None => format!("/v1/patients/{patient}/timeline?{query}"),
        };
        let (status, page) = s.get(&path, Some(&s.admin)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        entries.extend(page["entries"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (entries, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_and_timeline_page_a_patient_and_refuse_other_patients_records() {
    let s = start(&[]);
    let admin = Some(s.admin.as_str());

    // The chart: his summary, his age at death, vitals and labs with the records they come from.
    let (status, chart) = s.get(&format!("/v1/patients/{MERVIN}/chart"), admin).await;
    assert_eq!(status, StatusCode::OK, "{chart}");
    assert_eq!(chart["patient"]["id"], MERVIN);
    assert_eq!(chart["age"], 47, "born 1938-05-17, died 1986-04-01");
    assert!(chart["notice"].as_str().unwrap().contains("Not for clinical use"));
    let a1c = chart["labs"].as_array().unwrap().iter().find(|s| s["code"] == "4548-4").unwrap();
    assert_eq!(a1c, &chart["labs"][0], "key labs first, A1c first among them");
    let last = a1c["points"].as_array().unwrap().last().unwrap();
    assert_eq!((last["value"].as_f64(), last["date"].as_str()), (Some(6.2), Some("1984-07-17")));
    assert_eq!(a1c["reference_range"], json!({ "low": 4.0, "high": 5.6 }));
    for series in chart["vitals"].as_array().unwrap().iter().chain(chart["labs"].as_array().unwrap()) {
        let points = series["points"].as_array().unwrap();
        assert!(!points.is_empty() && points.len() <= 24, "{series}");
        assert!(points.windows(2).all(|w| w[0]["date"].as_str() <= w[1]["date"].as_str()), "{series}");
        assert!(series["count"].as_u64().unwrap() >= points.len() as u64);
    }
    let (status, _) = s.get(&format!("/v1/patients/{MERVIN}/chart"), Some(&s.clinic)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The whole timeline in pages of 50: newest first, no entry twice, every dated record of the
    // timeline's types once (as many as the database holds).
    let (entries, pages) = whole_timeline(&s, MERVIN, "limit=50").await;
    assert!(pages > 10, "{pages} pages");
    let refs: std::collections::BTreeSet<&str> = entries.iter().map(|e| e["ref"].as_str().unwrap()).collect();
    assert_eq!(refs.len(), entries.len(), "an entry came twice");
    // Ordered by instant; their days (dates with and without a time) never go forward.
    let day = |e: &Value| e["date"].as_str().unwrap()[..10].to_owned();
    assert!(entries.windows(2).all(|w| day(&w[0]) >= day(&w[1])), "not newest first");
    let store = s.store().await;
    let expected: i64 = crate::db!(store, |p| {
        sqlx::query_scalar(
        "SELECT COUNT(*) FROM resources WHERE patient_id = $1 AND ts IS NOT NULL AND date IS NOT NULL AND type IN \
         ('Encounter','Observation','DiagnosticReport','Procedure','Immunization','DocumentReference','Condition',\
         'MedicationRequest','AllergyIntolerance')",
    )
    .bind(MERVIN)
    .fetch_one(p)
    .await
    .unwrap()
    });
    assert_eq!(entries.len() as i64, expected);
    let (visits, _) = whole_timeline(&s, MERVIN, "types=Encounter&limit=500").await;
    assert!(!visits.is_empty() && visits.iter().all(|e| e["type"] == "Encounter"));
    for bad in ["types=Patient", "limit=0", "limit=501", "cursor=garbage", "cursor=1.Observation.a%20b"] {
        let (status, body) = s.get(&format!("/v1/patients/{MERVIN}/timeline?{bad}"), admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(is_outcome(&body), "{body}");
    }

    // A record opens through its own patient's path only.
    let (dong, _) = whole_timeline(&s, DONG, "types=Encounter,Observation&limit=500").await;
    let dong_obs =
        dong.iter().find(|e| e["type"] == "Observation").unwrap()["ref"].as_str().unwrap().to_owned();
    let dong_visit =
        dong.iter().find(|e| e["type"] == "Encounter").unwrap()["ref"].as_str().unwrap().to_owned();
    let (status, rec) = s.get(&format!("/v1/patients/{DONG}/resources/{dong_obs}/record"), admin).await;
    assert_eq!((status, rec["ref"].as_str()), (StatusCode::OK, Some(dong_obs.as_str())));
    assert!(rec["text"].as_str().unwrap().contains("Observation"), "{rec}");
    let (status, _) = s.get(&format!("/v1/patients/{MERVIN}/resources/{dong_obs}/record"), admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another patient's record is not told apart from none");
    let note = entries.iter().find(|e| e["type"] == "DocumentReference").unwrap()["ref"].as_str().unwrap();
    let (_, rec) = s.get(&format!("/v1/patients/{MERVIN}/resources/{note}/record"), admin).await;
    assert!(rec["note"].as_str().unwrap().contains("Chief Complaint"), "a note opens with its text: {rec}");

    // Export: his visit and his records only; the draft comes back, preliminary, not stored.
    let visit = visits[0]["ref"].as_str().unwrap();
    let export_path = format!("/v1/patients/{MERVIN}/drafts/export");
    let export = |body: Value| s.post(&export_path, &s.admin, body);
    let r = export(json!({ "encounter": visit, "text": "Seen for sinusitis [1].", "related": [note] })).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(
        (doc["resourceType"].as_str(), doc["docStatus"].as_str()),
        (Some("DocumentReference"), Some("preliminary"))
    );
    assert_eq!(doc["context"]["related"], json!([{ "reference": note }]));
    let stored: i64 =
        crate::db!(store, |p| sqlx::query_scalar("SELECT COUNT(*) FROM resources WHERE id = $1")
            .bind(doc["id"].as_str().unwrap())
            .fetch_one(p)
            .await
            .unwrap());
    assert_eq!(stored, 0, "an export is not stored");
    let refused = [
        (json!({ "encounter": visit, "text": "x", "related": [dong_obs] }), StatusCode::BAD_REQUEST),
        (json!({ "encounter": dong_visit, "text": "x" }), StatusCode::NOT_FOUND),
        (json!({ "encounter": visit, "text": "  " }), StatusCode::BAD_REQUEST),
        (json!({ "encounter": "Observation/x", "text": "x" }), StatusCode::BAD_REQUEST),
    ];
    for (body, want) in refused {
        let r = export(body.clone()).await;
        assert_eq!(r.status(), want, "{body}");
        assert!(is_outcome(&r.json().await.unwrap()), "{body}");
    }
    let dong_eid = dong_visit.split('/').nth(1).unwrap();
    let r = s.post(&format!("/v1/patients/{MERVIN}/encounters/{dong_eid}/draft"), &s.admin, json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "a draft of another patient's visit");
}
