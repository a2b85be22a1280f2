//! `ehrqa serve` started for real on a free loopback port, exercised with a real HTTP client:
//! every endpoint, auth (no key, wrong key, a key scoped to another patient), every error status,
//! Server-Sent Events, backpressure, metrics, the audit log and the OpenAPI document.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ehrqa, fixture, free_port, stderr, stdout, wait_for_port, Process, DONG, MERVIN};
use crate::pg::{postgres_requested, PgServer};

/// A running `ehrqa serve` and what a client needs to call it.
pub struct Service {
    _process: Process,
    pub base: String,
    /// A key for every patient.
    pub admin: String,
    /// A key for Dong only.
    pub clinic: String,
    pub dir: tempfile::TempDir,
    database_url: Option<String>,
    /// Stopped after the service (fields drop in order).
    _pg: Option<PgServer>,
}

fn key(dir: &Path, name: &str, patients: Option<&str>) -> (String, String) {
    let mut args = vec!["key", "new", "--name", name, "--format", "json"];
    if let Some(p) = patients {
        args.extend(["--patients", p]);
    }
    let v: Value = serde_json::from_str(&stdout(&ehrqa(dir, &args))).unwrap();
    (v["key"].as_str().unwrap().to_owned(), v["line"].as_str().unwrap().to_owned())
}

/// Fixture patients ingested, two keys (one for every patient, one for Dong only), the real
/// 270M model, one generation at a time and one waiting; on a PostgreSQL of its own when the
/// tests run with `EHRQA_TEST_BACKEND=postgres`.
pub fn start(extra: &[&str]) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let pg = postgres_requested().then(PgServer::start);
    let database_url = pg.as_ref().map_or_else(String::new, |pg| pg.url("postgres"));
    let ingest = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["ingest", fixture("fhir").to_str().unwrap()])
        .env("EHRQA_DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let (admin, admin_line) = key(dir.path(), "admin", None);
    let (clinic, clinic_line) = key(dir.path(), "clinic", Some(DONG));
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("# test keys\n{admin_line}\n{clinic_line}\n")).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--max-input-bytes", "1000000", "serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--api-keys")
        .arg(&keys)
        .args(["--concurrent-generations", "1", "--queue", "1", "--budget", "1024", "--max-tokens", "24"])
        .args(extra)
        .env_remove("EHRQA_API_KEY")
        .env("EHRQA_DATABASE_URL", &database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ehrqa serve");
    wait_for_port(port, Duration::from_secs(60));
    let base = format!("http://127.0.0.1:{port}");
    let database_url = pg.as_ref().map(|_| database_url);
    Service { _process: Process { child }, base, admin, clinic, dir, database_url, _pg: pg }
}

impl Service {
    /// The service's store, opened beside it (to read what it wrote).
    pub async fn store(&self) -> ehrqa::store::Store {
        ehrqa::store::Store::open(self.dir.path(), self.database_url.as_deref()).await.unwrap()
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut rb = reqwest::Client::new().get(format!("{}{path}", self.base));
        if let Some(k) = key {
            rb = rb.bearer_auth(k);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn metrics(&self) -> String {
        let r = reqwest::Client::new()
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await;
        r.unwrap().text().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

pub fn is_outcome(v: &Value) -> bool {
    v["resourceType"] == "OperationOutcome"
        && v["issue"][0]["diagnostics"].as_str().is_some_and(|d| !d.is_empty())
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_auth_and_errors() {
    let s = start(&[]);
    let admin = Some(s.admin.as_str());
    // Liveness needs no key; everything else does.
    let r = reqwest::get(format!("{}/healthz", s.base)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for key in [None, Some("wrong-key")] {
        let r = reqwest::Client::new().get(format!("{}/v1/patients", s.base));
        let r = match key {
            Some(k) => r.bearer_auth(k),
            None => r,
        };
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        assert!(is_outcome(&r.json().await.unwrap()));
    }
    let (st, ready) = s.get("/readyz", admin).await;
    assert_eq!(st, StatusCode::OK, "{ready}");
    assert_eq!(ready["model"], "gemma-3-270m-q4_k_m.gguf");

    // Patients: the clinic key sees Dong only.
    let (_, all) = s.get("/v1/patients", admin).await;
    assert!(all.as_array().unwrap().len() >= 5);
    let (_, mine) = s.get("/v1/patients", Some(&s.clinic)).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["id"], DONG);
    let (st, v) = s.get(&format!("/v1/patients/{MERVIN}"), Some(&s.clinic)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(is_outcome(&v));
    let (st, sum) = s.get(&format!("/v1/patients/{MERVIN}"), admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sum["name"], "Mervin Gaylord");
    assert!(sum["counts"]["Observation"].as_i64().unwrap() > 100);
    assert!(sum["first_date"].as_str().unwrap() < sum["last_date"].as_str().unwrap());
    assert!(!sum["active_problems"].as_array().unwrap().is_empty());
    let (st, v) = s.get("/v1/patients/nobody", admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(is_outcome(&v));
    let (st, _) = s.get("/v1/patients/bad%20id", admin).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Records, paged: pages do not overlap, and the last has no cursor.
    let path = format!("/v1/patients/{MERVIN}/records?q=hemoglobin%20a1c&type=Observation&limit=3");
    let (st, p1) = s.get(&path, admin).await;
    assert_eq!(st, StatusCode::OK);
    let cursor = p1["next_cursor"].as_str().expect("more pages");
    let (_, p2) = s.get(&format!("{path}&cursor={cursor}"), admin).await;
    let refs = |p: &Value| {
        p["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["ref"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(refs(&p1).len(), 3);
    assert!(refs(&p2).iter().all(|r| !refs(&p1).contains(r)));
    let (_, dated) = s
        .get(
            &format!("/v1/patients/{MERVIN}/records?type=Observation&from=1980&to=1980-12-31&limit=200"),
            admin,
        )
        .await;
    for h in dated["results"].as_array().unwrap() {
        assert!(h["date"].as_str().unwrap().starts_with("1980"), "{h}");
    }
    for bad in ["limit=0", "limit=500", "type=Nonsense", "from=yesterday", "cursor=abc"] {
        let (st, v) = s.get(&format!("/v1/patients/{MERVIN}/records?{bad}"), admin).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert!(is_outcome(&v));
    }

    // A citation opens as the stored FHIR resource, under its own patient only.
    let obs = &refs(&p1)[0];
    let (st, raw) = s.get(&format!("/v1/patients/{MERVIN}/resources/{obs}"), admin).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(format!("{}/{}", raw["resourceType"].as_str().unwrap(), raw["id"].as_str().unwrap()), *obs);
    let (st, _) = s.get(&format!("/v1/patients/{DONG}/resources/{obs}"), admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Context: the CLI's JSON.
    let r = s
        .post(
            &format!("/v1/patients/{MERVIN}/context"),
            &s.admin,
            serde_json::json!({"question": "latest A1c?", "budget": 512}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let ctx: Value = r.json().await.unwrap();
    assert!(ctx["tokens"].as_u64().unwrap() <= 512 && !ctx["items"].as_array().unwrap().is_empty());
    for (body, want) in [
        (serde_json::json!({"question": "x", "budget": 10}), StatusCode::BAD_REQUEST),
        (serde_json::json!({"question": ""}), StatusCode::BAD_REQUEST),
        (serde_json::json!({"nothing": 1}), StatusCode::BAD_REQUEST),
    ] {
        let r = s.post(&format!("/v1/patients/{MERVIN}/context"), &s.admin, body).await;
        assert_eq!(r.status(), want);
        assert!(is_outcome(&r.json().await.unwrap()));
    }

    // Bundles: all-or-nothing, refused with the right status, writes need an all-patients key.
    let post_raw = |body: Vec<u8>, ct: &'static str, key: String| {
        let url = format!("{}/v1/bundles", s.base);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let bundle = std::fs::read(fixture("answer/injection.json")).unwrap();
    let r = post_raw(bundle.clone(), "application/fhir+json", s.clinic.clone()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post_raw(bundle, "application/fhir+json", s.admin.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["by_type"]["Patient"], 1);
    assert_eq!(report["by_type"]["DocumentReference"], 1);
    assert_eq!(s.get("/v1/patients/inj-1", admin).await.0, StatusCode::OK);
    let ndjson = std::fs::read(fixture("fhir/edge/bulk/Patient.ndjson")).unwrap();
    let r = post_raw(ndjson, "application/fhir+ndjson", s.admin.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    for (body, ct, want) in [
        (b"{\"a\": 1}".to_vec(), "application/fhir+json", StatusCode::UNPROCESSABLE_ENTITY),
        (b"garbage".to_vec(), "application/fhir+json", StatusCode::UNPROCESSABLE_ENTITY),
        (vec![b' '; 1_500_000], "application/fhir+json", StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let r = post_raw(body, ct, s.admin.clone()).await;
        assert_eq!(r.status(), want);
        assert!(is_outcome(&r.json().await.unwrap()));
    }

    // Unknown endpoints and jobs.
    let (st, v) = s.get("/v1/nothing-here", admin).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(is_outcome(&v));
    assert_eq!(s.get("/v1/jobs/12345", admin).await.0, StatusCode::NOT_FOUND);

    // Every path the OpenAPI document names is served (none falls through to "no such endpoint").
    let (_, doc) = s.get("/openapi.json", admin).await;
    assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 13, "{:?}", paths.keys());
    for (path, ops) in paths {
        let url = path
            .replace("{id}", MERVIN)
            .replace("{type}", obs.split('/').next().unwrap())
            .replace("{rid}", obs.split('/').nth(1).unwrap());
        for method in ops.as_object().unwrap().keys() {
            let rb = match method.as_str() {
                "get" => reqwest::Client::new().get(format!("{}{url}", s.base)),
                "post" => {
                    reqwest::Client::new().post(format!("{}{url}", s.base)).json(&serde_json::json!({}))
                }
                "put" => reqwest::Client::new().put(format!("{}{url}", s.base)).json(&serde_json::json!({})),
                m => panic!("unexpected method {m}"),
            };
            let r = rb.bearer_auth(&s.admin).send().await.unwrap();
            let body = r.text().await.unwrap();
            assert!(!body.contains("no such endpoint"), "{method} {path} is documented but not served");
        }
    }

    // Metrics by route template; no patient id in them.
    let metrics = s.metrics().await;
    assert!(metrics.contains("route=\"/v1/patients/{id}/records\",status=\"400\""), "{metrics}");
    assert!(metrics.contains("ehrqa_ingested_resources_total"));
    assert!(!metrics.contains(MERVIN));

    // The audit log names who asked about whom (in the database only).
    let store = s.store().await;
    let rows: Vec<(String, String, Option<String>)> =
        crate::db!(store, |p| sqlx::query_as("SELECT key_name, action, patient FROM audit ORDER BY id")
            .fetch_all(p)
            .await
            .unwrap());
    assert!(rows.contains(&("admin".into(), "context".into(), Some(MERVIN.into()))), "{rows:?}");
    assert!(rows.iter().any(|r| r.1 == "ingest"));
}

/// Splits an SSE body into (event, data).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let ev = b.lines().find_map(|l| l.strip_prefix("event: ")).unwrap().to_owned();
            let data = b.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (ev, serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_streams_and_pushes_back() {
    let s = start(&[]);
    let ask = |accept: &'static str, key: String| {
        let url = format!("{}/v1/patients/{MERVIN}/ask", s.base);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("accept", accept)
                // To the model, even though the computed facts answer it: this tests streaming
                // and backpressure of generations.
                .json(&serde_json::json!({"question": "What was his latest hemoglobin A1c?", "model_only": true}))
                .send()
                .await
                .unwrap()
        }
    };
    // Streamed: tokens, then the checked answer last.
    let r = ask("text/event-stream", s.admin.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let evs = events(&r.text().await.unwrap());
    let (last, answer) = evs.last().unwrap();
    assert_eq!(last, "answer");
    assert!(evs[..evs.len() - 1].iter().all(|(e, d)| e == "token" && d["text"].is_string()));
    assert!(evs.len() >= 2, "no tokens streamed");
    assert!(answer["notice"].as_str().unwrap().starts_with("Not for clinical use"));
    for c in answer["citations"].as_array().unwrap() {
        let r = c["ref"].as_str().unwrap();
        let (st, _) = s.get(&format!("/v1/patients/{MERVIN}/resources/{r}"), Some(&s.admin)).await;
        assert_eq!(st, StatusCode::OK, "{r} is not Mervin's");
    }
    // Plain JSON, and a patient outside the key's scope.
    let r = ask("application/json", s.admin.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let a: Value = r.json().await.unwrap();
    assert!(a["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(ask("application/json", s.clinic.clone()).await.status(), StatusCode::FORBIDDEN);

    // One running, one waiting, the rest refused with Retry-After; search stays responsive.
    let running: Vec<_> = (0..4).map(|_| tokio::spawn(ask("application/json", s.admin.clone()))).collect();
    let (st, _) = s.get(&format!("/v1/patients/{MERVIN}/records?q=glucose"), Some(&s.admin)).await;
    assert_eq!(st, StatusCode::OK);
    let mut ok = 0;
    let mut busy = 0;
    for h in running {
        let r = h.await.unwrap();
        match r.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
                assert!(is_outcome(&r.json().await.unwrap()));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(ok >= 1 && busy >= 1, "{ok} answered, {busy} refused");

    // A streaming client that goes away frees its slot: the next question is answered.
    let mut r = ask("text/event-stream", s.admin.clone()).await;
    let _first = r.chunk().await.unwrap();
    drop(r);
    let r = ask("application/json", s.admin.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let metrics = s.metrics().await;
    assert!(metrics.contains("ehrqa_generation_queue_depth 0"));
    assert!(!metrics.contains("ehrqa_generated_tokens_total 0\n"));
}

#[test]
fn refuses_to_serve_openly_beyond_loopback_or_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = ehrqa(dir.path(), &["serve", "--bind", "0.0.0.0:0", "--no-auth", "--no-model"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only allowed on a loopback"));
    let out = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--no-model"])
        .env_remove("EHRQA_API_KEY")
        .env_remove("EHRQA_API_KEYS_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no API keys"));
}

/// Metrics labels come from bounded sets whatever clients send: 50 made-up methods, on a route
/// and on 50 different unmatched paths, add no series (each would be kept for the life of the
/// process).
#[tokio::test(flavor = "multi_thread")]
async fn odd_methods_and_paths_do_not_grow_the_metrics() {
    let s = start(&["--no-model"]);
    let send = |i: usize| {
        let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        let client = reqwest::Client::new();
        let (matched, unmatched) = (format!("{}/v1/patients", s.base), format!("{}/nowhere-{i}", s.base));
        let admin = s.admin.clone();
        async move {
            for url in [matched, unmatched] {
                client.request(method.clone(), url).bearer_auth(&admin).send().await.unwrap();
            }
        }
    };
    let series = |t: &str| t.lines().filter(|l| l.starts_with("ehrqa_http_")).count();
    send(0).await;
    s.metrics().await; // so that `GET /metrics` is among the series already
    let before = s.metrics().await;
    for i in 1..50 {
        send(i).await;
    }
    let after = s.metrics().await;
    assert_eq!(series(&after), series(&before), "{after}");
    assert!(!after.contains("X1") && !after.contains("nowhere"), "{after}");
    let other = after.lines().filter(|l| l.starts_with("ehrqa_http_requests_total{method=\"other\""));
    assert_eq!(other.map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap()).sum::<u64>(), 100);
    assert!(after.contains("method=\"other\",route=\"unmatched\""), "{after}");
}

/// Key names are identities for people and must be unique: `ehrqa serve` refuses a keys file
/// naming two keys alike, with one line saying which, and `ehrqa key new --keys` will not make
/// the second.
#[test]
fn refuses_two_keys_with_one_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_, admin) = key(dir.path(), "admin", None);
    let (_, lookalike) = key(dir.path(), "admin", Some(DONG));
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{admin}\n{lookalike}\n")).unwrap();
    let log = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0", "--no-model", "--api-keys"])
        .arg(&keys)
        .env_remove("EHRQA_API_KEY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut p = Process { child };
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "serve started with two keys named admin");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let err = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        err.trim_end(),
        "error: API keys: the name \"admin\" is given to two keys (line 1 and line 2); key names must be unique"
    );
    std::fs::write(&keys, format!("{admin}\n")).unwrap();
    let new = |name: &str| {
        ehrqa(
            dir.path(),
            &["key", "new", "--name", name, "--keys", keys.to_str().unwrap(), "--format", "json"],
        )
    };
    let taken = new("admin");
    assert!(!taken.status.success());
    assert!(stderr(&taken).contains("already has a key named \"admin\""), "{}", stderr(&taken));
    assert!(new("ops").status.success());
}

/// `serve --no-model` still answers what the record's computed facts answer, from the record,
/// and refuses with 503 (before any stream begins) only what needs a model: a question the
/// facts do not answer, `model_only`, a draft.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_without_a_model_answers_from_the_facts_and_refuses_the_rest() {
    let s = start(&["--no-model"]);
    let ask = |question: &str, model_only: bool, stream: bool| {
        let mut rb = reqwest::Client::new()
            .post(format!("{}/v1/patients/{MERVIN}/ask", s.base))
            .bearer_auth(&s.admin)
            .json(&serde_json::json!({"question": question, "model_only": model_only}));
        if stream {
            rb = rb.header("Accept", "text/event-stream");
        }
        rb.send()
    };
    let r = ask("What was his latest hemoglobin A1c?", false, false).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let a: Value = r.json().await.unwrap();
    assert_eq!(
        (&a["method"], &a["model"], &a["answerable"]),
        (&"computed".into(), &"none".into(), &true.into())
    );
    assert!(a["notice"].as_str().unwrap().to_lowercase().contains("not for clinical use"), "{a}");
    // The answer cites the patient's latest A1c, as the store orders them.
    let store = s.store().await;
    let latest = "SELECT type, id, text FROM resources \
                  WHERE patient_id = $1 AND code = '4548-4' ORDER BY ts DESC LIMIT 1";
    let (rtype, id, text): (String, String, String) =
        crate::db!(store, |p| sqlx::query_as(latest).bind(MERVIN).fetch_one(p).await).unwrap();
    assert_eq!(a["citations"][0]["ref"], format!("{rtype}/{id}"), "{a}");
    assert_eq!(a["citations"][0]["text"], text.as_str());
    // Streamed, the same answer arrives as the last event.
    let r = ask("What was his latest hemoglobin A1c?", false, true).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.contains("event: answer") && body.contains(&format!("{rtype}/{id}")), "{body}");
    // What needs the model is refused with an OperationOutcome, streamed or not.
    for (question, model_only, stream) in [
        ("What does his record say about smoking?", false, false),
        ("What does his record say about smoking?", false, true),
        ("What was his latest hemoglobin A1c?", true, false),
    ] {
        let r = ask(question, model_only, stream).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{question} (model_only {model_only})");
        let outcome: Value = r.json().await.unwrap();
        assert!(is_outcome(&outcome), "{outcome}");
        assert!(outcome["issue"][0]["diagnostics"].as_str().unwrap().contains("no model is loaded"));
    }
    let visits =
        "SELECT id FROM resources WHERE patient_id = $1 AND type = 'Encounter' AND ts IS NOT NULL LIMIT 1";
    let eid: String =
        crate::db!(store, |p| sqlx::query_scalar(visits).bind(MERVIN).fetch_one(p).await).unwrap();
    let r = s
        .post(&format!("/v1/patients/{MERVIN}/encounters/{eid}/draft"), &s.admin, serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}
