//! `ehrqa check` says a database is sound only when it checked: SQLite always runs its integrity
//! check; PostgreSQL has none of its own, so the check runs `amcheck` when an administrator has
//! installed it and otherwise says that it did not check.

use ehrqa::store::Backend;
use serde_json::Value;

use crate::helpers::{stdout, TestData};

fn check(t: &TestData) -> Value {
    serde_json::from_str(&stdout(&t.ehrqa(&["check", "--format", "json"]))).expect("check prints JSON")
}

#[tokio::test]
async fn check_claims_integrity_only_when_it_verified_it() {
    let t = TestData::new().await;
    t.ingest(&["fhir/synthea/Mervin_Gaylord_d75e2405.json"]).await;
    let Backend::Postgres(pool) = t.ws.store.pool() else {
        let v = check(&t);
        assert_eq!(v["database"]["integrity"], "ok", "{v}");
        assert_eq!(v["database"]["integrity_checked"], true, "{v}");
        return;
    };
    let v = check(&t);
    assert_eq!(v["database"]["integrity_checked"], false, "{v}");
    assert!(v["database"]["integrity"].as_str().unwrap().starts_with("not checked"), "{v}");
    assert_eq!(v["ok"], true, "an unchecked database is not reported as a problem: {v}");

    sqlx::query("CREATE EXTENSION amcheck").execute(pool).await.unwrap();
    let v = check(&t);
    assert_eq!(v["database"]["integrity"], "ok", "{v}");
    assert_eq!(v["database"]["integrity_checked"], true, "{v}");

    // An index whose "immutable" function changes meaning no longer matches its table: the
    // classic damage amcheck finds, made without touching PostgreSQL's files.
    for sql in [
        "CREATE FUNCTION flips(integer) RETURNS integer IMMUTABLE LANGUAGE sql AS 'SELECT $1'",
        "CREATE TABLE damaged (x integer)",
        "INSERT INTO damaged SELECT generate_series(1, 1000)",
        "CREATE INDEX damaged_flips ON damaged (flips(x))",
        "CREATE OR REPLACE FUNCTION flips(integer) RETURNS integer IMMUTABLE LANGUAGE sql AS 'SELECT -$1'",
    ] {
        sqlx::query(sql).execute(pool).await.expect(sql);
    }
    let v = check(&t);
    assert_eq!(v["database"]["integrity_checked"], true, "{v}");
    assert!(v["database"]["integrity"].as_str().unwrap().starts_with("damaged_flips: "), "{v}");
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["problems"][0].as_str().unwrap().contains("damaged_flips"), "{v}");
}
