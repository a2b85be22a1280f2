//! One writer per data directory, and what survives its death: a second process that wants to
//! write is refused at once (the CLI) or answered 503 with `Retry-After` (the API) while readers
//! keep working; a running service sees what another process ingested; SIGKILL at any moment,
//! SIGTERM and a full disk leave every input whole or absent, as `ehrqa check` verifies.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ehrqa::ingest::Workspace;
use ehrqa::Settings;
use serde_json::Value;

use crate::helpers::{ehrqa, fixture, free_port, stderr, stdout, wait_for_port, Process, DONG};

/// `ehrqa serve` without auth or model on `dir`.
fn serve(dir: &Path, extra: &[&str]) -> (Process, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--no-auth", "--no-model", "--bind", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ehrqa serve");
    wait_for_port(port, Duration::from_secs(60));
    (Process { child }, format!("http://127.0.0.1:{port}"))
}

fn inputs() -> Vec<String> {
    ["fhir/synthea", "fhir/synthea-java", "fhir/edge"]
        .iter()
        .map(|f| fixture(f).to_str().unwrap().to_owned())
        .collect()
}

/// `ehrqa check` over the fixture inputs, as JSON; panics with its output when it fails.
fn check(dir: &Path) -> Value {
    let mut args = vec!["--format", "json", "check"];
    let inputs = inputs();
    args.extend(inputs.iter().map(String::as_str));
    let out = ehrqa(dir, &args);
    let report: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}): {}", stderr(&out)));
    assert!(out.status.success(), "check failed: {report:#}");
    report
}

fn ingest_all(dir: &Path) -> std::process::Output {
    let mut args = vec!["ingest", "--no-transcribe"];
    let inputs = inputs();
    args.extend(inputs.iter().map(String::as_str));
    ehrqa(dir, &args)
}

/// Holds the data directory's write lock in this (test) process, as another ehrqa would.
async fn hold_writer(dir: &Path) -> Workspace {
    Workspace::open(Settings::new(dir)).await.expect("open workspace")
}

#[tokio::test]
async fn a_second_writer_is_refused_at_once_while_readers_keep_working() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ingest_all(dir.path()).status.success());
    let ws = hold_writer(dir.path()).await;
    let writing = ws.writing().await.expect("the first writer enters");
    let started = Instant::now();
    let second = ingest_all(dir.path());
    assert!(!second.status.success(), "a second writer must not write");
    assert!(started.elapsed() < Duration::from_secs(20), "refused at once, not after a wait");
    let err = stderr(&second);
    let pid = std::process::id().to_string();
    assert!(
        err.contains("another ehrqa process") && err.contains(&pid),
        "clear error naming the holder: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    let patients = ehrqa(dir.path(), &["--format", "json", "patients"]);
    assert!(patients.status.success(), "readers keep working: {}", stderr(&patients));
    let search = ehrqa(dir.path(), &["--format", "json", "search", "--patient", DONG, "blood pressure"]);
    let hits: Value = serde_json::from_str(&stdout(&search)).unwrap();
    assert!(!hits["results"].as_array().unwrap().is_empty());
    drop(writing);
    assert!(ingest_all(dir.path()).status.success(), "the lock goes with its holder");
}

#[tokio::test]
async fn the_service_sees_what_another_process_ingested_and_answers_503_while_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (_service, base) = serve(dir.path(), &["--write-wait", "0.3"]);
    let client = reqwest::Client::new();
    assert!(ingest_all(dir.path()).status.success(), "the CLI ingests beside the service");
    let url = format!("{base}/v1/patients/{DONG}/records?q=blood%20pressure");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        if v["results"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the service never saw the CLI's ingest: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ws = hold_writer(dir.path()).await;
    let writing = ws.writing().await.unwrap();
    let bundle = std::fs::read(fixture("fhir/edge/searchset.json")).unwrap();
    let post = || {
        client
            .post(format!("{base}/v1/bundles"))
            .header("content-type", "application/fhir+json")
            .body(bundle.clone())
            .send()
    };
    let busy = post().await.unwrap();
    assert_eq!(busy.status(), 503, "a write while another process writes");
    assert!(busy.headers().get("retry-after").is_some(), "with Retry-After");
    let outcome: Value = busy.json().await.unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let read = client.get(format!("{base}/v1/patients")).send().await.unwrap();
    assert_eq!(read.status(), 200, "reads go on");
    drop(writing);
    assert_eq!(post().await.unwrap().status(), 200, "and the retry succeeds");
}

/// Kills an ingest at several moments of its run; after each, the directory checks out and a
/// re-run completes with the index in step. (`tools/crash-test` does this 100 times, with the
/// service too.)
#[test]
fn sigkill_during_ingest_leaves_every_input_whole_or_absent() {
    for (trial, after_ms) in [40u64, 150, 400, 900, 1600].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["ingest", "--no-transcribe"])
            .args(inputs())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(after_ms));
        let _ = child.kill();
        let _ = child.wait();
        let report = check(dir.path());
        assert_ne!(report["index"]["state"], "ahead", "trial {trial}: {report:#}");
        assert!(ingest_all(dir.path()).status.success(), "trial {trial}: the re-run completes");
        let after = check(dir.path());
        assert_eq!(after["index"]["state"], "in_step", "trial {trial}: {after:#}");
        assert!(after["inputs"].as_array().unwrap().iter().all(|i| i["state"] == "whole"), "{after:#}");
    }
}

#[tokio::test]
async fn sigterm_stops_the_service_cleanly_between_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (mut service, base) = serve(dir.path(), &[]);
    let body = std::fs::read(fixture("fhir/synthea/Dong_Effertz_a8f87e52.json")).unwrap();
    let posted = reqwest::Client::new()
        .post(format!("{base}/v1/bundles"))
        .header("content-type", "application/fhir+json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let status = terminate(&mut service.child);
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");
    let report = check(dir.path());
    assert_eq!(report["index"]["state"], "in_step", "{report:#}");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: sends a signal to a child process this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < deadline, "the service did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A data directory on a 2 MB tmpfs (root only: CI runs as root): the ingest fails with a clear
/// error and every input is whole or absent.
#[test]
fn a_full_disk_fails_the_ingest_cleanly() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mount.path())
        .status()
        .expect("run mount");
    assert!(mounted.success(), "this test mounts a small tmpfs and needs root (CI runs as root)");
    let dir = mount.path().join("data");
    let out = ingest_all(&dir);
    let err = stderr(&out);
    let ok = check(&dir);
    let _ = Command::new("umount").arg(mount.path()).status();
    assert!(!out.status.success(), "2 MB cannot hold the fixtures");
    assert!(err.contains("full") || err.contains("space"), "says the disk is full: {err}");
    assert!(ok["inputs"].as_array().unwrap().iter().all(|i| i["state"] != "partial"), "{ok:#}");
}

/// The database commits while the index prepares its commit (`ingest::pipeline`), so an index
/// that fails then leaves a stored group behind it. An index on a 768 KB tmpfs (the fixtures'
/// segments need about 1 MB; the stored documents, written as they come, fit) fails there: the
/// ingest says the inputs are stored and the index behind, every input is whole, and the next
/// process to open the data directory with room again brings the index in step.
#[test]
fn an_index_that_cannot_commit_leaves_the_inputs_stored_and_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    std::fs::create_dir_all(&index).unwrap();
    let mount = |args: &[&str]| Command::new("mount").args(args).arg(&index).status().expect("run mount");
    assert!(
        mount(&["-t", "tmpfs", "-o", "size=768k", "tmpfs"]).success(),
        "this test mounts a small tmpfs and needs root (CI runs as root)"
    );
    let out = ingest_all(dir.path());
    let grown = mount(&["-o", "remount,size=64m"]);
    let behind = check(dir.path());
    let reopened = ehrqa(dir.path(), &["patients"]);
    let after = check(dir.path());
    let _ = Command::new("umount").arg(&index).status();
    assert!(grown.success());
    assert!(!out.status.success(), "the index could not commit");
    assert!(stderr(&out).contains("stored, but the search index could not be updated"), "{}", stderr(&out));
    assert_eq!(behind["index"]["state"], "behind", "{behind:#}");
    let stored = behind["database"]["resources"].as_u64().unwrap();
    assert!(stored > 0);
    assert_eq!(behind["index"]["missing"].as_u64(), Some(stored), "{behind:#}");
    assert!(behind["inputs"].as_array().unwrap().iter().all(|i| i["state"] == "whole"), "{behind:#}");
    assert!(reopened.status.success(), "{}", stderr(&reopened));
    assert_eq!(after["index"]["state"], "in_step", "{after:#}");
    assert_eq!(after["index"]["documents"].as_u64(), Some(stored), "{after:#}");
}
