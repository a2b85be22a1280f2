//! Bad input: a clear one-line error, a non-zero exit, and nothing stored.

use crate::helpers::{ehrqa, fixture, stderr, TestData};

/// Ingests one bad input through the real CLI and checks the refusal and the empty store.
async fn refused(rel: &str, reason: &str) {
    let t = TestData::new().await;
    let path = fixture(rel);
    let out = t.ehrqa(&["ingest", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{rel}");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(reason), "{rel}: {err}");
    t.ws.follow().await.unwrap();
    for table in ["resources", "records", "refs", "patients", "identifiers", "attachments", "ingests"] {
        assert_eq!(t.count(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{rel}: {table}");
    }
    assert_eq!(t.ws.index.num_docs().unwrap(), 0);
}

#[tokio::test]
async fn not_json() {
    refused("bad/not-json.json", "not JSON: expected ident at line 1 column 2").await;
}

#[tokio::test]
async fn json_that_is_not_fhir() {
    refused("bad/not-fhir.json", "not FHIR: the JSON object has no resourceType").await;
}

#[tokio::test]
async fn a_bundle_entry_without_resource() {
    refused("bad/entry-without-resource.json", "entry[1]: entry has no resource").await;
}

#[tokio::test]
async fn an_unknown_resource_type() {
    refused("bad/unknown-type.json", "entry[1]: unknown resourceType \"Patientt\"").await;
}

#[tokio::test]
async fn invalid_base64_in_a_note() {
    // The valid Patient in entry[0] is not stored either: all or nothing.
    refused("bad/invalid-base64.json", "entry[1]: content[0].attachment: invalid base64").await;
}

#[tokio::test]
async fn deeply_nested_json() {
    refused("bad/deeply-nested.json", "JSON nested too deeply").await;
}

#[tokio::test]
async fn non_utf8_text() {
    refused("bad/non-utf8.json", "not UTF-8 text (invalid byte at offset 59)").await;
}

#[tokio::test]
async fn a_200_mb_file_is_refused_without_being_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("huge.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(200 * 1024 * 1024).unwrap(); // sparse: no 200 MB written to disk
    let data = dir.path().join("data");
    let out = ehrqa(&data, &["ingest", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("input is 209715200 bytes, over the limit of 67108864 bytes"),
        "{}",
        stderr(&out)
    );
    // Raising the limit is possible, and then the content (zero bytes) is judged: not JSON.
    let out = ehrqa(&data, &["--max-input-bytes", "300000000", "ingest", big.to_str().unwrap()]);
    assert!(stderr(&out).contains("not JSON"), "{}", stderr(&out));
}

#[tokio::test]
async fn good_inputs_are_stored_beside_refused_ones() {
    let t = TestData::new().await;
    let out =
        t.ehrqa(&["ingest", fixture("bad").to_str().unwrap(), fixture("fhir/edge/bulk").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "some inputs failed");
    assert_eq!(stderr(&out).lines().filter(|l| l.starts_with("error: ")).count(), 7);
    assert_eq!(t.count("SELECT COUNT(*) FROM resources").await, 4);
    assert_eq!(t.count("SELECT COUNT(*) FROM resources WHERE id LIKE 'bad-%'").await, 0);
}

#[tokio::test]
async fn a_missing_path_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = ehrqa(dir.path(), &["ingest", "/no/such/file.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error: /no/such/file.json: No such file or directory"));
}
