//! No patient data in the service's logs at info level: a full request cycle (ingest, list,
//! summary, search, a resource, context, a streamed and a plain answer, errors, a sync job that
//! fails) is logged at info, and the log holds no patient id, resource id, name, question or
//! answer; warnings and errors name references by their type only.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{ehrqa, fixture, free_port, stdout, wait_for_port, Process, DONG, MERVIN};

#[tokio::test(flavor = "multi_thread")]
async fn a_full_request_cycle_logs_no_patient_data_at_info() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ehrqa(dir.path(), &["ingest", fixture("fhir").to_str().unwrap()]).status.success());
    let log_path = dir.path().join("service.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // A FHIR server the service may sync from, which is not there.
    let closed = free_port();
    let fhir = format!("http://127.0.0.1:{closed}/fhir");
    let child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--no-auth", "--bind", &format!("127.0.0.1:{port}"), "--sync-server", &fhir])
        .args(["--budget", "1024", "--max-tokens", "16"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let _service = Process { child };
    wait_for_port(port, Duration::from_secs(60));
    let http = reqwest::Client::new();
    let question = "What was his most recent glucose value?";
    let mut said = Vec::new();

    for path in [
        "/v1/patients".to_owned(),
        format!("/v1/patients/{DONG}"),
        format!("/v1/patients/{DONG}/records?q=glucose"),
        format!("/v1/patients/{MERVIN}/records?q=hemoglobin&limit=2"),
        "/v1/patients/no-such-patient".to_owned(),
        format!("/v1/patients/{DONG}/resources/Observation/no-such-observation"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        said.push(r.text().await.unwrap());
    }
    let ctx = http
        .post(format!("{base}/v1/patients/{DONG}/context"))
        .json(&json!({"question": question, "budget": 1024}))
        .send()
        .await
        .unwrap();
    assert_eq!(ctx.status(), 200);
    let answer: Value = http
        .post(format!("{base}/v1/patients/{DONG}/ask"))
        .json(&json!({"question": question}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let streamed = http
        .post(format!("{base}/v1/patients/{MERVIN}/ask"))
        .header("accept", "text/event-stream")
        .json(&json!({"question": "Does he have diabetes?"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(streamed.contains("event: answer"), "{streamed}");
    let bundle = std::fs::read(fixture("fhir/edge/searchset.json")).unwrap();
    let posted = http
        .post(format!("{base}/v1/bundles"))
        .header("content-type", "application/fhir+json")
        .body(bundle)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    // A sync that fails: the server is not there (the failure is logged as a warning).
    let job: Value = http
        .post(format!("{base}/v1/sync"))
        .json(&json!({"server": fhir, "patient": DONG}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_url = format!("{base}/v1/jobs/{}", job["id"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(&job_url).send().await.unwrap().json::<Value>().await.unwrap()["state"] == "running" {
        assert!(Instant::now() < deadline, "the sync job never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.contains("request"), "the service logged its requests at info: {logged}");
    assert!(logged.contains("patient sync failed"), "the failed sync was logged: {logged}");

    let mut secrets: Vec<String> = vec![question.to_owned(), "Does he have diabetes?".to_owned()];
    let patients: Value =
        serde_json::from_str(&stdout(&ehrqa(dir.path(), &["--format", "json", "patients"]))).unwrap();
    for p in patients.as_array().unwrap() {
        secrets.push(p["id"].as_str().unwrap().to_owned());
        let name = p["name"].as_str().unwrap_or("");
        secrets.extend(name.split_whitespace().filter(|w| w.len() > 3).map(str::to_owned));
    }
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM resources")
        .fetch_all(
            &sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("ehrqa.sqlite").display()))
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    secrets.extend(ids.into_iter().filter(|id| id.len() >= 8));
    secrets.extend(["no-such-patient".to_owned(), "no-such-observation".to_owned()]);
    let text = answer["answer"].as_str().unwrap_or_default();
    if text.len() > 12 {
        secrets.push(text.to_owned());
    }
    for s in &secrets {
        assert!(!logged.contains(s.as_str()), "the log holds patient data {s:?}:\n{logged}");
    }
    assert!(
        said.iter().any(|r| r.contains("no-such-patient")),
        "errors tell the client what they were about"
    );
}
