//! `ehrqa serve` replicas on one real PostgreSQL, each with its own data directory (its own
//! search index): what one ingests the others find, a replica killed in the middle of an ingest
//! leaves the input whole or absent while another keeps serving and writing, a sync job started
//! through one is followed through another, and one replica at a time holds the subscriptions.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::helpers::{free_port, spawn_serve, Process, MERVIN};
use super::pg::PgServer;
use super::subscriptions::{get, heart_rate, on_server, put, until};
use super::sync::{read, FhirServer, BOB, BOB_FILE, SHARED};

/// A replica: `ehrqa serve` on the shared database, without keys or model (loopback only).
struct Replica {
    process: Process,
    base: String,
    _dir: tempfile::TempDir,
}

fn replica(database_url: &str) -> Replica {
    replica_with(database_url, &[])
}

fn replica_with(database_url: &str, extra: &[&str]) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let args = [&["--no-auth", "--no-model"], extra].concat();
    let (process, base) = spawn_serve(dir.path(), &args, &[("EHRQA_DATABASE_URL", database_url)]);
    Replica { process, base, _dir: dir }
}

impl Replica {
    async fn post_bundle(&self, bundle: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/bundles", self.base))
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string())
            .send()
            .await
            .unwrap()
    }

    /// The refs a search of the patient's records finds for `q`.
    async fn search(&self, patient: &str, q: &str) -> Vec<String> {
        let url = format!("{}/v1/patients/{patient}/records", self.base);
        let r = reqwest::Client::new().get(url).query(&[("q", q)]).send().await.unwrap();
        if !r.status().is_success() {
            return Vec::new();
        }
        let v: Value = r.json().await.unwrap();
        v["results"].as_array().unwrap().iter().map(|h| h["ref"].as_str().unwrap().to_owned()).collect()
    }

    /// Waits until the replica's search finds `rref` (the event is the search result; the
    /// deadline only bounds a failure). Returns how long it took.
    async fn until_found(&self, patient: &str, q: &str, rref: &str) -> Duration {
        let started = Instant::now();
        while !self.search(patient, q).await.iter().any(|r| r == rref) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{rref} never became searchable on {}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.elapsed()
    }
}

/// A transaction bundle: one patient and `observations` glucose results, each with its own id.
fn bundle(patient: &str, observations: usize, word: &str) -> Value {
    let mut entries = vec![json!({
        "fullUrl": format!("urn:uuid:{patient}"),
        "resource": {"resourceType": "Patient", "id": patient, "name": [{"family": "Replica", "given": [word]}],
                     "birthDate": "1970-01-01", "gender": "female"},
        "request": {"method": "PUT", "url": format!("Patient/{patient}")}
    })];
    for i in 0..observations {
        let id = format!("{patient}-obs-{i}");
        entries.push(json!({
            "fullUrl": format!("urn:uuid:{id}"),
            "resource": {"resourceType": "Observation", "id": id, "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}], "text": format!("Glucose {word}")},
                "subject": {"reference": format!("Patient/{patient}")},
                "effectiveDateTime": format!("2020-01-{:02}T08:00:00Z", i % 28 + 1),
                "valueQuantity": {"value": 90 + (i % 40), "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}},
            "request": {"method": "PUT", "url": format!("Observation/{id}")}
        }));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

async fn count(db: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

#[tokio::test]
async fn a_bundle_posted_to_one_replica_is_found_through_the_other() {
    let pg = PgServer::start();
    let url = pg.database("ehrqa").await;
    let (a, b) = (replica(&url), replica(&url));
    let ingested = a.post_bundle(&bundle("rep-1", 3, "zanzibar")).await;
    assert_eq!(ingested.status(), 200, "{}", ingested.text().await.unwrap());
    let took = b.until_found("rep-1", "glucose zanzibar", "Observation/rep-1-obs-0").await;
    eprintln!("replica B found replica A's ingest after {} ms", took.as_millis());
    // A replica that starts after the ingest catches up from its (empty) index's tag.
    let late = replica(&url);
    late.until_found("rep-1", "glucose zanzibar", "Observation/rep-1-obs-2").await;
    // The fixture patients ingested through B are searchable through A and the late one.
    let fixture =
        std::fs::read_to_string(super::helpers::fixture("fhir/synthea/Mervin_Gaylord_d75e2405.json"))
            .unwrap();
    let r = b.post_bundle(&serde_json::from_str(&fixture).unwrap()).await;
    assert_eq!(r.status(), 200);
    for replica in [&a, &late] {
        replica
            .until_found(MERVIN, "hemoglobin a1c", "Observation/e8deca02-0404-4015-8b94-198c5e34a802")
            .await;
    }
    // `ehrqa bench http` spreads its clients over the replicas it is given.
    let search = format!("/v1/patients/{MERVIN}/records?q=glucose");
    let out = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .args(["bench", "http", "--concurrency", "4", "--duration", "1", "--format", "json"])
        .args(["--url", &format!("{}{search}", a.base), "--url", &format!("{}{search}", b.base)])
        .output()
        .unwrap();
    let load: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(load["urls"].as_array().map(Vec::len), Some(2), "{load}");
    assert!(load["requests"].as_u64().unwrap() > 0 && load["errors"] == 0, "{load}");
    // Isolation holds across replicas: the first patient's search finds none of Mervin's records.
    assert!(a.search("rep-1", "hemoglobin a1c").await.iter().all(|r| r.starts_with("Observation/rep-1-")));
}

#[tokio::test]
async fn killing_a_replica_mid_ingest_leaves_the_input_whole_or_absent_and_the_other_serves_on() {
    let pg = PgServer::start();
    let url = pg.database("ehrqa").await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let (mut a, b) = (replica(&url), replica(&url));
    let big = bundle("rep-big", 20_000, "kilimanjaro");
    let a_base = a.base.clone();
    let post = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{a_base}/v1/bundles"))
            .header("content-type", "application/fhir+json")
            .body(big.to_string())
            .send()
            .await
    });
    // The event: A holds the database's write turn, so it is inside the ingest's transaction.
    let started = Instant::now();
    while count(&db, "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").await == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "replica A never began writing");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.process.child.kill().unwrap();
    a.process.child.wait().unwrap();
    assert!(post.await.unwrap().is_err(), "the killed replica answered");
    // B serves, and the bundle is all or nothing (nothing: A died before committing).
    let stored =
        count(&db, "SELECT COUNT(*) FROM resources WHERE patient_id = 'rep-big' OR id = 'rep-big'").await;
    assert!(stored == 0 || stored == 20_001, "a half-written bundle: {stored} resources");
    let patients = reqwest::get(format!("{}/v1/patients", b.base)).await.unwrap();
    assert_eq!(patients.status(), 200);
    // A's write turn went with its connection: B writes, and finds what it wrote.
    let r = b.post_bundle(&bundle("rep-after", 2, "serengeti")).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    b.until_found("rep-after", "glucose serengeti", "Observation/rep-after-obs-1").await;
    let orphans = count(&db, "SELECT COUNT(*) FROM ingests WHERE resources = 0").await;
    assert_eq!(orphans, 0, "an ingest row without its input");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_subscribe_once_share_the_secret_and_hand_the_lead_on() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    let pg = PgServer::start();
    let url = pg.database("ehrqa").await;
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let subscribe = [
        "--subscribe-to",
        &server.base,
        "--subscribe-type",
        "Observation",
        "--subscription-check",
        "1",
        "--sync-server",
        &server.base,
    ];
    let mut a = replica_with(&url, &subscribe);
    let b = replica_with(&url, &subscribe);
    // One replica leads: the server holds one subscription, not one per replica. A replica
    // binds its port, then takes or fails to take the lead (subscribing if it leads), then
    // serves: once both answer, both have tried.
    for r in [&a, &b] {
        let url = format!("{}/v1/subscriptions", r.base);
        assert!(until(Duration::from_secs(30), async || get(&url).await.0 == 200).await.is_some());
    }
    let held = on_server(&server).await;
    assert_eq!(held.len(), 1, "{held:?}");
    // A change reaches both replicas' searches (the leader is notified, the other follows).
    put(&format!("{}/Observation/rep-hr-1", server.base), &heart_rate("rep-hr-1", 71)).await;
    for r in [&a, &b] {
        r.until_found(BOB, "heart rate", "Observation/rep-hr-1").await;
    }
    // The secret is the store's, so a notification reaching the other replica is accepted.
    let secret: String =
        sqlx::query_scalar("SELECT value FROM service_secrets").fetch_one(&db).await.unwrap();
    let forwarded = reqwest::Client::new()
        .put(format!("{}/v1/notifications/Observation/rep-hr-1", b.base))
        .header("X-Ehrqa-Notification-Secret", &secret)
        .json(&heart_rate("rep-hr-1", 71))
        .send()
        .await
        .unwrap();
    assert!(forwarded.status().is_success(), "{}", forwarded.status());
    // A sync job started through one replica is followed through the other until it is done.
    let started = reqwest::Client::new()
        .post(format!("{}/v1/sync", b.base))
        .json(&json!({"server": server.base, "patient": BOB}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let job: Value = started.json().await.unwrap();
    let on_a = format!("{}/v1/jobs/{}", a.base, job["id"]);
    let done = until(Duration::from_secs(30), async || get(&on_a).await.1["state"] == "done").await;
    assert!(done.is_some(), "{}", get(&on_a).await.1);
    let report = get(&on_a).await.1;
    assert_eq!(report["report"]["patients"].as_array().map(Vec::len), Some(1), "{report}");
    // The leader dies: the other takes the role and subscribes; changes flow again.
    a.process.child.kill().unwrap();
    a.process.child.wait().unwrap();
    let took = until(Duration::from_secs(20), async || on_server(&server).await.len() == 2).await;
    assert!(took.is_some(), "no replica took the lead: {:?}", on_server(&server).await);
    put(&format!("{}/Observation/rep-hr-2", server.base), &heart_rate("rep-hr-2", 73)).await;
    b.until_found(BOB, "heart rate", "Observation/rep-hr-2").await;
    let (status, _) = get(&format!("{}/v1/subscriptions", b.base)).await;
    assert_eq!(status, 200);
    // The leader's database session is cut (as when PostgreSQL restarts): it notices, deletes
    // its subscription, takes the lead again and subscribes anew, and changes flow again.
    let ids = async || on_server(&server).await.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    let before = ids().await;
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(cut, 1, "one session holds the lead");
    let renewed = until(Duration::from_secs(20), async || {
        let now = ids().await;
        now.len() == before.len() && now != before
    })
    .await;
    assert!(renewed.is_some(), "before {before:?}, now {:?}", ids().await);
    put(&format!("{}/Observation/rep-hr-3", server.base), &heart_rate("rep-hr-3", 75)).await;
    b.until_found(BOB, "heart rate", "Observation/rep-hr-3").await;
}

#[test]
fn a_database_that_cannot_be_reached_is_one_line_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("patients")
        .env("EHRQA_DATABASE_URL", format!("postgres://ehrqa:hunter2secret@127.0.0.1:{port}/ehrqa"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: cannot connect to PostgreSQL at 127.0.0.1:{port}/ehrqa: ")),
        "{err}"
    );
    assert!(!err.contains("hunter2secret"), "{err}");
}
