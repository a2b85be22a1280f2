//! Writing one prepared input inside one transaction.
//!
//! `WriteTxn::stage` writes one input and leaves the transaction open; the caller stages the
//! index documents, prepares the index commit and only then commits the database. Either both
//! happen or, if anything fails first, the transaction is rolled back: an input leaves no trace.
//! Several inputs may share one transaction (fewer commits); each is still whole or absent.

use std::collections::HashMap;

use sqlx::{PgConnection, Postgres, QueryBuilder};

use super::backend::{on, Backend, Conn, Txn};
use super::change::{decide, Change, Existing, Staged, WriteOutcome};
use super::rows::{Param, Row, Rows};
use super::{adopt, identity, resolve, Store, StoreError};
use crate::fhir::{PreparedBatch, PreparedResource, ResourceRef};

/// PostgreSQL allows 65,535 bound parameters per statement: its multi-row inserts stay below.
const MAX_PARAMS: usize = 30_000;

/// An open write transaction. Inputs staged in it become visible together on `commit`; if it is
/// dropped or rolled back, none of them leaves a trace.
pub struct WriteTxn {
    pub(super) tx: Txn,
}

/// The key of the PostgreSQL advisory lock every write transaction holds (`pg_advisory_xact_lock`):
/// writers take turns across replicas as SQLite's write lock makes them take turns on one
/// machine, so ingest ids commit in the order they are given out and an index tagged with an
/// id reflects every ingest up to it.
const WRITE_LOCK: i64 = 0x6568_7271_6100; // "ehrqa\0"

impl Store {
    /// Opens a write transaction that holds the database's write turn from its first statement.
    /// On SQLite that is `BEGIN IMMEDIATE`: a deferred transaction reads first and must then
    /// upgrade its read snapshot, which fails at once, whatever the busy timeout, when any other
    /// connection (an audit row, another process) wrote in between. On PostgreSQL it is the
    /// advisory lock `WRITE_LOCK`, held until commit or rollback.
    pub async fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        let tx = match &self.pool {
            Backend::Sqlite(pool) => Backend::Sqlite(
                super::retry_busy(|| async { Ok(pool.begin_with("BEGIN IMMEDIATE").await?) }).await?,
            ),
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // As long as SQLite's busy timeout: a write turn not had by then is a 503.
                sqlx::query("SET LOCAL lock_timeout = '30s'").execute(&mut *tx).await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
                Backend::Postgres(tx)
            }
        };
        Ok(WriteTxn { tx })
    }
}

impl WriteTxn {
    /// Commits; on PostgreSQL the commit also announces the new ingests on `INGEST_CHANNEL`
    /// (a notification is delivered only if the transaction commits).
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.tx {
            Backend::Sqlite(tx) => tx.commit().await?,
            Backend::Postgres(mut tx) => {
                sqlx::query("SELECT pg_notify($1, (SELECT CAST(MAX(id) AS TEXT) FROM ingests))")
                    .bind(super::INGEST_CHANNEL)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        on!(self.tx, |tx| tx.rollback().await?);
        Ok(())
    }

    /// The last ingest committed before this transaction took the write turn, and those it
    /// wrote itself: what an index must reflect before it is tagged with this transaction's
    /// ingest (another replica may have written since this one's index last caught up).
    pub async fn last_ingest_id(&mut self) -> Result<i64, StoreError> {
        let id: Option<i64> = on!(self.tx.conn(), |c| sqlx::query_scalar("SELECT MAX(id) FROM ingests")
            .fetch_one(&mut *c)
            .await?);
        Ok(id.unwrap_or(0))
    }

    /// Writes one input (with its own ingest row) into the transaction, or refuses it, before
    /// writing anything, when it would merge two people.
    #[tracing::instrument(skip_all, fields(resources = batch.resources.len()))]
    pub async fn stage(
        &mut self,
        batch: &PreparedBatch,
        source: &str,
        sha256: Option<&str>,
    ) -> Result<Staged, StoreError> {
        let mut tx = self.tx.conn();
        let existing = fetch_existing(tx.again(), batch).await?;
        if let Some(reason) = identity::clash(tx.again(), batch, &existing).await? {
            return Ok(Staged::Refused(reason));
        }
        let mut outcome = WriteOutcome::default();
        let mut to_write = Vec::new();
        let mut replaced = Vec::new();
        outcome.changes.reserve(batch.resources.len());
        for r in &batch.resources {
            *outcome.by_type.entry(r.rref.rtype().to_owned()).or_default() += 1;
            let change = decide(existing.get(&r.rref), r);
            outcome.changes.push(change);
            match change {
                Change::New => outcome.inserted += 1,
                Change::Updated => {
                    outcome.updated += 1;
                    replaced.push(&r.rref);
                }
                Change::Unchanged => {
                    outcome.unchanged += 1;
                    continue;
                }
                Change::Stale => {
                    outcome.stale += 1;
                    continue;
                }
            }
            to_write.push(r);
        }
        outcome.ingest_id = open_ingest(tx.again(), source, sha256).await?;
        let earlier = resolve::pending(tx.again()).await?;
        delete_derived(tx.again(), &replaced).await?;
        write_rows(tx.again(), &to_write, outcome.ingest_id).await?;
        let own = resolve::Pending::among(to_write.iter().flat_map(|r| &r.links));
        resolve::run(tx.again(), outcome.ingest_id, own, earlier).await?;
        outcome.adopted = adopt::run(tx.again()).await?;
        outcome.unresolved = count_unresolved(tx.again(), outcome.ingest_id).await?;
        close_ingest(tx.again(), &outcome, batch.resources.len()).await?;
        Ok(Staged::Written(outcome))
    }
}

#[derive(sqlx::FromRow)]
struct ExistingRow {
    r#type: String,
    id: String,
    hash: String,
    version_id: Option<String>,
    last_updated: Option<i64>,
    patient_id: Option<String>,
}

/// The stored state of every resource in `batch` that the store already holds, in one query:
/// the ids go as one JSON array on SQLite and one array on PostgreSQL, so no statement of
/// thousands of placeholders is compiled per input.
async fn fetch_existing(
    conn: Conn<'_>,
    batch: &PreparedBatch,
) -> Result<HashMap<ResourceRef, Existing>, StoreError> {
    let ids: Vec<&str> = batch.resources.iter().map(|r| r.rref.id()).collect();
    let rows: Vec<ExistingRow> = match conn {
        Backend::Sqlite(c) => {
            let ids = serde_json::to_string(&ids).expect("strings serialise");
            sqlx::query_as(
                "SELECT type, id, hash, version_id, last_updated, patient_id FROM resources \
                 WHERE id IN (SELECT value FROM json_each($1))",
            )
            .bind(ids)
            .fetch_all(&mut *c)
            .await?
        }
        Backend::Postgres(c) => {
            sqlx::query_as(
                "SELECT type, id, hash, version_id, last_updated, patient_id FROM resources \
                 WHERE id = ANY($1)",
            )
            .bind(&ids)
            .fetch_all(&mut *c)
            .await?
        }
    };
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        if let Some(r) = ResourceRef::new(&row.r#type, &row.id) {
            let ExistingRow { hash, version_id, last_updated, patient_id, .. } = row;
            found.insert(r, Existing { hash, version_id, last_updated, patient: patient_id });
        }
    }
    Ok(found)
}

async fn open_ingest(conn: Conn<'_>, source: &str, sha256: Option<&str>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "INSERT INTO ingests (source, sha256, finished_at, resources, inserted, updated, \
         unchanged, stale, unresolved, by_type) \
         VALUES ($1, $2, $3, 0, 0, 0, 0, 0, 0, '{}') RETURNING id",
    )
    .bind(source)
    .bind(sha256)
    .bind(super::now_rfc3339())
    .fetch_one(&mut *c)
    .await?))
}

async fn close_ingest(conn: Conn<'_>, o: &WriteOutcome, resources: usize) -> Result<(), StoreError> {
    on!(conn, |c| {
        sqlx::query(
            "UPDATE ingests SET resources = $1, inserted = $2, updated = $3, unchanged = $4, stale = $5, \
         unresolved = $6, by_type = $7 WHERE id = $8",
        )
        .bind(resources as i64)
        .bind(o.inserted as i64)
        .bind(o.updated as i64)
        .bind(o.unchanged as i64)
        .bind(o.stale as i64)
        .bind(o.unresolved as i64)
        .bind(serde_json::to_string(&o.by_type).expect("counts serialise"))
        .bind(o.ingest_id)
        .execute(&mut *c)
        .await?;
    });
    Ok(())
}

async fn count_unresolved(conn: Conn<'_>, ingest_id: i64) -> Result<usize, StoreError> {
    let n: i64 =
        on!(conn, |c| sqlx::query_scalar("SELECT COUNT(*) FROM refs WHERE resolved = 0 AND ingest_id = $1")
            .bind(ingest_id)
            .fetch_one(&mut *c)
            .await?);
    Ok(n as usize)
}

/// Removes what was derived from the older versions of replaced resources.
async fn delete_derived(mut conn: Conn<'_>, replaced: &[&ResourceRef]) -> Result<(), StoreError> {
    for r in replaced {
        for sql in [
            "DELETE FROM refs WHERE src_type = $1 AND src_id = $2",
            "DELETE FROM identifiers WHERE resource_type = $1 AND resource_id = $2",
            "DELETE FROM attachments WHERE resource_type = $1 AND resource_id = $2",
            "DELETE FROM images WHERE resource_type = $1 AND resource_id = $2",
        ] {
            on!(conn.again(), |c| {
                sqlx::query(sql).bind(r.rtype()).bind(r.id()).execute(&mut *c).await?;
            });
        }
    }
    Ok(())
}

/// The resource rows, and what is derived from them. A replaced resource's row is updated in
/// place (`ON CONFLICT ... DO UPDATE`, which both backends speak).
async fn write_rows(
    mut conn: Conn<'_>,
    resources: &[&PreparedResource],
    ingest_id: i64,
) -> Result<(), StoreError> {
    let rows = Rows::of(resources, ingest_id);
    match conn.again() {
        Backend::Sqlite(c) => super::sqlite_rows::insert(c, &rows).await?,
        Backend::Postgres(c) => {
            insert_pg(c, &rows.resources).await?;
            insert_pg(c, &rows.refs).await?;
            insert_pg(c, &rows.identifiers).await?;
            insert_pg(c, &rows.attachments).await?;
            insert_pg(c, &rows.patients).await?;
        }
    }
    write_images(conn, resources).await
}

/// PostgreSQL's path for one table: multi-row `VALUES` in chunks under the parameter limit, one
/// round trip per chunk.
async fn insert_pg<R: Row>(c: &mut PgConnection, rows: &[R]) -> Result<(), StoreError> {
    for chunk in rows.chunks(MAX_PARAMS / R::TABLE.columns) {
        let mut qb = QueryBuilder::<Postgres>::new(R::TABLE.head);
        qb.push_values(chunk, |mut b, row| {
            let mut params = Vec::with_capacity(R::TABLE.columns);
            row.params(&mut params);
            for p in params {
                match p {
                    Param::Text(v) => b.push_bind(v),
                    Param::Int(v) => b.push_bind(v),
                };
            }
        });
        qb.push(R::TABLE.tail);
        qb.build().execute(&mut *c).await?;
    }
    Ok(())
}

/// Image attachments, one row each (bound one at a time: they are large).
async fn write_images(mut conn: Conn<'_>, rows: &[&PreparedResource]) -> Result<(), StoreError> {
    use crate::fhir::image::ImageCheck;
    for r in rows {
        for a in &r.attachments {
            let Some(img) = &a.image else { continue };
            let (status, reason, format, w, h, normalised) = match &img.check {
                ImageCheck::Image { format, width, height, normalised_png } => (
                    "pending",
                    None,
                    Some(*format),
                    Some(*width),
                    Some(*height),
                    Some(normalised_png.as_slice()),
                ),
                ImageCheck::Pdf => ("stored", None, Some("pdf"), None, None, None),
                ImageCheck::Refused(why) => ("refused", Some(why.as_str()), None, None, None, None),
            };
            on!(conn.again(), |c| {
                sqlx::query(
                    "INSERT INTO images (resource_type, resource_id, path, patient_id, content_type, \
                 format, width, height, sha256, original, normalised, status, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (resource_type, resource_id, path) DO UPDATE SET \
                 patient_id = excluded.patient_id, content_type = excluded.content_type, \
                 format = excluded.format, width = excluded.width, height = excluded.height, \
                 sha256 = excluded.sha256, original = excluded.original, \
                 normalised = excluded.normalised, status = excluded.status, reason = excluded.reason, \
                 transcript = NULL, transcriber = NULL",
                )
                .bind(r.rref.rtype())
                .bind(r.rref.id())
                .bind(a.path.as_str())
                .bind(r.record.patient.as_deref())
                .bind(a.content_type.as_deref())
                .bind(format)
                .bind(w.map(i64::from))
                .bind(h.map(i64::from))
                .bind(a.sha256.as_deref().unwrap_or(""))
                .bind(img.original.as_slice())
                .bind(normalised)
                .bind(status)
                .bind(reason)
                .execute(&mut *c)
                .await?;
            });
        }
    }
    Ok(())
}
