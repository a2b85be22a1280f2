//! What `ehrqa check` asks of the database: its own integrity, and that no queued work points at
//! nothing.

use sqlx::PgPool;

use super::backend::{on, Backend};
use super::{Store, StoreError};

/// Findings about the database alone.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DatabaseCheck {
    /// The integrity check's answer: "ok" when sound, its findings otherwise, or why no check
    /// ran (then `integrity_checked` is false).
    pub integrity: String,
    /// Whether an integrity check ran: always on SQLite (`PRAGMA integrity_check`); on
    /// PostgreSQL when the `amcheck` extension is installed in the database.
    pub integrity_checked: bool,
    pub resources: i64,
    pub ingests: i64,
    /// Images waiting for transcription (work that a crash must not lose).
    pub pending_images: i64,
    /// Image rows whose resource is missing, or pending without a decodable image.
    pub orphan_images: i64,
    /// Pending references whose source resource is missing.
    pub orphan_refs: i64,
}

impl DatabaseCheck {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.integrity_checked && self.integrity != "ok" {
            out.push(format!("database integrity check failed: {}", self.integrity));
        }
        if self.orphan_images > 0 {
            out.push(format!("{} image rows have no resource or no image", self.orphan_images));
        }
        if self.orphan_refs > 0 {
            out.push(format!("{} references have no source resource", self.orphan_refs));
        }
        out
    }
}

impl Store {
    pub async fn check(&self) -> Result<DatabaseCheck, StoreError> {
        let (integrity, integrity_checked) = match &self.pool {
            Backend::Sqlite(pool) => {
                let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await?;
                (rows.join("; "), true)
            }
            Backend::Postgres(pool) => match postgres_integrity(pool).await? {
                Some(findings) => (findings, true),
                None => (format!("not checked: {NO_AMCHECK}"), false),
            },
        };
        let pool = &self.pool;
        let count = |sql: &'static str| async move {
            Ok::<i64, sqlx::Error>(on!(pool, |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?))
        };
        Ok(DatabaseCheck {
            integrity,
            integrity_checked,
            resources: count("SELECT COUNT(*) FROM resources").await?,
            ingests: count("SELECT COUNT(*) FROM ingests").await?,
            pending_images: count("SELECT COUNT(*) FROM images WHERE status = 'pending'").await?,
            orphan_images: count(
                "SELECT COUNT(*) FROM images i WHERE NOT EXISTS (SELECT 1 FROM resources r \
                 WHERE r.type = i.resource_type AND r.id = i.resource_id) \
                 OR (i.status = 'pending' AND i.normalised IS NULL)",
            )
            .await?,
            orphan_refs: count(
                "SELECT COUNT(*) FROM refs f WHERE NOT EXISTS (SELECT 1 FROM resources r \
                 WHERE r.type = f.src_type AND r.id = f.src_id)",
            )
            .await?,
        })
    }

    /// Every stored resource's key (`Type/id`) and hash.
    pub async fn resource_hashes(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let rows: Vec<(String, String, String)> =
            on!(&self.pool, |p| sqlx::query_as("SELECT type, id, hash FROM resources").fetch_all(p).await?);
        Ok(rows.into_iter().map(|(t, id, h)| (format!("{t}/{id}"), h)).collect())
    }

    /// The SHA-256 of every input an ingest row records.
    pub async fn ingested_inputs(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows: Vec<String> =
            on!(&self.pool, |p| sqlx::query_scalar("SELECT sha256 FROM ingests WHERE sha256 IS NOT NULL")
                .fetch_all(p)
                .await?);
        Ok(rows.into_iter().collect())
    }
}

/// Why `ehrqa check` says nothing of a PostgreSQL database's integrity.
const NO_AMCHECK: &str = "PostgreSQL has no integrity check of its own; an administrator's \
                          `CREATE EXTENSION amcheck` lets ehrqa check verify the indexes and tables";

/// PostgreSQL's integrity, if the `amcheck` extension (in PostgreSQL's contrib modules) is
/// installed: every B-tree index in ehrqa's schema (the connection's current one) checked with
/// `bt_index_check(index, true)`, which verifies the index's structure and that every row of
/// its table is in it, so every table is read too. "ok", or one finding per index that failed;
/// `None` without the extension (`ehrqa check` only reads, so it does not install it).
async fn postgres_integrity(pool: &PgPool) -> Result<Option<String>, StoreError> {
    let installed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck')")
            .fetch_one(pool)
            .await?;
    if !installed {
        return Ok(None);
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT c.oid::regclass::text FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_am a ON a.oid = c.relam \
         JOIN pg_class t ON t.oid = i.indrelid \
         WHERE a.amname = 'btree' AND t.relnamespace = current_schema()::regnamespace \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let mut findings = Vec::new();
    for index in &indexes {
        let checked =
            sqlx::query("SELECT bt_index_check($1::regclass, true)").bind(index).execute(pool).await;
        match checked {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) => findings.push(format!("{index}: {}", e.message())),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(if findings.is_empty() { "ok".to_owned() } else { findings.join("; ") }))
}
