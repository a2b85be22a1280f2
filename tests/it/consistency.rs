//! The index follows the database: rebuilt by `reindex`, and automatically when out of step.

use ehrqa::ingest::Workspace;

use crate::helpers::{stdout, TestData, MERVIN};

#[tokio::test]
async fn the_index_commit_is_tagged_with_the_last_ingest() {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea/Dong_Effertz_a8f87e52.json", "bad/not-json.json"]).await;
    t.ingest(&["fhir/edge/bulk"]).await;
    let db = t.ws.store.last_ingest_id().await.unwrap();
    assert_eq!(db, 3, "refused inputs leave no ingest row");
    assert_eq!(t.ws.index.committed_ingest_id().unwrap(), db);
    assert_eq!(t.ws.index.num_docs().unwrap() as i64, t.count("SELECT COUNT(*) FROM records").await);
}

/// Ingests Mervin, does `damage` to the index directory with the workspace closed, opens it
/// again and checks that his search results are what they were before.
async fn reopened_after(damage: impl FnOnce(&std::path::Path)) -> TestData {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea/Mervin_Gaylord_d75e2405.json"]).await;
    let before = t.search(MERVIN, "hemoglobin a1c", 10);
    assert!(!before.is_empty());
    let TestData { dir, ws, _pg } = t;
    let settings = ws.settings.clone();
    drop(ws);
    damage(&dir.path().join("index"));
    let ws = Workspace::open(settings).await.unwrap();
    let t = TestData { dir, ws, _pg };
    let after = t.search(MERVIN, "hemoglobin a1c", 10);
    assert_eq!(
        after.iter().map(|h| &h.rref).collect::<Vec<_>>(),
        before.iter().map(|h| &h.rref).collect::<Vec<_>>()
    );
    t
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_from_the_database_on_open() {
    reopened_after(|index| std::fs::remove_dir_all(index).unwrap()).await;
}

/// An index written by a build with another schema (here: one field, and a document of a
/// resource the database does not hold) is started anew and rebuilt from the database when the
/// data directory is opened, instead of refusing to open.
#[tokio::test]
async fn an_index_with_another_schema_is_rebuilt_from_the_database_on_open() {
    use tantivy::schema::{Schema, STORED, STRING};
    let t = reopened_after(|index_dir| {
        std::fs::remove_dir_all(index_dir).unwrap();
        std::fs::create_dir_all(index_dir).unwrap();
        let mut old = Schema::builder();
        let key = old.add_text_field("key", STRING | STORED);
        let index = tantivy::Index::create_in_dir(index_dir, old.build()).unwrap();
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        writer.add_document(tantivy::doc!(key => "Observation/not-in-the-database")).unwrap();
        writer.commit().unwrap();
    })
    .await;
    assert_eq!(t.ws.index.num_docs().unwrap() as i64, t.count("SELECT COUNT(*) FROM records").await);
    let out = t.ehrqa(&["check", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["index"]["extra"], 0, "{v}");
    assert_eq!(v["index"]["missing"], 0, "{v}");
}

#[tokio::test]
async fn reindex_rebuilds_every_record() {
    let t = TestData::new().await;
    t.ingest(&["fhir/edge"]).await;
    let records = t.count("SELECT COUNT(*) FROM records").await;
    let out = t.ehrqa(&["reindex", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["records"].as_i64(), Some(records));
    let out = t.ehrqa(&["search", "--patient", "srch-1", "--format", "json", "colonoscopy"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["results"][0]["ref"], "Procedure/proc-1");
}
