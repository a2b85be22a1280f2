//! SMART Backend Services against sekmet-fhir with `smart` auth: the server holds the JWKS that
//! `ehrqa key jwks` printed for an ES384 key (made by `ehrqa key signing`) and an RS384 key (made
//! by `openssl`), checks each client assertion's signature, audience, lifetime and `jti`, and
//! grants `system/*.rs`. Syncs patient by patient and in bulk work with either key; one token
//! serves a whole sync; an unregistered key is refused with an error that says what to check.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ehrqa::sync::signing::SigningKey;
use ehrqa::sync::{FhirClient, ServerAuth};
use serde_json::Value;

use crate::helpers::{ehrqa, stderr, stdout};
use crate::sync::{read, sync, FhirServer, BOB, BOB_FILE, SHARED, STATIC_TOKEN};

/// Two clients, one key each: sekmet-fhir 0.1.1 answers 500 when it tries an EC key of a
/// client's set on an RS384 assertion (PyJWT raises a TypeError it does not catch).
const CLIENT: &str = "ehrqa-backend";
const RSA_CLIENT: &str = "ehrqa-backend-rsa";

fn es384_key(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let out = ehrqa(dir, &["key", "signing", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed["keys"][0]["alg"], "ES384");
    // Made once: a second run may not overwrite the key.
    assert!(!ehrqa(dir, &["key", "signing", "--out", path.to_str().unwrap()]).status.success());
    path.to_str().unwrap().to_owned()
}

fn rs384_key(dir: &Path) -> String {
    let path = dir.join("rsa.pem");
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
        .arg(&path)
        .output()
        .expect("openssl (scripts/setup installs it)");
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    path.to_str().unwrap().to_owned()
}

fn jwks(dir: &Path, keys: &[&str]) -> Value {
    let mut args = vec!["key", "jwks"];
    for k in keys {
        args.extend(["--private-key", k]);
    }
    let out = ehrqa(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_services_sign_in_with_a_registered_key_and_only_with_it() {
    let keys = tempfile::tempdir().unwrap();
    let es = es384_key(keys.path(), "es.pem");
    let rs = rs384_key(keys.path());
    let stranger = es384_key(keys.path(), "stranger.pem");
    let both = jwks(keys.path(), &[&es, &rs]);
    let algs: Vec<&str> =
        both["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    assert_eq!(algs, ["ES384", "RS384"]);
    let clients = format!(
        "{{client_id: {CLIENT}, jwks: {}, scopes: \"system/*.rs\"}}, {{client_id: {RSA_CLIENT}, jwks: {}, scopes: \"system/*.rs\"}}",
        jwks(keys.path(), &[&es]),
        jwks(keys.path(), &[&rs]),
    );
    let server = FhirServer::start_with(Some(&clients));
    for f in SHARED.iter().chain([&BOB_FILE]) {
        server.load(&read(f), Some(STATIC_TOKEN)).await;
    }
    let base = server.base.as_str();

    // Patient by patient with the EC key; the token endpoint comes from the SMART configuration.
    let dir = tempfile::tempdir().unwrap();
    let (ok, report, err) =
        sync(dir.path(), &["--server", base, "--patient", BOB, "--client-id", CLIENT, "--private-key", &es]);
    assert!(ok, "{err} {report}");
    assert!(report["resources"].as_u64().unwrap() > 200, "{report}");

    // In bulk with the RSA key: kick-off, status, downloads (requiresAccessToken) and delete.
    let bulk = tempfile::tempdir().unwrap();
    let (ok, report, err) = sync(
        bulk.path(),
        &["--server", base, "--bulk", "--all", "--client-id", RSA_CLIENT, "--private-key", &rs],
    );
    assert!(ok, "{err} {report}");
    assert!(report["resources"].as_u64().unwrap() > 200, "{report}");

    // A key the server does not hold: refused, and the error says what to check.
    let (ok, report, err) = sync(
        tempfile::tempdir().unwrap().path(),
        &["--server", base, "--patient", BOB, "--client-id", CLIENT, "--private-key", &stranger],
    );
    assert!(!ok);
    let error = report["patients"][0]["error"].as_str().unwrap_or(&err).to_owned();
    assert!(error.contains("invalid_client") && error.contains("ehrqa key jwks"), "{error} {report}");
    // The server's description of the failure is not repeated.
    assert!(!error.contains("verification failed"), "{error}");

    // A client id the server does not know, and scopes it does not grant.
    let (ok, report, _) = sync(
        tempfile::tempdir().unwrap().path(),
        &["--server", base, "--patient", BOB, "--client-id", "nobody", "--private-key", &es],
    );
    assert!(!ok && report["patients"][0]["error"].as_str().unwrap().contains("invalid_client"), "{report}");
    let (ok, report, _) = sync(
        tempfile::tempdir().unwrap().path(),
        &[
            "--server",
            base,
            "--patient",
            BOB,
            "--client-id",
            CLIENT,
            "--private-key",
            &es,
            "--scope",
            "user/*.rs",
        ],
    );
    assert!(!ok && report["patients"][0]["error"].as_str().unwrap().contains("invalid_scope"), "{report}");

    // One token serves many requests: each page and resource read here reuses it.
    let key = SigningKey::load(Path::new(&es), None).unwrap();
    let auth =
        ServerAuth::Backend { client_id: CLIENT.into(), key: Arc::new(key), token_url: None, scope: None };
    let fhir = FhirClient::new(base, auth, Duration::from_secs(30)).unwrap();
    let pages = fhir.all_pages(&format!("Observation?patient={BOB}&_count=5")).await.unwrap();
    assert!(pages.len() > 20, "{} observations, 5 a page", pages.len());
    assert_eq!(fhir.tokens_fetched(), 1);
}
