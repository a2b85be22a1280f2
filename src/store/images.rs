//! Image attachments waiting for transcription, and transcripts written back into the record
//! of the resource the image belongs to (so the text is searchable and cited as that resource).
//!
//! A transcriber claims images before it works on them (`status = 'transcribing'`, with who and
//! when), so that several processes sharing one database (replicas on PostgreSQL, or `ehrqa
//! transcribe` beside `ehrqa serve`) never transcribe the same image twice; a claim older than
//! `CLAIM_LEASE` is taken to be of a process that died, and the image is claimed again.

use super::backend::{on, Backend};
use super::{StoreError, StoredRecord, WriteTxn};
use crate::fhir::Record;

/// An image waiting for a transcriber.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingImage {
    pub resource_type: String,
    pub resource_id: String,
    pub path: String,
    pub normalised: Vec<u8>,
}

/// How long a claim on an image holds before another transcriber may take it.
const CLAIM_LEASE_SECS: i64 = 600;

impl super::Store {
    /// Claims up to `limit` images waiting for a transcriber (or whose claim lapsed) for this
    /// process. Claimed rows are taken in one statement; on PostgreSQL the rows another replica
    /// is claiming at that moment are skipped (`FOR UPDATE SKIP LOCKED`), not waited for.
    pub async fn claim_images(&self, limit: i64) -> Result<Vec<PendingImage>, StoreError> {
        let lock = match self.pool {
            Backend::Sqlite(_) => "",
            Backend::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE images SET status = 'transcribing', claimed_by = $1, claimed_at = $2 \
             WHERE (resource_type, resource_id, path) IN (SELECT resource_type, resource_id, path \
               FROM images WHERE normalised IS NOT NULL \
               AND (status = 'pending' OR (status = 'transcribing' AND claimed_at < $3)) \
               ORDER BY resource_type, resource_id, path LIMIT $4{lock}) \
             RETURNING resource_type, resource_id, path, normalised"
        );
        let now = crate::clock::now();
        let claimed = on!(&self.pool, |p| super::retry_busy(|| async {
            Ok(sqlx::query_as::<_, PendingImage>(&sql)
                .bind(&*self.claimant)
                .bind(now)
                .bind(now - CLAIM_LEASE_SECS)
                .bind(limit)
                .fetch_all(p)
                .await?)
        })
        .await?);
        Ok(claimed)
    }

    /// Images waiting for a transcriber, or being transcribed.
    pub async fn pending_image_count(&self) -> Result<i64, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM images WHERE status IN ('pending', 'transcribing')"
        )
        .fetch_one(p)
        .await?))
    }

    pub async fn image_failed(&self, img: &PendingImage, reason: &str) -> Result<(), StoreError> {
        on!(&self.pool, |p| {
            sqlx::query("UPDATE images SET status = 'failed', reason = $1 WHERE resource_type = $2 AND resource_id = $3 AND path = $4")
            .bind(reason)
            .bind(&img.resource_type)
            .bind(&img.resource_id)
            .bind(&img.path)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The normalised images of a resource that were transcribed (readable ones), in path order.
    pub async fn transcribed_images(&self, rtype: &str, id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_scalar(
            "SELECT normalised FROM images WHERE resource_type = $1 AND resource_id = $2 \
             AND status = 'transcribed' AND normalised IS NOT NULL ORDER BY path",
        )
        .bind(rtype)
        .bind(id)
        .fetch_all(p)
        .await?))
    }

    /// Counts of images by status.
    pub async fn image_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_as(
            "SELECT status, COUNT(*) FROM images GROUP BY status ORDER BY status"
        )
        .fetch_all(p)
        .await?))
    }
}

impl WriteTxn {
    /// Records a transcript: the image row, the owner's record (its note gains the text with
    /// where it came from), and an ingest row whose id tags the index commit. Returns that id and
    /// the updated record for indexing; `None`, writing nothing, when this process no longer
    /// holds the image's claim (its lease lapsed and another transcriber took it, or the
    /// resource was replaced meanwhile).
    pub async fn apply_transcript(
        &mut self,
        img: &PendingImage,
        claimant: &str,
        transcript: &str,
        transcriber: &str,
    ) -> Result<Option<(i64, StoredRecord)>, StoreError> {
        let mut tx = self.tx.conn();
        let held = on!(tx.again(), |c| sqlx::query(
            "UPDATE images SET status = 'transcribed', transcript = $1, transcriber = $2, \
             claimed_by = NULL, claimed_at = NULL \
             WHERE resource_type = $3 AND resource_id = $4 AND path = $5 \
             AND status = 'transcribing' AND claimed_by = $6",
        )
        .bind(transcript)
        .bind(transcriber)
        .bind(&img.resource_type)
        .bind(&img.resource_id)
        .bind(&img.path)
        .bind(claimant)
        .execute(&mut *c)
        .await?
        .rows_affected());
        if held == 0 {
            return Ok(None);
        }
        let (json, tokens): (String, Option<i64>) = on!(tx.again(), |c| sqlx::query_as(
            "SELECT record, tokens FROM resources WHERE type = $1 AND id = $2"
        )
        .bind(&img.resource_type)
        .bind(&img.resource_id)
        .fetch_one(&mut *c)
        .await?);
        let mut record: Record = serde_json::from_str(&json).map_err(|e| {
            StoreError::CorruptRecord(format!("{}/{}", img.resource_type, img.resource_id), e)
        })?;
        let derived = format!(
            "[Transcribed from {}/{} {} by {transcriber}] {}",
            img.resource_type,
            img.resource_id,
            img.path,
            transcript.trim()
        );
        record.note = Some(match record.note.take() {
            Some(n) if !n.trim().is_empty() => format!("{n}\n\n{derived}"),
            _ => derived,
        });
        let json = serde_json::to_string(&record).expect("records serialise");
        let (id,): (i64,) = on!(tx.again(), |c| sqlx::query_as(
            "INSERT INTO ingests (source, sha256, finished_at, resources, inserted, updated, \
             unchanged, stale, unresolved, by_type) \
             VALUES ($1, NULL, $2, 1, 0, 1, 0, 0, 0, '{}') RETURNING id",
        )
        .bind(format!("transcription of {}/{} {}", img.resource_type, img.resource_id, img.path))
        .bind(super::now_rfc3339())
        .fetch_one(&mut *c)
        .await?);
        // The record now belongs to this ingest, so an index that is behind picks it up.
        on!(tx, |c| {
            sqlx::query("UPDATE resources SET record = $1, ingest_id = $2 WHERE type = $3 AND id = $4")
                .bind(&json)
                .bind(id)
                .bind(&img.resource_type)
                .bind(&img.resource_id)
                .execute(&mut *c)
                .await?;
        });
        Ok(Some((id, StoredRecord { record, json, tokens: tokens.map(|t| t as u32) })))
    }
}
