//! Writing one prepared input inside one transaction.
//!
//! `WriteTxn::stage` writes one input and leaves the transaction open; the caller stages the
//! index documents, prepares the index commit and only then commits the database. Either both
//! happen or, if anything fails first, the transaction is rolled back: an input leaves no trace.
//! Several inputs may share one transaction (fewer commits); each is still whole or absent.

use std::collections::HashMap;

use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, Transaction};

use super::change::{decide, Change, Existing, Staged, WriteOutcome};
use super::{identity, resolve, Store, StoreError};
use crate::fhir::resolve::RefLink;
use crate::fhir::{PreparedBatch, PreparedResource, ResourceRef};

/// SQLite allows 32,766 bound parameters per statement; stay below.
const MAX_PARAMS: usize = 30_000;

/// An open write transaction. Inputs staged in it become visible together on `commit`; if it is
/// dropped or rolled back, none of them leaves a trace.
pub struct WriteTxn {
    pub(super) tx: Transaction<'static, Sqlite>,
}

impl Store {
    /// Opens a write transaction that holds SQLite's write lock from its first statement
    /// (`BEGIN IMMEDIATE`): a deferred one reads first and must then upgrade its read snapshot,
    /// which fails at once, whatever the busy timeout, when any other connection (an audit row,
    /// another process) wrote in between.
    pub async fn begin_write(&self) -> Result<WriteTxn, StoreError> {
        let pool = &self.pool;
        let tx = super::retry_busy(|| async { Ok(pool.begin_with("BEGIN IMMEDIATE").await?) }).await?;
        Ok(WriteTxn { tx })
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
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
        let tx = &mut *self.tx;
        let existing = fetch_existing(tx, batch).await?;
        if let Some(reason) = identity::clash(tx, batch, &existing).await? {
            return Ok(Staged::Refused(reason));
        }
        let mut outcome = WriteOutcome::default();
        let mut to_write = Vec::new();
        let mut replaced = Vec::new();
        for r in &batch.resources {
            *outcome.by_type.entry(r.rref.rtype().to_owned()).or_default() += 1;
            match decide(existing.get(&r.rref), r) {
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
        outcome.ingest_id = open_ingest(tx, source, sha256).await?;
        delete_derived(tx, &replaced).await?;
        write_rows(tx, &to_write, outcome.ingest_id).await?;
        resolve::run(tx).await?;
        outcome.unresolved = count_unresolved(tx, outcome.ingest_id).await?;
        close_ingest(tx, &outcome, batch.resources.len()).await?;
        outcome.changed = to_write.iter().map(|r| r.rref.clone()).collect();
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

async fn fetch_existing(
    conn: &mut SqliteConnection,
    batch: &PreparedBatch,
) -> Result<HashMap<ResourceRef, Existing>, StoreError> {
    let mut found = HashMap::new();
    for chunk in batch.resources.chunks(MAX_PARAMS) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT type, id, hash, version_id, last_updated, patient_id FROM resources WHERE id IN ",
        );
        qb.push_tuples(chunk, |mut b, r| {
            b.push_bind(r.rref.id());
        });
        let rows: Vec<ExistingRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
        for row in rows {
            if let Some(r) = ResourceRef::new(&row.r#type, &row.id) {
                let ExistingRow { hash, version_id, last_updated, patient_id, .. } = row;
                found.insert(r, Existing { hash, version_id, last_updated, patient: patient_id });
            }
        }
    }
    Ok(found)
}

async fn open_ingest(
    conn: &mut SqliteConnection,
    source: &str,
    sha256: Option<&str>,
) -> Result<i64, StoreError> {
    let id = sqlx::query_scalar(
        "INSERT INTO ingests (source, sha256, finished_at, resources, inserted, updated, \
         unchanged, stale, unresolved, by_type) \
         VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 0, 0, 0, 0, 0, 0, '{}') RETURNING id",
    )
    .bind(source)
    .bind(sha256)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

async fn close_ingest(
    conn: &mut SqliteConnection,
    o: &WriteOutcome,
    resources: usize,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE ingests SET resources = ?, inserted = ?, updated = ?, unchanged = ?, stale = ?, \
         unresolved = ?, by_type = ? WHERE id = ?",
    )
    .bind(resources as i64)
    .bind(o.inserted as i64)
    .bind(o.updated as i64)
    .bind(o.unchanged as i64)
    .bind(o.stale as i64)
    .bind(o.unresolved as i64)
    .bind(serde_json::to_string(&o.by_type).expect("counts serialise"))
    .bind(o.ingest_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn count_unresolved(conn: &mut SqliteConnection, ingest_id: i64) -> Result<usize, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refs WHERE resolved = 0 AND ingest_id = ?")
        .bind(ingest_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n as usize)
}

/// Removes what was derived from the older versions of replaced resources.
async fn delete_derived(conn: &mut SqliteConnection, replaced: &[&ResourceRef]) -> Result<(), StoreError> {
    for r in replaced {
        for sql in [
            "DELETE FROM refs WHERE src_type = ? AND src_id = ?",
            "DELETE FROM identifiers WHERE resource_type = ? AND resource_id = ?",
            "DELETE FROM attachments WHERE resource_type = ? AND resource_id = ?",
            "DELETE FROM images WHERE resource_type = ? AND resource_id = ?",
        ] {
            sqlx::query(sql).bind(r.rtype()).bind(r.id()).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

async fn write_rows(
    conn: &mut SqliteConnection,
    rows: &[&PreparedResource],
    ingest_id: i64,
) -> Result<(), StoreError> {
    insert_rows(
        conn,
        "INSERT OR REPLACE INTO resources (type, id, patient_id, full_url, version_id, \
         last_updated, hash, raw, ingest_id, date, ts, status, code, text, record, refs, tokens) ",
        17,
        rows,
        |b, r| {
            let rec = &r.record;
            b.push_bind(r.rref.rtype())
                .push_bind(r.rref.id())
                .push_bind(rec.patient.as_deref())
                .push_bind(r.full_url.as_deref())
                .push_bind(r.version_id.as_deref())
                .push_bind(r.last_updated)
                .push_bind(r.hash.as_str())
                .push_bind(r.raw.as_str())
                .push_bind(ingest_id)
                .push_bind(rec.date.map(|d| d.day_string()))
                .push_bind(rec.date.map(|d| d.timestamp()))
                .push_bind(rec.status.as_deref())
                .push_bind(rec.code.as_ref().and_then(|c| c.codings.first()).map(|c| c.code.as_str()))
                .push_bind(rec.text.as_str())
                .push_bind(r.record_json.as_str())
                .push_bind(r.links.len() as i64)
                .push_bind(r.tokens.map(i64::from));
        },
    )
    .await?;
    let links: Vec<(&PreparedResource, &RefLink)> =
        rows.iter().flat_map(|r| r.links.iter().filter(|l| !l.resolved).map(move |l| (*r, l))).collect();
    insert_rows(
        conn,
        "INSERT INTO refs (src_type, src_id, path, raw, kind, target_type, target_id, resolved, \
         cond_system, cond_value, ingest_id) ",
        11,
        &links,
        |b, (r, l)| {
            let cond = l.conditional.as_ref();
            b.push_bind(r.rref.rtype())
                .push_bind(r.rref.id())
                .push_bind(l.path.as_str())
                .push_bind(l.raw.as_str())
                .push_bind(l.kind.as_str())
                .push_bind(l.target.as_ref().map(|t| t.rtype()).or(cond.map(|c| c.rtype.as_str())))
                .push_bind(l.target.as_ref().map(|t| t.id()))
                .push_bind(l.resolved)
                .push_bind(cond.and_then(|c| c.system.as_deref()))
                .push_bind(cond.map(|c| c.value.as_str()))
                .push_bind(ingest_id);
        },
    )
    .await?;
    let idents: Vec<(&PreparedResource, &(Option<String>, String))> =
        rows.iter().flat_map(|r| r.identifiers.iter().map(move |i| (*r, i))).collect();
    insert_rows(
        conn,
        "INSERT INTO identifiers (resource_type, resource_id, system, value) ",
        4,
        &idents,
        |b, (r, (system, value))| {
            b.push_bind(r.rref.rtype())
                .push_bind(r.rref.id())
                .push_bind(system.as_deref())
                .push_bind(value.as_str());
        },
    )
    .await?;
    let atts: Vec<_> = rows.iter().flat_map(|r| r.attachments.iter().map(move |a| (*r, a))).collect();
    insert_rows(
        conn,
        "INSERT INTO attachments (resource_type, resource_id, path, content_type, title, size, \
         sha256, url, is_text) ",
        9,
        &atts,
        |b, (r, a)| {
            b.push_bind(r.rref.rtype())
                .push_bind(r.rref.id())
                .push_bind(a.path.as_str())
                .push_bind(a.content_type.as_deref())
                .push_bind(a.title.as_deref())
                .push_bind(a.size as i64)
                .push_bind(a.sha256.as_deref())
                .push_bind(a.url.as_deref())
                .push_bind(a.text.is_some());
        },
    )
    .await?;
    write_images(conn, rows).await?;
    let patients: Vec<_> =
        rows.iter().filter_map(|r| Some((r.rref.id(), r.demographics.as_ref()?))).collect();
    insert_rows(
        conn,
        "INSERT OR REPLACE INTO patients (id, name, birth_date, gender, deceased) ",
        5,
        &patients,
        |b, (id, d)| {
            b.push_bind(*id)
                .push_bind(d.name.as_deref())
                .push_bind(d.birth_date.as_deref())
                .push_bind(d.gender.as_deref())
                .push_bind(d.deceased.as_deref());
        },
    )
    .await?;
    Ok(())
}

/// Multi-row `INSERT ... VALUES (...), (...)` in chunks that respect the parameter limit.
async fn insert_rows<'a, T>(
    conn: &mut SqliteConnection,
    head: &'static str,
    columns: usize,
    rows: &'a [T],
    bind: impl Fn(&mut Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(MAX_PARAMS / columns) {
        let mut qb = QueryBuilder::<Sqlite>::new(head);
        qb.push_values(chunk, |mut sep, row| bind(&mut sep, row));
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Image attachments, one row each (bound one at a time: they are large).
async fn write_images(conn: &mut SqliteConnection, rows: &[&PreparedResource]) -> Result<(), StoreError> {
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
            sqlx::query(
                "INSERT OR REPLACE INTO images (resource_type, resource_id, path, patient_id, content_type, \
                 format, width, height, sha256, original, normalised, status, reason) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}
