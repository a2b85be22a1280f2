//! `ehrqa sync` against a real FHIR R4 server on loopback (sekmet-fhir, installed by
//! `scripts/setup`): fixture patients are loaded through the server's REST API and synced back,
//! and what ehrqa holds must equal what was loaded. Also: the per-type search fallback with pages
//! smaller than a record, incremental syncs, bearer and client-credential auth, an unreachable
//! server, a server that returns garbage, a `Retry-After` honoured exactly, and the API's sync job.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ehrqa::sync::{ClientError, FhirClient, ServerAuth};
use serde_json::{json, Value};

use crate::helpers::{ehrqa, fixture, free_port, stderr, stdout, wait_for_port, Process, DONG};
use crate::scripted::{self, fixed};

pub(crate) const BOB: &str = "3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b";
pub(crate) const STATIC_TOKEN: &str = "test-static-token";

pub(crate) struct FhirServer {
    _process: Process,
    _dir: tempfile::TempDir,
    pub(crate) base: String,
    pub(crate) root: String,
}

impl FhirServer {
    pub(crate) fn start(auth: bool) -> Self {
        let client = "{client_id: ehrqa-client, client_secret: ehrqa-secret, scopes: \"system/*.read system/*.write\"}";
        Self::start_with(auth.then_some(client))
    }

    /// A server; with SMART clients (YAML flow mappings, comma-separated), it takes only the
    /// static token and those clients' tokens.
    pub(crate) fn start_with(smart_clients: Option<&str>) -> Self {
        let sekmet = ehrqa::settings::default_cache_dir().join("venv-sekmet/bin/sekmet");
        assert!(sekmet.is_file(), "run scripts/setup (installs sekmet-fhir)");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let root = format!("http://127.0.0.1:{port}");
        let auth_yaml = match smart_clients {
            Some(clients) => format!(
                "server_auth:\n  types: [bearer, smart]\n  tokens: [{STATIC_TOKEN}]\n  smart_clients: [{clients}]\n  token_lifetime: 3600\n  enforce_scopes: true\n"
            ),
            None => "server_auth:\n  types: [none]\n".to_owned(),
        };
        let settings = format!(
            "base_url: {root}/fhir\nhost: 127.0.0.1\nport: {port}\ndb_path: {}\n{auth_yaml}simulator:\n  enabled: false\nvalidation:\n  inbound: warn\nlog_inbound: false\n",
            dir.path().join("sekmet.db").display()
        );
        let config = dir.path().join("settings.yaml");
        std::fs::write(&config, settings).unwrap();
        let child = Command::new(sekmet)
            .args(["serve", "-c"])
            .arg(&config)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sekmet");
        wait_for_port(port, Duration::from_secs(60));
        Self { _process: Process { child }, _dir: dir, base: format!("{root}/fhir"), root }
    }

    /// Loads a bundle as a transaction of PUTs (so ids are kept), with `urn:uuid:` references
    /// rewritten to `Type/id` as a server resolving them would.
    pub(crate) async fn load(&self, bundle: &Value, token: Option<&str>) {
        let entries = bundle["entry"].as_array().unwrap();
        let mut urls = BTreeMap::new();
        for e in entries {
            let r = &e["resource"];
            let target = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
            if let Some(f) = e["fullUrl"].as_str() {
                urls.insert(f.to_owned(), target);
            }
        }
        let entry: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut r = e["resource"].clone();
                rewrite(&mut r, &urls);
                let url = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
                json!({"resource": r, "request": {"method": "PUT", "url": url}})
            })
            .collect();
        let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": entry});
        let mut rb =
            reqwest::Client::new().post(&self.base).header("content-type", "application/fhir+json").json(&tx);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        let r = rb.send().await.unwrap();
        assert!(r.status().is_success(), "loading failed: {} {}", r.status(), r.text().await.unwrap());
    }

    async fn put(&self, resource: &Value) {
        let url = format!(
            "{}/{}/{}",
            self.base,
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let r = reqwest::Client::new().put(url).json(resource).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

fn rewrite(v: &mut Value, urls: &BTreeMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(t) = urls.get(s.as_str()) {
                *s = t.clone();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, urls)),
        Value::Object(o) => o.values_mut().for_each(|x| rewrite(x, urls)),
        _ => {}
    }
}

pub(crate) fn read(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixture(rel)).unwrap()).unwrap()
}

pub(crate) const DONG_FILE: &str = "fhir/synthea/Dong_Effertz_a8f87e52.json";
pub(crate) const BOB_FILE: &str =
    "fhir/synthea-java/Bob965_Keeling57_3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b.json";
/// The practitioners and organisations the Java Synthea patient refers to conditionally.
pub(crate) const SHARED: [&str; 2] = [
    "fhir/synthea-java/practitionerInformation1633536936158.json",
    "fhir/synthea-java/hospitalInformation1633536936158.json",
];
const NOTE_WORDS: &str = "quokka marmalade";

/// A note held as a Binary on the server and referenced by url, as servers store documents.
fn binary_note() -> Value {
    let text = format!("Follow-up visit. The patient mentions a {NOTE_WORDS} diet.");
    json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Binary", "id": "note-bin-1", "contentType": "text/plain",
            "data": base64_encode(text.as_bytes())}},
        {"resource": {"resourceType": "DocumentReference", "id": "note-ref-1", "status": "current",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
            "subject": {"reference": format!("Patient/{DONG}")}, "date": "2024-03-01T10:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "url": "Binary/note-bin-1"}}]}}
    ]})
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub(crate) fn sync(dir: &Path, args: &[&str]) -> (bool, Value, String) {
    let mut all = vec!["sync", "--format", "json"];
    all.extend_from_slice(args);
    let out = ehrqa(dir, &all);
    let report = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    (out.status.success(), report, stderr(&out))
}

/// (type, id) -> rendering of every resource in a patient's compartment.
pub(crate) async fn compartment(dir: &Path, patient: &str) -> BTreeMap<(String, String), String> {
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("ehrqa.sqlite").display())).await.unwrap();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT type, id, text FROM records WHERE patient_id = ?")
            .bind(patient)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows.into_iter().map(|(t, id, text)| ((t, id), text)).collect()
}

/// Each record of a patient's with what it says of itself: date, status and code, joined.
async fn own_fields(dir: &Path, patient: &str) -> BTreeMap<(String, String), String> {
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("ehrqa.sqlite").display())).await.unwrap();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT type, id, COALESCE(date, '') || '|' || COALESCE(status, '') || '|' || COALESCE(code, '') \
         FROM records WHERE patient_id = ?",
    )
    .bind(patient)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows.into_iter().map(|(t, id, fields)| ((t, id), fields)).collect()
}

pub(crate) fn per_type(c: &BTreeMap<(String, String), String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (t, _) in c.keys() {
        *m.entry(t.clone()).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_round_trips_patients_through_a_real_fhir_server() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE, &DONG_FILE]) {
        server.load(&read(f), None).await;
    }
    server.load(&binary_note(), None).await;
    // What ehrqa holds when it ingests the same files directly.
    let reference = tempfile::tempdir().unwrap();
    for f in [DONG_FILE, BOB_FILE] {
        assert!(ehrqa(reference.path(), &["ingest", fixture(f).to_str().unwrap()]).status.success());
    }

    let synced = tempfile::tempdir().unwrap();
    let (ok, report, err) =
        sync(synced.path(), &["--server", &server.base, "--patient", DONG, "--patient", BOB]);
    assert!(ok, "{err}");
    assert_eq!(report["synced"], 2, "{report}");
    for p in report["patients"].as_array().unwrap() {
        assert_eq!(p["method"], "everything");
    }
    for patient in [DONG, BOB] {
        let want = compartment(reference.path(), patient).await;
        let mut got = compartment(synced.path(), patient).await;
        got.retain(|(t, id), _| !(t == "DocumentReference" && id == "note-ref-1"));
        assert_eq!(per_type(&got), per_type(&want), "{patient}: counts per type");
        let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(3).collect();
        let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(3).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{patient}: missing {missing:?}, extra {extra:?}");
        let differ: Vec<_> =
            want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).map(|(k, _)| k).take(3).collect();
        assert!(differ.is_empty(), "{patient}: renderings differ for {differ:?}");
    }
    // The Binary-held note was fetched, decoded and indexed.
    let out = ehrqa(synced.path(), &["search", "--patient", DONG, "--format", "json", NOTE_WORDS]);
    let hits: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hits["results"][0]["ref"], "DocumentReference/note-ref-1", "{hits}");
    assert_eq!(
        report["patients"].as_array().unwrap().iter().map(|p| p["binaries"].as_u64().unwrap()).sum::<u64>(),
        1
    );

    // Per-type searches, pages of 7 (a patient's record is hundreds): the same records.
    let searched = tempfile::tempdir().unwrap();
    let (ok, report, err) = sync(
        searched.path(),
        &["--server", &server.base, "--patient", BOB, "--no-everything", "--page-size", "7"],
    );
    assert!(ok, "{err}");
    assert_eq!(report["patients"][0]["method"], "search");
    let got: BTreeSet<_> = compartment(searched.path(), BOB).await.into_keys().collect();
    let want: BTreeSet<_> = compartment(reference.path(), BOB).await.into_keys().collect();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "missing {:?}, extra {:?}",
        want.difference(&got).take(3).collect::<Vec<_>>(),
        got.difference(&want).take(3).collect::<Vec<_>>()
    );

    // Incremental: only what changed since the last sync comes back, and the change lands.
    let mut obs = read(DONG_FILE)["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .find(|r| r["resourceType"] == "Observation" && r["valueQuantity"]["value"].is_number())
        .unwrap();
    let urls: BTreeMap<String, String> =
        BTreeMap::from([(format!("urn:uuid:{DONG}"), format!("Patient/{DONG}"))]);
    rewrite(&mut obs, &urls);
    obs["subject"] = json!({"reference": format!("Patient/{DONG}")});
    obs["encounter"] = Value::Null;
    obs.as_object_mut().unwrap().remove("encounter");
    obs["valueQuantity"]["value"] = json!(987.654);
    std::thread::sleep(Duration::from_millis(1100));
    server.put(&obs).await;
    let (ok, report, err) = sync(synced.path(), &["--server", &server.base, "--patient", DONG]);
    assert!(ok, "{err}");
    let p = &report["patients"][0];
    assert!(p["since"].is_string(), "{p}");
    assert!(p["resources"].as_u64().unwrap() <= 3, "incremental sync fetched {p}");
    let id = obs["id"].as_str().unwrap();
    let text = compartment(synced.path(), DONG).await[&("Observation".to_owned(), id.to_owned())].clone();
    assert!(text.contains("987.654"), "{text}");
    // A --since in the future brings back nothing but the patient.
    let (ok, report, _) = sync(
        synced.path(),
        &["--server", &server.base, "--patient", DONG, "--since", "2999-01-01T00:00:00Z"],
    );
    assert!(ok);
    assert_eq!(report["patients"][0]["resources"], 1);

    // One failing patient does not stop the others.
    let other = tempfile::tempdir().unwrap();
    let (ok, report, _) =
        sync(other.path(), &["--server", &server.base, "--patient", "nobody-here", "--patient", DONG]);
    assert!(!ok);
    assert_eq!((report["synced"].as_u64(), report["failed"].as_u64()), (Some(1), Some(1)));
    assert!(report["patients"][0]["error"].as_str().unwrap().contains("not found"), "{report}");
    // --all pages through the server's patients.
    let all = tempfile::tempdir().unwrap();
    let (ok, report, err) = sync(all.path(), &["--server", &server.base, "--all", "--page-size", "1"]);
    assert!(ok, "{err}");
    assert_eq!(report["synced"], 2, "{report}");
}

/// A server that answers every request with a 200 that is not FHIR.
fn garbage_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!");
        }
    });
    (port, h)
}

/// A proxy in front of `upstream` that answers every other request with 503 (the first one
/// included) and forwards the rest: a server having a bad day. Returns its port and a count of the
/// 503s it sent.
fn flaky_proxy(upstream: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let count = refused.clone();
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(mut client) = stream else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 8192];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match client.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            if i % 2 == 0 {
                count.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            // Forward with the connection closed after the response, and relay it back whole.
            let head = String::from_utf8_lossy(&req).replace("keep-alive", "close");
            let head = if head.to_ascii_lowercase().contains("\r\nconnection:") {
                head
            } else {
                head.replacen("\r\n", "\r\nConnection: close\r\n", 1)
            };
            let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let _ = up.write_all(head.as_bytes());
            let mut resp = Vec::new();
            let _ = up.read_to_end(&mut resp);
            let _ = client.write_all(&resp);
        }
    });
    (port, refused)
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_retries_a_server_that_fails_now_and_then() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    let upstream: u16 = server.root.rsplit(':').next().unwrap().parse().unwrap();
    let (port, refused) = flaky_proxy(upstream);
    let dir = tempfile::tempdir().unwrap();
    let (ok, report, err) =
        sync(dir.path(), &["--server", &format!("http://127.0.0.1:{port}/fhir"), "--patient", BOB]);
    assert!(ok, "{err} {report}");
    assert!(refused.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let reference = tempfile::tempdir().unwrap();
    assert!(ehrqa(reference.path(), &["ingest", fixture(BOB_FILE).to_str().unwrap()]).status.success());
    let got: BTreeSet<_> = compartment(dir.path(), BOB).await.into_keys().collect();
    let want: BTreeSet<_> = compartment(reference.path(), BOB).await.into_keys().collect();
    assert_eq!(got, want);
}

/// A population through Bulk Data `$export` from a real server: every patient's records as a
/// direct ingest of the same files holds them; the next export asks only for what changed since
/// the first one's `transactionTime`, and brings just that.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_export_brings_the_same_records_and_then_only_changes() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE, &DONG_FILE]) {
        server.load(&read(f), None).await;
    }
    let reference = tempfile::tempdir().unwrap();
    for f in [DONG_FILE, BOB_FILE] {
        assert!(ehrqa(reference.path(), &["ingest", fixture(f).to_str().unwrap()]).status.success());
    }
    let synced = tempfile::tempdir().unwrap();
    let (ok, report, err) = sync(synced.path(), &["--server", &server.base, "--bulk", "--all"]);
    assert!(ok, "{err}");
    assert_eq!(report["resumed"], false);
    assert!(report.get("since").is_none(), "a first export asks for everything: {report}");
    let files = report["files"].as_array().unwrap();
    assert_eq!(files[0]["type"], "Patient", "Patient first: {report}");
    assert!(files.iter().all(|f| f.get("error").is_none()), "{report}");
    assert!(err.contains("[1/"), "progress per file: {err}");
    for patient in [DONG, BOB] {
        let mut want = compartment(reference.path(), patient).await;
        // sekmet-fhir's Patient/$export holds the resources its search index links to the patient;
        // it reaches CareTeam and SupplyDelivery only through references (its $everything adds
        // them), so they are not in the export.
        want.retain(|(t, _), _| !["CareTeam", "SupplyDelivery"].contains(&t.as_str()));
        let got = compartment(synced.path(), patient).await;
        assert_eq!(per_type(&got), per_type(&want), "{patient}: counts per type");
        // The same records, read alike: date, status and code are each resource's own. (Their
        // one-line renderings may differ where they name other resources: a report's results, an
        // encounter's organisation, which an export brings in other files or not at all.)
        let (want_fields, got_fields) =
            (own_fields(reference.path(), patient).await, own_fields(synced.path(), patient).await);
        let differ: Vec<_> = want_fields
            .iter()
            .filter(|(k, v)| want.contains_key(*k) && got_fields.get(*k) != Some(*v))
            .map(|(k, v)| (k, v, got_fields.get(k)))
            .take(2)
            .collect();
        assert!(differ.is_empty(), "{patient}: missing or different: {differ:?}");
    }
    let first_time = report["transaction_time"].as_str().unwrap().to_owned();

    // One new observation on the server; the next export asks `_since` the first and brings it.
    let obs = json!({"resourceType": "Observation", "id": "bulk-new-1", "status": "final",
        "code": {"text": "Peak flow"}, "subject": {"reference": format!("Patient/{DONG}")},
        "effectiveDateTime": "2026-11-30T10:00:00Z", "valueQuantity": {"value": 410, "unit": "L/min"}});
    let put = reqwest::Client::new()
        .put(format!("{}/Observation/bulk-new-1", server.base))
        .header("content-type", "application/fhir+json")
        .json(&obs)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let (ok, again, err) = sync(synced.path(), &["--server", &server.base, "--bulk", "--all"]);
    assert!(ok, "{err}");
    assert_eq!(again["since"].as_str(), Some(first_time.as_str()), "{again}");
    assert_eq!(again["resources"], 1, "only the change: {again}");
    let got = compartment(synced.path(), DONG).await;
    assert!(got.contains_key(&("Observation".to_owned(), "bulk-new-1".to_owned())));
    // An export started by a run that was interrupted is polled again, not started anew, and
    // deleted on the server once ingested.
    let kick = reqwest::Client::new()
        .get(format!("{}/Patient/$export", server.base))
        .header("Prefer", "respond-async")
        .header("Accept", "application/fhir+json")
        .send()
        .await
        .unwrap();
    assert_eq!(kick.status(), reqwest::StatusCode::ACCEPTED);
    let status_url = kick.headers()["content-location"].to_str().unwrap().to_owned();
    let resumed = tempfile::tempdir().unwrap();
    let store = ehrqa::store::Store::open(resumed.path(), None).await.unwrap();
    store.bulk_started(&server.base, "patients", &status_url).await.unwrap();
    drop(store);
    let (ok, report, err) = sync(resumed.path(), &["--server", &server.base, "--bulk", "--all"]);
    assert!(ok, "{err}");
    assert_eq!(report["resumed"], true, "{report}");
    assert_eq!(compartment(resumed.path(), DONG).await.len(), compartment(synced.path(), DONG).await.len());
    let gone = reqwest::get(&status_url).await.unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND, "the finished export was deleted");

    // A group that does not exist is the server's 404, said in one line.
    let out = ehrqa(synced.path(), &["sync", "--server", &server.base, "--bulk", "--group", "no-such-group"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().filter(|l| l.starts_with("error")).count(), 1, "{}", stderr(&out));
}

/// A `next` link or a redirect to another origin is refused, not followed (the bearer token goes
/// nowhere else), and a refusal's body is not repeated in the error.
#[tokio::test(flavor = "multi_thread")]
async fn sync_stays_on_the_servers_origin() {
    let fhir_json = ("Content-Type", "application/fhir+json");
    let empty = r#"{"resourceType":"Bundle","type":"searchset"}"#;
    let trap = scripted::serve(vec![fixed("200 OK", &[fhir_json], empty); 2]).await;
    let page = format!(
        r#"{{"resourceType":"Bundle","type":"searchset","entry":[{{"resource":{{"resourceType":"Patient","id":"p1"}}}}],
            "link":[{{"relation":"next","url":"{}/fhir/Patient?page=2"}}]}}"#,
        trap.url
    );
    let location = format!("{}/fhir/Patient/p1", trap.url);
    let refusal = r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"at /srv/hapi/secret.properties line 3"}]}"#;
    let server = scripted::serve(vec![
        fixed("200 OK", &[fhir_json], &page),
        fixed("302 Found", &[("Location", &location)], ""),
        fixed("400 Bad Request", &[fhir_json], refusal),
    ])
    .await;
    let client =
        FhirClient::new(&server.url, ServerAuth::Bearer("secret".into()), Duration::from_secs(10)).unwrap();
    let e = client.all_pages("Patient").await.unwrap_err();
    assert!(matches!(e, ClientError::OtherOrigin { .. }), "{e}");
    let e = client.get("Patient/p1").await.unwrap_err();
    assert!(matches!(e, ClientError::Redirected { status: 302, .. }), "{e}");
    let e = client.get("Patient?name=x").await.unwrap_err().to_string();
    assert!(e.contains("400") && !e.contains("secret.properties"), "{e}");
    assert_eq!(server.arrivals().len(), 3);
    assert!(trap.arrivals().is_empty(), "a request left the server's origin");
}

/// The server's `Retry-After` is the wait, not an addition to the client's own backoff.
#[tokio::test(flavor = "multi_thread")]
async fn sync_waits_exactly_what_retry_after_asks() {
    let busy = fixed("429 Too Many Requests", &[("Retry-After", "1")], "");
    let patient = r#"{"resourceType":"Patient","id":"p1"}"#;
    let ok = fixed("200 OK", &[("Content-Type", "application/fhir+json")], patient);
    let server = scripted::serve(vec![busy, ok]).await;
    let client = FhirClient::new(&server.url, ServerAuth::None, Duration::from_secs(10)).unwrap();
    assert_eq!(client.get("Patient/p1").await.unwrap()["id"], "p1");
    let at = server.arrivals();
    assert_eq!(at.len(), 2);
    let waited = at[1] - at[0];
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1300), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_authenticates_and_reports_bad_servers() {
    let server = FhirServer::start(true);
    for f in SHARED {
        server.load(&read(f), Some(STATIC_TOKEN)).await;
    }
    server.load(&read(BOB_FILE), Some(STATIC_TOKEN)).await;
    let dir = tempfile::tempdir().unwrap();
    let base = server.base.as_str();
    // No token: refused, said plainly.
    let (ok, report, _) = sync(dir.path(), &["--server", base, "--patient", BOB, "--full"]);
    assert!(!ok);
    assert!(report["patients"][0]["error"].as_str().unwrap().contains("401"), "{report}");
    // A static token from a file.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, STATIC_TOKEN).unwrap();
    let (ok, report, err) = sync(
        dir.path(),
        &["--server", base, "--patient", BOB, "--full", "--token-file", token_file.to_str().unwrap()],
    );
    assert!(ok, "{err} {report}");
    assert!(report["resources"].as_u64().unwrap() > 200);
    // OAuth client credentials (the secret from the environment).
    let token_url = format!("{}/auth/token", server.root);
    let out = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["sync", "--format", "json", "--server", base, "--patient", BOB, "--full"])
        .args(["--client-id", "ehrqa-client", "--token-url", &token_url])
        .env("EHRQA_FHIR_CLIENT_SECRET", "ehrqa-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Nobody listening: a clear failure, nothing stored.
    let empty = tempfile::tempdir().unwrap();
    let (ok, report, _) = sync(
        empty.path(),
        &["--server", &format!("http://127.0.0.1:{}/fhir", free_port()), "--patient", BOB],
    );
    assert!(!ok);
    assert!(report["patients"][0]["error"].as_str().unwrap().contains("cannot reach"), "{report}");
    // Garbage instead of FHIR.
    let (port, _h) = garbage_server();
    let (ok, report, _) = sync(
        empty.path(),
        &["--server", &format!("http://127.0.0.1:{port}"), "--patient", BOB, "--no-everything"],
    );
    assert!(!ok);
    assert!(
        report["patients"][0]["error"].as_str().unwrap().contains("did not return FHIR JSON"),
        "{report}"
    );
    assert!(compartment(empty.path(), BOB).await.is_empty());
    // --all against a server that refuses us fails as a whole, in one line.
    let out = ehrqa(empty.path(), &["sync", "--server", base, "--all"]);
    assert!(!out.status.success());
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_runs_a_sync_job() {
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--no-auth", "--no-model", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--sync-server", &server.base])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ehrqa = Process { child };
    wait_for_port(port, Duration::from_secs(60));
    let api = format!("http://127.0.0.1:{port}");
    // A server it was not started with is refused before any request leaves: nothing connects.
    let trap = scripted::serve(vec![fixed("200 OK", &[], "{}")]).await;
    for other in [
        format!("{}/fhir", trap.url),
        format!("{}/../other", server.base),
        "http://169.254.169.254/latest".into(),
    ] {
        let r = reqwest::Client::new()
            .post(format!("{api}/v1/sync"))
            .json(&json!({"server": other, "patient": BOB}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN, "{other}");
    }
    assert!(trap.arrivals().is_empty(), "a request reached a server not named");
    let r = reqwest::Client::new()
        .post(format!("{api}/v1/sync"))
        .json(&json!({"server": server.base, "patient": BOB}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_u64().unwrap();
    let started = Instant::now();
    let done = loop {
        let j: Value = reqwest::get(format!("{api}/v1/jobs/{id}")).await.unwrap().json().await.unwrap();
        if j["state"] != "running" {
            break j;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "sync job did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["patients_done"], 1);
    assert_eq!(done["report"]["synced"], 1);
    let (st, _) = (reqwest::get(format!("{api}/v1/patients/{BOB}")).await.unwrap().status(), ());
    assert_eq!(st, reqwest::StatusCode::OK);
    // Served without a model: not ready; the synced record answers a computed question, and
    // one asked of the model alone gets 503 with an OperationOutcome.
    let r = reqwest::get(format!("{api}/readyz")).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let ask = |model_only: bool| {
        reqwest::Client::new()
            .post(format!("{api}/v1/patients/{BOB}/ask"))
            .json(&json!({"question": "What is his latest weight?", "model_only": model_only}))
            .send()
    };
    let a: Value = ask(false).await.unwrap().json().await.unwrap();
    assert_eq!((&a["method"], &a["model"]), (&json!("computed"), &json!("none")), "{a}");
    assert!(a["citations"][0]["ref"].as_str().unwrap().starts_with("Observation/"), "{a}");
    let r = ask(true).await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    // A bad request to the allowed server is refused before any job starts.
    let r = reqwest::Client::new()
        .post(format!("{api}/v1/sync"))
        .json(&json!({"server": server.base, "all": true, "patient": BOB}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
}
