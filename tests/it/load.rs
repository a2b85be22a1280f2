//! Writes never fail under read load: 50 clients search and assemble contexts while ten bundles
//! are posted one a second and a sync job pulls a patient from a real FHIR server. Every request
//! must succeed (no 5xx at all), every accepted bundle must be stored whole, and the readers'
//! latency is printed (the README's figure comes from `ehrqa bench http` on a release build).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::helpers::{ehrqa, fixture, free_port, wait_for_port, Process, DONG, MERVIN};
use crate::sync::FhirServer;

const READERS: usize = 50;
const BUNDLES: usize = 10;

/// A small person of their own: a Patient and 20 glucose results, with ids unique to `n`.
fn bundle(n: usize) -> Value {
    let pid = format!("load-patient-{n}");
    let mut entry = vec![json!({"resource": {"resourceType": "Patient", "id": pid,
        "name": [{"family": format!("Loadtest{n}"), "given": ["Pat"]}], "gender": "female", "birthDate": "1970-01-01"}})];
    for k in 0..20 {
        entry.push(json!({"resource": {"resourceType": "Observation", "id": format!("load-{n}-obs-{k}"), "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
            "subject": {"reference": format!("Patient/{pid}")},
            "effectiveDateTime": format!("2024-01-{:02}T08:00:00Z", k + 1),
            "valueQuantity": {"value": 90 + k, "unit": "mg/dL"}}}));
    }
    json!({"resourceType": "Bundle", "type": "collection", "entry": entry})
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    statuses: Vec<u16>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_succeed_under_read_load_with_a_sync_running() {
    let fhir = FhirServer::start(false);
    let dong: Value =
        serde_json::from_slice(&std::fs::read(fixture("fhir/synthea/Dong_Effertz_a8f87e52.json")).unwrap())
            .unwrap();
    fhir.load(&dong, None).await;

    let dir = tempfile::tempdir().unwrap();
    assert!(ehrqa(dir.path(), &["ingest", fixture("fhir").to_str().unwrap()]).status.success());
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--no-auth", "--no-model", "--workers", "2", "--bind", &format!("127.0.0.1:{port}")])
        .args(["--sync-server", &fhir.base])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _service = Process { child };
    wait_for_port(port, Duration::from_secs(60));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder().pool_max_idle_per_host(READERS).build().unwrap();
    let stop = Instant::now() + Duration::from_secs(BUNDLES as u64 + 4);
    let reads = Arc::new(Mutex::new(Tally::default()));

    let mut readers = Vec::new();
    for r in 0..READERS {
        let (http, base, reads) = (http.clone(), base.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let patient = if r % 2 == 0 { DONG } else { MERVIN };
            let mut i = 0usize;
            while Instant::now() < stop {
                let t = Instant::now();
                let resp = if (i + r).is_multiple_of(2) {
                    http.get(format!("{base}/v1/patients/{patient}/records?q=glucose")).send().await
                } else {
                    http.post(format!("{base}/v1/patients/{patient}/context"))
                        .json(&json!({"question": "What was the latest glucose?", "budget": 2048}))
                        .send()
                        .await
                };
                let status = resp.map(|r| r.status().as_u16()).unwrap_or(599);
                let mut tally = reads.lock().await;
                tally.statuses.push(status);
                tally.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                i += 1;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let job: Value = http
        .post(format!("{base}/v1/sync"))
        .json(&json!({"server": fhir.base, "patient": DONG}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut writes = Vec::new();
    for n in 0..BUNDLES {
        let resp = http
            .post(format!("{base}/v1/bundles"))
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(&bundle(n)).unwrap())
            .send()
            .await
            .unwrap();
        writes.push(resp.status().as_u16());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for r in readers {
        r.await.unwrap();
    }
    let job_url = format!("{base}/v1/jobs/{}", job["id"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        let j: Value = http.get(&job_url).send().await.unwrap().json().await.unwrap();
        if j["state"] != "running" {
            break j;
        }
        assert!(Instant::now() < deadline, "the sync job never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let tally = reads.lock().await;
    let failed_reads = tally.statuses.iter().filter(|s| **s >= 500).count();
    let mut sorted = tally.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    eprintln!(
        "load: {} reads, {} failed, p50 {:.1} ms, p99 {:.1} ms; writes {:?}; sync {}",
        sorted.len(),
        failed_reads,
        pct(0.5),
        pct(0.99),
        writes,
        job["state"]
    );
    assert!(sorted.len() > READERS * 4, "the readers kept the service busy");
    assert_eq!(failed_reads, 0, "no read failed (5xx or no answer)");
    assert_eq!(writes, vec![200; BUNDLES], "every bundle was accepted");
    assert_eq!(job["state"], "done", "the sync job succeeded: {job}");
    assert_eq!(job["report"]["synced"], 1, "{job}");
    for n in 0..BUNDLES {
        let r = http
            .get(format!("{base}/v1/patients/load-patient-{n}/records?q=glucose&limit=50"))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["results"].as_array().map(Vec::len), Some(20), "bundle {n} stored whole: {v}");
    }
}
