//! `ehrqa serve --subscribe-to` against sekmet-fhir's Subscriptions: R4 rest-hooks per resource
//! type (delivered as `PUT /v1/notifications/{type}/{id}` with the resource) and the R4
//! topic-based backport (an `id-only` notification Bundle after a handshake). A change posted to
//! the server reaches the patient's context with only the change fetched; a notification without
//! the secret is refused; a subscription the server turns off is made again; shutdown deletes
//! them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_serve, Process};
use crate::sync::{read, sync, FhirServer, BOB, BOB_FILE, SHARED};

struct Ehrqa {
    process: Process,
    api: String,
}

fn serve(dir: &std::path::Path, server: &FhirServer, subscribe: &[&str]) -> Ehrqa {
    let args = [
        &["--no-auth", "--no-model", "--subscribe-to", &server.base, "--subscription-check", "1"],
        subscribe,
    ]
    .concat();
    let (process, api) = spawn_serve(dir, &args, &[]);
    Ehrqa { process, api }
}

pub(crate) async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn put(url: &str, body: &Value) {
    let r = reqwest::Client::new().put(url).json(body).send().await.unwrap();
    assert!(r.status().is_success(), "PUT {url}: {}", r.status());
}

/// The server's Subscriptions by id and status.
pub(crate) async fn on_server(server: &FhirServer) -> Vec<(String, String)> {
    let (_, bundle) = get(&format!("{}/Subscription?_count=100", server.base)).await;
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let r = &e["resource"];
            (r["id"].as_str().unwrap().to_owned(), r["status"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

/// Waits until `check` holds, for at most `within`; how long it took.
pub(crate) async fn until(within: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

pub(crate) fn heart_rate(id: &str, value: u32) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": format!("Patient/{BOB}")}, "effectiveDateTime": "2025-01-02T09:00:00Z",
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
}

async fn stats(api: &str) -> Value {
    let (status, view) = get(&format!("{api}/v1/subscriptions")).await;
    assert_eq!(status, 200, "{view}");
    view[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_on_the_server_reaches_the_context_through_a_rest_hook() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    // A sync remembers the second it began and next asks `_since` that second, inclusive: one
    // begun in the second the loading ended would fetch the loaded records again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = sync(dir.path(), &["--server", &server.base, "--patient", BOB]);
    assert!(ok, "{err}");
    let mut ehrqa = serve(dir.path(), &server, &["--subscribe-type", "Observation,Condition"]);
    let api = ehrqa.api.clone();
    // The service binds its port, subscribes, then serves: once it answers, it has subscribed.
    let view = format!("{api}/v1/subscriptions");
    assert!(until(Duration::from_secs(30), async || get(&view).await.0 == 200).await.is_some());
    let held = on_server(&server).await;
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().all(|(_, s)| s == "active"), "{held:?}");

    // A new result on the server: in the patient's context soon after, and only it fetched.
    put(&format!("{}/Observation/sub-obs-1", server.base), &heart_rate("sub-obs-1", 77)).await;
    let record = format!("{api}/v1/patients/{BOB}/resources/Observation/sub-obs-1");
    // Readable once the database committed; counted (and searchable) once the index committed.
    let synced = async || get(&record).await.0 == 200 && stats(&api).await["syncs"] == 1;
    let took = until(Duration::from_secs(5), synced).await;
    assert!(took.is_some(), "not synced within 5 s: {}", stats(&api).await);
    let context: Value = reqwest::Client::new()
        .post(format!("{api}/v1/patients/{BOB}/context"))
        .json(&json!({"question": "What was his latest heart rate?"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(context.to_string().contains("Observation/sub-obs-1"), "{context}");
    let s = stats(&api).await;
    assert_eq!(s["syncs"], 1, "{s}");
    assert!(s["resources"].as_u64().unwrap() <= 2, "only the change (and its Patient) fetched: {s}");

    // Forged notifications: no secret, a wrong one. Refused, and nothing synced.
    let forged = heart_rate("forged-1", 300);
    for secret in [None, Some("0".repeat(64))] {
        let mut rb =
            reqwest::Client::new().put(format!("{api}/v1/notifications/Observation/forged-1")).json(&forged);
        if let Some(s) = &secret {
            rb = rb.header("X-Ehrqa-Notification-Secret", s);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let r = reqwest::Client::new().post(format!("{api}/v1/notifications")).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(stats(&api).await["notifications"], s["notifications"]);

    // Turned off on the server: made again, and notifications flow once more.
    let (id, _) = on_server(&server).await.into_iter().next().unwrap();
    let (_, mut sub) = get(&format!("{}/Subscription/{id}", server.base)).await;
    let criteria = sub["criteria"].clone();
    sub["status"] = json!("off");
    put(&format!("{}/Subscription/{id}", server.base), &sub).await;
    let remade = until(Duration::from_secs(10), async || stats(&api).await["recreated"] == 1).await;
    assert!(remade.is_some(), "{}", stats(&api).await);
    let now = on_server(&server).await;
    assert!(now.iter().all(|(i, _)| *i != id), "the old one deleted: {now:?}");
    assert_eq!(now.len(), 2, "{now:?}");
    let view = stats(&api).await;
    let key = criteria.as_str().unwrap().trim_end_matches('?');
    assert_ne!(view["subscriptions"][key], json!(format!("Subscription/{id}")), "{view}");

    // Stopped: its subscriptions are deleted on the server.
    unsafe { libc::kill(ehrqa.process.child.id() as i32, libc::SIGTERM) };
    let status = ehrqa.process.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(on_server(&server).await.is_empty(), "{:?}", on_server(&server).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_topic_notification_names_the_patient_to_sync() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let topic = "http://sekmet.dev/fhir/SubscriptionTopic/diagnosticreport-final";
    let ehrqa = serve(dir.path(), &server, &["--subscribe-topic", topic]);
    let api = ehrqa.api.clone();
    // Active once ehrqa answered the server's handshake.
    let active =
        until(Duration::from_secs(10), async || on_server(&server).await.iter().any(|(_, s)| s == "active"))
            .await;
    assert!(active.is_some(), "{:?}", on_server(&server).await);
    let report = json!({"resourceType": "DiagnosticReport", "id": "sub-report-1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "24323-8", "display": "Comprehensive metabolic panel"}]},
        "subject": {"reference": format!("Patient/{BOB}")}, "effectiveDateTime": "2025-01-03T09:00:00Z"});
    put(&format!("{}/DiagnosticReport/sub-report-1", server.base), &report).await;
    // The patient was never synced here: the notification brings the whole record. The deadline
    // only guards against a hang: with the suite's other tests sharing the two cores, the whole
    // record once took over 10 s to arrive.
    // The record is readable once the database committed, a moment before the sync counts it
    // (the index commits after it): wait for both.
    let record = format!("{api}/v1/patients/{BOB}/resources/DiagnosticReport/sub-report-1");
    let whole = async || get(&record).await.0 == 200 && stats(&api).await["resources"].as_u64() > Some(200);
    let took = until(Duration::from_secs(30), whole).await;
    assert!(took.is_some(), "{}", stats(&api).await);
}
