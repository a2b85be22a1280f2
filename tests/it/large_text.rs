//! Large texts: token counts made in pieces against the real Gemma 3 tokenizer, and the caps on
//! the text a record keeps.

use base64::Engine;
use ehrqa::fhir::normalise::cap::{MAX_NOTE_BYTES, MAX_TEXT_BYTES, NOTE_MARKER, TEXT_MARKER};
use ehrqa::fhir::value::Value as RecordValue;
use ehrqa::fhir::Record;
use ehrqa::llm::pieces::PIECE_BYTES;
use ehrqa::tokens::{context_line, TokenCounter};
use serde_json::{json, Value};

use crate::helpers::{fixture, tokenizer, TestData};

/// The clinical notes of the Java Synthea fixtures, repeated to about `bytes`.
fn fixture_notes(bytes: usize) -> String {
    let mut notes = Vec::new();
    for f in std::fs::read_dir(fixture("fhir/synthea-java")).unwrap() {
        let bundle: Value = serde_json::from_slice(&std::fs::read(f.unwrap().path()).unwrap()).unwrap();
        for e in bundle["entry"].as_array().into_iter().flatten() {
            for c in e["resource"]["content"].as_array().into_iter().flatten() {
                if let Some(data) = c["attachment"]["data"].as_str() {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
                    notes.push(String::from_utf8(bytes).unwrap());
                }
            }
        }
    }
    let all = notes.join("\n\n");
    assert!(!all.is_empty(), "the fixtures have notes");
    all.repeat(bytes / all.len() + 1)
}

/// Tokens of `text` encoded whole, as the counter did before it counted in pieces.
fn whole(text: &str) -> usize {
    tokenizer().encode(text, false).unwrap().len()
}

#[test]
fn no_gemma_token_spans_a_cut_the_pieces_make() {
    // `llm::pieces` cuts before " " or "\n" after a character that is not whitespace, "▁" or ">".
    let path = ehrqa::llm::tokenizer::locate(
        std::env::var_os("EHRQA_TOKENIZER").map(std::path::PathBuf::from).as_deref(),
        &ehrqa::settings::default_cache_dir(),
    )
    .unwrap();
    let json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let vocab = json["model"]["vocab"].as_object().unwrap().keys().map(String::as_str);
    let added = json["added_tokens"].as_array().unwrap().iter().map(|t| t["content"].as_str().unwrap());
    let cut_inside = |token: &str| {
        let chars: Vec<char> = token.chars().collect();
        chars.windows(2).any(|w| {
            matches!(w[1], ' ' | '▁' | '\n') && !(w[0].is_whitespace() || w[0] == '▁' || w[0] == '>')
        })
    };
    let spanning: Vec<&str> = vocab.chain(added).filter(|t| cut_inside(t)).collect();
    assert!(spanning.is_empty(), "tokens a cut would split: {spanning:?}");
}

#[test]
fn long_texts_count_the_same_in_pieces() {
    let notes = fixture_notes(5 * PIECE_BYTES);
    // A rendering has no newlines: the whole text is then one BPE word.
    let rendering = notes.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = context_line(&format!("[Observation/x] {rendering}"));
    let tok = tokenizer();
    for text in [notes.as_str(), rendering.as_str(), line.as_str()] {
        assert!(text.len() > 4 * PIECE_BYTES);
        assert_eq!(tok.count(text), whole(text), "{:.60}", text);
    }
}

#[test]
fn stretches_without_spaces_are_overcounted_never_undercounted() {
    let blob = base64::engine::general_purpose::STANDARD.encode(fixture_notes(PIECE_BYTES));
    let text = format!("Scanned report: {blob} end of report");
    let tok = tokenizer();
    let (pieces, exact) = (tok.count(&text), whole(&text));
    assert!(pieces >= exact, "{pieces} < {exact}");
    assert_eq!(pieces, tok.count("Scanned report:") + blob.len() + 1 + tok.count(" end of report"));
}

#[tokio::test]
async fn a_record_keeps_capped_text_and_the_raw_resource_whole() {
    let note = fixture_notes(MAX_NOTE_BYTES + 100_000);
    let value = fixture_notes(MAX_TEXT_BYTES * 2).split_whitespace().collect::<Vec<_>>().join(" ");
    let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "big-p"}},
        {"resource": {"resourceType": "DocumentReference", "id": "big-doc", "status": "current",
            "subject": {"reference": "Patient/big-p"},
            "content": [{"attachment": {"contentType": "text/plain",
                "data": base64::engine::general_purpose::STANDARD.encode(&note)}}]}},
        {"resource": {"resourceType": "Observation", "id": "big-obs", "status": "final",
            "subject": {"reference": "Patient/big-p"}, "code": {"text": "Summary"},
            "valueString": value}}]});
    let t = TestData::with_tokens().await;
    let path = t.dir.path().join("big.json");
    std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let report = t.ingest_paths(vec![path]).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.normalisation_issues.get("note"), Some(&1), "{:?}", report.normalisation_issues);
    assert_eq!(report.normalisation_issues.get("text"), Some(&1), "{:?}", report.normalisation_issues);
    assert_eq!(report.normalisation_issues.get("value"), Some(&1), "{:?}", report.normalisation_issues);

    let doc = record(&t, "DocumentReference", "big-doc").await;
    let kept = doc.note.as_deref().unwrap();
    assert!(kept.len() <= MAX_NOTE_BYTES + NOTE_MARKER.len() && kept.ends_with(NOTE_MARKER));
    assert!(note.starts_with(kept.strip_suffix(NOTE_MARKER).unwrap()));
    let obs = record(&t, "Observation", "big-obs").await;
    assert!(obs.text.len() <= MAX_TEXT_BYTES + TEXT_MARKER.len() && obs.text.ends_with(TEXT_MARKER));
    assert!(obs.issues.iter().any(|i| i.starts_with("text: rendering of")), "{:?}", obs.issues);
    let Some(RecordValue::Text { text: kept }) = &obs.value else { panic!("a text value: {:?}", obs.value) };
    assert!(
        kept.len() <= MAX_TEXT_BYTES + TEXT_MARKER.len() && value.starts_with(&kept[..MAX_TEXT_BYTES / 2])
    );

    let (raw, tokens): (String, i64) = crate::db!(t.ws.store, |p| sqlx::query_as(
        "SELECT raw, tokens FROM resources WHERE type = 'Observation' AND id = 'big-obs'"
    )
    .fetch_one(p)
    .await)
    .unwrap();
    assert!(raw.contains(&value), "the raw resource is stored whole");
    assert_eq!(tokens as usize, whole(&context_line(&format!("[Observation/big-obs] {}", obs.text))));
}

async fn record(t: &TestData, rtype: &str, id: &str) -> Record {
    let json: String = crate::db!(t.ws.store, |p| sqlx::query_scalar(
        "SELECT record FROM records WHERE type = $1 AND id = $2"
    )
    .bind(rtype)
    .bind(id)
    .fetch_one(p)
    .await)
    .unwrap();
    serde_json::from_str(&json).unwrap()
}
