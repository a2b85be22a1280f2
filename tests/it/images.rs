//! Lab-report images: ingested within limits, transcribed with Tesseract after ingest (resuming
//! where it stopped), searchable by analyte, found by the retrieval evaluation's image-only
//! questions, and hostile images refused with a reason without failing anything else.

use std::sync::Arc;

use base64::Engine;
use ehrqa::eval::{self, questions};
use ehrqa::fhir::date::FhirDate;
use ehrqa::ingest::transcribe::{transcribe_pending, Tesseract};
use ehrqa::ingest::NoProgress;
use ehrqa::tokens::TokenBudget;
use serde_json::{json, Value};

use crate::helpers::{ehrqa, fixture, stdout, tokenizer, TestData, DONG};

async fn statuses(t: &TestData) -> Vec<(String, String, Option<String>)> {
    crate::db!(t.ws.store, |p| sqlx::query_as(
        "SELECT resource_id, status, reason FROM images ORDER BY resource_id"
    )
    .fetch_all(p)
    .await)
    .unwrap()
}

fn tesseract() -> Arc<Tesseract> {
    Arc::new(Tesseract::locate().expect("tesseract (scripts/setup installs tesseract-ocr)"))
}

#[tokio::test(flavor = "multi_thread")]
async fn image_only_lab_values_are_transcribed_searchable_and_retrieved() {
    let t = TestData::with_tokens().await;
    assert!(t.ingest(&["fhir", "images"]).await.failed.is_empty());
    let pending = statuses(&t).await.into_iter().filter(|s| s.0.starts_with("img-dr-")).collect::<Vec<_>>();
    assert_eq!(pending.len(), 8);
    assert!(pending.iter().all(|s| s.1 == "pending"), "{pending:?}");
    let report = transcribe_pending(&t.ws, tesseract(), &NoProgress).await.unwrap();
    assert!(report.transcribed >= 8, "{report:?}");
    // Nothing left; a second run has nothing to do.
    assert_eq!(transcribe_pending(&t.ws, tesseract(), &NoProgress).await.unwrap().transcribed, 0);

    // The transcript joins the report's record, with its provenance, and is searchable.
    let hits = t.search(DONG, "platelet distribution width", 20);
    let dr =
        hits.iter().find(|h| h.rref == "DiagnosticReport/img-dr-2").expect("the image-only report is found");
    let (record,): (String,) = crate::db!(t.ws.store, |p| sqlx::query_as(
        "SELECT record FROM resources WHERE type = 'DiagnosticReport' AND id = 'img-dr-2'"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    let record: Value = serde_json::from_str(&record).unwrap();
    let note = record["note"].as_str().unwrap();
    assert!(
        note.starts_with("[Transcribed from DiagnosticReport/img-dr-2 presentedForm[0] by tesseract"),
        "{note}"
    );
    assert!(note.contains("Platelets"), "{note}");
    assert_eq!(dr.rtype, "DiagnosticReport");

    // Image-only values, asked about by analyte and date, are in the context (value included).
    let set = questions::read(&fixture("../eval/questions-images.jsonl")).unwrap();
    assert!(set.len() >= 10 && set.iter().all(|q| q.kind == eval::Kind::ImageLabValue));
    let today = FhirDate::parse("2026-11-29").unwrap().timestamp();
    let r = eval::evaluate(&t.ws.index, tokenizer().as_ref(), &set, TokenBudget::new(2048).unwrap(), today)
        .unwrap();
    assert!(r.recall >= 0.9, "image-only evidence recall {:.2} (missed {:?})", r.recall, r.missed);

    // At answer time a model that sees images gets the report's image, paid for from the budget,
    // and told which citation it belongs to.
    let q = &set[0];
    let opts = ehrqa::answer::AskOptions {
        budget: TokenBudget::new(2048).unwrap(),
        today,
        style: ehrqa::answer::PromptStyle::Chat,
        max_tokens: 16,
        image_slots: 1,
        computed: true,
    };
    let mut prep =
        ehrqa::answer::prepare(&t.ws.index, tokenizer().as_ref(), &q.patient, &q.question, opts).unwrap();
    use ehrqa::tokens::TokenCounter;
    assert!(tokenizer().count(&prep.tagged.text) <= 2048 - ehrqa::answer::IMAGE_TOKENS);
    ehrqa::answer::attach_images(&mut prep, &t.ws.store).await.unwrap();
    assert_eq!(prep.images.len(), 1);
    assert_eq!(prep.images[0].0, q.evidence[0]);
    assert!(image::load_from_memory(&prep.images[0].1.bytes).is_ok());
}

/// A PNG whose header claims `w` x `h` pixels (the pixel data is a few bytes): a decompression
/// bomb's shape.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn report(id: &str, content_type: &str, data: &[u8]) -> Value {
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": {
        "resourceType": "DiagnosticReport", "id": id, "status": "final",
        "code": {"text": "Lab report"}, "subject": {"reference": "urn:uuid:hostile-patient"},
        "effectiveDateTime": "2024-01-02",
        "presentedForm": [{"contentType": content_type, "data": base64::engine::general_purpose::STANDARD.encode(data)}]
    }})
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_images_are_refused_with_a_reason_and_nothing_else_fails() {
    let good = std::fs::read(fixture("gemma3/multimodal_image/images/report_rgb.png")).unwrap();
    let jpeg = std::fs::read(fixture("gemma3/multimodal_image/images/report.jpg")).unwrap();
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:hostile-patient", "resource": {"resourceType": "Patient", "id": "hostile-patient"}},
        report("huge", "image/png", &png_header_only(20_000, 20_000)),
        report("bomb", "image/png", &png_header_only(9_000, 9_000)),
        report("truncated", "image/png", &good[..good.len() / 3]),
        report("mislabelled", "image/png", &jpeg),
        report("not-an-image", "image/png", b"hello, I am text"),
        report("pdf", "application/pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF"),
        report("fine", "image/png", &good),
    ]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let t = TestData::new().await;
    let r = t.ingest_paths(vec![path]).await;
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.by_type["DiagnosticReport"], 7, "every report is stored");
    let s: std::collections::HashMap<String, (String, Option<String>)> =
        statuses(&t).await.into_iter().map(|(id, st, why)| (id, (st, why))).collect();
    let refused = |id: &str, words: &str| {
        let (st, why) = &s[id];
        assert_eq!(st, "refused", "{id}");
        assert!(why.as_deref().unwrap_or("").contains(words), "{id}: {why:?}");
    };
    refused("huge", "outside the limit of 10000");
    refused("bomb", "over the limit of 192 MB");
    refused("truncated", "cannot decode");
    refused("mislabelled", "declared png but the data is jpeg");
    refused("not-an-image", "not a PNG, JPEG, TIFF, WebP or PDF");
    assert_eq!(s["pdf"].0, "stored");
    assert_eq!(s["fine"].0, "pending");
}

#[test]
fn ingest_leaves_transcription_for_later_and_transcribe_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = ehrqa(
        dir.path(),
        &[
            "ingest",
            "--no-transcribe",
            "--format",
            "json",
            fixture("images").to_str().unwrap(),
            fixture("fhir/synthea").to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["images"]["pending"], 8, "{}", r["images"]);
    let out = ehrqa(dir.path(), &["transcribe", "--format", "json"]);
    assert!(out.status.success());
    let r: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["transcription"]["transcribed"], 8);
    assert!(r["images"]["pending"].is_null());
    let out = ehrqa(
        dir.path(),
        &["search", "--patient", DONG, "--type", "DiagnosticReport", "--format", "json", "platelets"],
    );
    let hits: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(hits["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["ref"].as_str().unwrap().starts_with("DiagnosticReport/img-dr-")));
}

/// Processes sharing one database (replicas on PostgreSQL; `ehrqa transcribe` beside `ehrqa
/// serve` on SQLite) claim disjoint images, and a transcript of an image another process holds
/// is not written.
#[tokio::test(flavor = "multi_thread")]
async fn processes_sharing_a_database_never_transcribe_one_image_twice() {
    let t = TestData::new().await;
    assert!(t.ingest(&["images"]).await.failed.is_empty());
    let url = t.ws.settings.database_url.as_ref().map(|u| u.as_str().to_owned());
    let other = ehrqa::store::Store::open(t.dir.path(), url.as_deref()).await.unwrap();
    let pending = t.ws.store.pending_image_count().await.unwrap();
    assert!(pending >= 8, "{pending}");
    let (mine, theirs) = tokio::join!(t.ws.store.claim_images(5), other.claim_images(5));
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    let key = |i: &ehrqa::store::PendingImage| format!("{}/{} {}", i.resource_type, i.resource_id, i.path);
    let mut all: Vec<String> = mine.iter().chain(&theirs).map(key).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), mine.len() + theirs.len(), "an image claimed twice");
    assert_eq!(all.len() as i64, pending.min(10));
    // What is claimed is not claimed again while the claim holds.
    let again = other.claim_images(100).await.unwrap();
    assert!(again.iter().all(|i| !all.contains(&key(i))));
    // A transcript of an image this process does not hold writes nothing.
    let mut txn = other.begin_write().await.unwrap();
    let written = txn.apply_transcript(&mine[0], other.claimant(), "forged", "test").await.unwrap();
    assert!(written.is_none());
    txn.rollback().await.unwrap();
}
