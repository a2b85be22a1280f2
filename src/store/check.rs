//! What `ehrqa check` asks of the database: its own integrity, and that no queued work points at
//! nothing.

use super::backend::{on, Backend};
use super::{Store, StoreError};

/// Findings about the database alone.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DatabaseCheck {
    /// `PRAGMA integrity_check`'s answer ("ok" when sound).
    pub integrity: String,
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
        if self.integrity != "ok" {
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
        let integrity = match &self.pool {
            Backend::Sqlite(pool) => {
                let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(pool).await?;
                rows.join("; ")
            }
            // PostgreSQL checks its pages as it reads them and has no integrity pragma; what a
            // crash can break here (queued work pointing at nothing) is counted below.
            Backend::Postgres(_) => "ok".to_owned(),
        };
        let pool = &self.pool;
        let count = |sql: &'static str| async move {
            Ok::<i64, sqlx::Error>(on!(pool, |p| sqlx::query_scalar::<_, i64>(sql).fetch_one(p).await?))
        };
        Ok(DatabaseCheck {
            integrity,
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
