//! The clinician's page in a real browser (Debian's Chromium, driven by playwright-core from
//! npm, audited by axe-core): tests/page/page.test.mjs against `ehrqa serve` started for real.
//! Screenshots of the list, the chart and an answer are written to
//! `$CARGO_TARGET_DIR/page-screenshots` (or `target/page-screenshots`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::{ehrqa, fixture, stdout, MERVIN};
use crate::server::start;

pub(crate) fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("page-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_clinician_reads_the_chart_asks_follows_a_citation_and_exports_a_draft_in_chromium() {
    let modules = ehrqa::settings::default_cache_dir().join("node-page/node_modules");
    assert!(modules.join("playwright-core").exists(), "{} is missing: run scripts/setup", modules.display());
    assert!(Path::new("/usr/bin/chromium").exists(), "Chromium is missing: run scripts/setup");
    let s = start(&[]);
    let out = screenshots();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/page/page.test.mjs");
    let run = Command::new("node")
        .arg(&script)
        .env("EHRQA_URL", &s.base)
        .env("EHRQA_ADMIN_KEY", &s.admin)
        .env("EHRQA_SCOPED_KEY", &s.clinic)
        .env("EHRQA_PATIENT", MERVIN)
        .env("EHRQA_OUT", &out)
        .env("EHRQA_NODE_MODULES", &modules)
        .output()
        .expect("run node");
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser test failed:\n{text}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();

    // The list, then the chart: his banner, his latest A1c as recorded, trends, a paged timeline.
    assert!(seen["patients"].as_u64().unwrap() >= 5, "{seen}");
    assert_eq!(seen["banner"], "Mervin Gaylord");
    assert!(seen["demographics"].as_str().unwrap().contains("born 1938-05-17"), "{seen}");
    assert_eq!(seen["a1c"], "6.2 %");
    assert!(
        seen["sparklines"].as_u64().unwrap() >= 10 && seen["shaded_ranges"].as_u64().unwrap() >= 5,
        "{seen}"
    );
    assert_eq!(seen["timeline_rows"], 100, "the timeline renders a page, not the whole record");
    assert!(seen["timeline_rows_after_scroll"].as_u64().unwrap() > 100, "{seen}");
    // The README's question: its answer cites his A1c record, which opens beside it.
    assert!(seen["first_answer"].as_str().unwrap().contains("6.2 %"), "{seen}");
    let cited = seen["citation_ref"].as_str().unwrap();
    assert!(cited.starts_with("Observation/e8deca02"), "{cited}");
    assert_eq!(seen["record_heading"], cited);
    assert!(seen["record_rendering"].as_str().unwrap().contains("6.2 %"), "{seen}");
    assert_eq!(seen["record_json"]["id"].as_str(), cited.split('/').nth(1));
    assert_eq!(seen["marked_in_timeline"], true);
    // A follow-up stays in the conversation; the model's tokens arrived before its answer did.
    assert_eq!(seen["turns"], 2);
    assert!(seen["second_stream"]["tokensBeforeEnd"].as_u64().unwrap() >= 2, "{seen}");
    // Keyboard: the question box is a few dozen Tabs in, not past every timeline entry.
    assert!(seen["tabs_to_question"].as_u64().unwrap() < 150, "{seen}");
    // No serious accessibility violation on any screen (the script fails on one); all audited.
    for screen in ["patients", "chart", "answer"] {
        assert!(seen["audits"][screen]["violations"].is_array(), "{screen} not audited: {seen}");
    }
    // A key for Dong sees Dong alone, and Mervin's chart is refused with the service's reason.
    assert_eq!(seen["scoped_patients"], 1);
    assert!(seen["scoped_error"].as_str().unwrap().contains("may not read patient"), "{seen}");
    assert_eq!(seen["scoped_banner"], false);
    for shot in ["patients.png", "chart.png", "answer.png"] {
        let len = std::fs::metadata(out.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{shot}: {len} bytes");
    }

    // The exported draft is a preliminary DocumentReference about that visit that ingest accepts.
    let draft: Value = serde_json::from_slice(&std::fs::read(out.join("draft.json")).unwrap()).unwrap();
    assert_eq!(
        (draft["status"].as_str(), draft["docStatus"].as_str()),
        (Some("current"), Some("preliminary"))
    );
    assert_eq!(draft["subject"]["reference"], format!("Patient/{MERVIN}"));
    assert_eq!(draft["context"]["encounter"][0]["reference"], seen["draft_encounter"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("draft.json");
    std::fs::write(&file, serde_json::to_vec(&draft).unwrap()).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let before = ehrqa(fresh.path(), &["ingest", fixture("fhir").to_str().unwrap(), "--format", "json"]);
    let before: Value = serde_json::from_str(&stdout(&before)).unwrap();
    let ingested = ehrqa(fresh.path(), &["ingest", file.to_str().unwrap(), "--format", "json"]);
    assert!(ingested.status.success(), "{}", String::from_utf8_lossy(&ingested.stderr));
    let report: Value = serde_json::from_str(&stdout(&ingested)).unwrap();
    assert_eq!(report["by_type"]["DocumentReference"], 1, "{report}");
    // Its patient, encounter and cited records are all his, already in the record.
    assert_eq!(report["references"]["unresolved"], before["references"]["unresolved"], "{report}");
    let found = ehrqa(
        fresh.path(),
        &["search", "--patient", MERVIN, "--format", "json", "Reviewed by the page test"],
    );
    assert!(stdout(&found).contains(draft["id"].as_str().unwrap()), "{}", stdout(&found));
}
