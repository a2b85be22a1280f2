//! The OpenAPI document as tools take it: a standard validator (openapi-spec-validator) accepts
//! it, a well-kept generator (openapi-python-client) makes a client from it, and that client is
//! used against the running service. Both tools come from PyPI, installed by `scripts/setup`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{DONG, MERVIN};
use crate::server::start;

pub(crate) fn venv_tool(name: &str) -> std::path::PathBuf {
    let p = ehrqa::settings::default_cache_dir().join("venv-openapi/bin").join(name);
    assert!(p.exists(), "{} is missing: run scripts/setup", p.display());
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run tool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Every operation has a unique, descriptive id and states the shared error answers.
fn check_operations(doc: &Value) {
    let mut ids = std::collections::BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let id =
                op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                !["get", "post", "list", "start"].contains(&id),
                "{method} {path}: generic operationId {id}"
            );
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            let responses = op["responses"].as_object().unwrap();
            if path == "/healthz" {
                assert_eq!(op["security"], serde_json::json!([]), "/healthz needs no key");
                continue;
            }
            assert!(responses.contains_key("401"), "{method} {path} omits 401");
            if path.starts_with("/v1/patients/{id}") || path == "/v1/bundles" {
                assert!(responses.contains_key("403"), "{method} {path} omits 403");
            }
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("413"), "{method} {path} omits 413");
            }
            if path.ends_with("/ask") || path.ends_with("/draft") {
                assert!(responses.contains_key("429"), "{method} {path} omits 429");
            }
        }
    }
    assert!(ids.len() >= 20, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_validates_and_a_generated_client_works_against_the_service() {
    let s = start(&[]);
    let work = tempfile::tempdir().unwrap();
    let (_, doc) = s.get("/openapi.json", Some(&s.admin)).await;
    check_operations(&doc);
    let file = work.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let validated = run(Command::new(venv_tool("openapi-spec-validator")).arg(&file));
    assert!(validated.contains("OK"), "{validated}");

    let bin = venv_tool("openapi-python-client");
    let path = format!("{}:{}", bin.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let generated = run(Command::new(&bin)
        .args(["generate", "--meta", "none", "--overwrite", "--path"])
        .arg(&file)
        .arg("--output-path")
        .arg(work.path().join("ehrqa_client"))
        .env("PATH", &path)
        .current_dir(work.path()));
    assert!(!generated.contains("will not be generated"), "an endpoint was left out:\n{generated}");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openapi/use_client.py");
    let out = run(Command::new(venv_tool("python"))
        .arg(&script)
        .args([&s.base, &s.admin, &s.clinic, MERVIN])
        .env("PYTHONPATH", work.path()));
    let seen: Value =
        serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"));

    let patients: Vec<&str> = seen["patients"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(patients.contains(&MERVIN) && patients.contains(&DONG), "{patients:?}");
    assert_eq!(seen["scoped_patients"], serde_json::json!([DONG]));
    // The chart: his latest A1c as the record states it, the record it comes from, vitals.
    let a1c = &seen["chart"]["labs"]["4548-4"];
    assert_eq!((a1c["latest"].as_f64(), a1c["unit"].as_str()), (Some(6.2), Some("%")), "{seen}");
    let a1c_ref = a1c["ref"].as_str().unwrap();
    assert!(a1c_ref.starts_with("Observation/e8deca02"), "{a1c_ref}");
    assert!(seen["chart"]["vitals"].as_array().unwrap().iter().any(|c| c == "8480-6"), "systolic: {seen}");
    assert!(seen["record"].as_str().unwrap().contains("6.2 %"), "{seen}");
    // Two timeline pages: newest first, the second older than (or as old as) the first.
    let page =
        |k: &str| -> Vec<(String, String)> { serde_json::from_value(seen["timeline"][k].clone()).unwrap() };
    let (first, second) = (page("first"), page("second"));
    assert_eq!((first.len(), second.len()), (5, 5));
    assert!(first.windows(2).all(|w| w[0].1 >= w[1].1), "{first:?}");
    assert!(first.last().unwrap().1 >= second[0].1, "{first:?} then {second:?}");
    assert!(first.iter().all(|e| !second.contains(e)), "pages overlap");
    assert!(seen["search"].as_array().unwrap().iter().any(|r| r == a1c_ref), "{seen}");
    assert!(seen["answer"]["text"].as_str().unwrap().contains("6.2 %"), "{seen}");
    assert!(seen["answer"]["citations"].as_array().unwrap().iter().any(|r| r == a1c_ref), "{seen}");
    // A key scoped to Dong is refused Mervin's chart with an OperationOutcome; no key, 401.
    assert_eq!(seen["scoped_chart"], serde_json::json!({ "status": 403, "outcome": true }));
    assert_eq!(seen["anonymous_chart"]["status"], 401);
}
