//! The SMART App Launch end to end in Chromium: `ehrqa serve --smart-client FILE` with API keys
//! required, launched from an EHR (and standalone) through a real authorization server
//! (oidc-provider, tests/smart/authz.mjs) in front of sekmet-fhir. The browser lands on the
//! launched patient's chart, which was synced with the launch's token; the session reads that
//! patient only; no token reaches the page; replayed, forged, declined and unregistered launches
//! are refused. The browser side is tests/smart/launch.test.mjs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{ehrqa, fixture, free_port, stdout, wait_for_port, Process, DONG};
use crate::sync::{read, FhirServer, BOB, BOB_FILE, SHARED};

#[tokio::test(flavor = "multi_thread")]
async fn an_ehr_launch_lands_on_the_patients_chart_with_a_session_for_that_patient_only() {
    let modules = ehrqa::settings::default_cache_dir().join("node-page/node_modules");
    assert!(
        modules.join("oidc-provider").exists(),
        "{} lacks oidc-provider: run scripts/setup",
        modules.display()
    );
    let server = FhirServer::start(false);
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), None).await;
    }
    let dir = tempfile::tempdir().unwrap();
    // ehrqa already holds another patient; the launch must not open it.
    assert!(ehrqa(
        dir.path(),
        &["ingest", fixture("fhir/synthea/Dong_Effertz_a8f87e52.json").to_str().unwrap()]
    )
    .status
    .success());
    let made: Value = serde_json::from_str(&stdout(&ehrqa(
        dir.path(),
        &["key", "new", "--name", "admin", "--format", "json"],
    )))
    .unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{}\n", made["line"].as_str().unwrap())).unwrap();

    let (authz_port, ehrqa_port) = (free_port(), free_port());
    let authz = format!("http://127.0.0.1:{authz_port}");
    let iss = format!("{authz}/fhir");
    let base = format!("http://127.0.0.1:{ehrqa_port}");
    let clients = dir.path().join("smart-clients.json");
    let registration =
        json!([{"issuer": iss, "client_id": "ehrqa", "redirect_uri": format!("{base}/smart/callback")}]);
    std::fs::write(&clients, registration.to_string()).unwrap();

    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smart");
    let provider = Command::new("node")
        .arg(here.join("authz.mjs"))
        .env("AUTHZ_PORT", authz_port.to_string())
        .env("FHIR_UPSTREAM", &server.base)
        .env("REDIRECT_URI", format!("{base}/smart/callback"))
        .env("LAUNCH_PATIENT", BOB)
        .env("EHRQA_NODE_MODULES", &modules)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _provider = Process { child: provider };
    wait_for_port(authz_port, Duration::from_secs(30));
    let service = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--no-model", "--bind", &format!("127.0.0.1:{ehrqa_port}")])
        .arg("--api-keys")
        .arg(&keys)
        .arg("--smart-client")
        .arg(&clients)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _service = Process { child: service };
    wait_for_port(ehrqa_port, Duration::from_secs(60));

    let out = crate::page::screenshots();
    let run = Command::new("node")
        .arg(here.join("launch.test.mjs"))
        .env("EHRQA_URL", &base)
        .env("EHRQA_ISS", &iss)
        .env("AUTHZ_URL", &authz)
        .env("EHRQA_PATIENT", BOB)
        .env("EHRQA_OTHER", DONG)
        .env("EHRQA_OUT", &out)
        .env("EHRQA_NODE_MODULES", &modules)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the launch test failed:\n{text}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();

    // Both launches land on Bob's chart; the session reads Bob, and only Bob.
    for launch in ["ehr", "standalone"] {
        assert!(seen[format!("{launch}_banner")].as_str().unwrap().starts_with("Bob"), "{seen}");
        let api = &seen[format!("{launch}_api")];
        assert_eq!(api["own"], 200, "{seen}");
        assert_eq!(api["other"], 403, "{seen}");
        assert_eq!(api["listed"], json!([BOB]), "{seen}");
        assert_eq!(api["sync"], 403, "a session cannot start syncs: {seen}");
    }
    // The record came from the FHIR server with the launches' tokens.
    assert!(seen["fhir_requests"].as_u64().unwrap() >= 2, "{seen}");
    assert_eq!(seen["fhir_tokens"], 2, "each launch synced with its own token: {seen}");
    // A used state, a forged one, and an issuer not registered: refused, with no redirect.
    assert_eq!(seen["replay"], 400, "{seen}");
    assert_eq!(seen["forged"], 400, "{seen}");
    assert_eq!(seen["stranger"], 403, "{seen}");
    assert!(seen["stranger_location"].is_null(), "{seen}");
    assert_eq!(seen["declined"]["status"], 403, "{seen}");
    assert!(seen["declined"]["text"].as_str().unwrap().contains("access_denied"), "{seen}");

    // Without the session: the API still wants a key.
    let r = reqwest::get(format!("{base}/v1/patients/{BOB}")).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The launch is in the audit log.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("ehrqa.sqlite").display()))
        .await
        .unwrap();
    let launches: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE action = 'smart-launch' AND patient = ?")
            .bind(BOB)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(launches, 2);
}
