//! Image attachments waiting for transcription, and transcripts written back into the record
//! of the resource the image belongs to (so the text is searchable and cited as that resource).

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

impl super::Store {
    pub async fn pending_images(&self, limit: i64) -> Result<Vec<PendingImage>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT resource_type, resource_id, path, normalised FROM images \
             WHERE status = 'pending' AND normalised IS NOT NULL ORDER BY resource_type, resource_id, path LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Images waiting for a transcriber.
    pub async fn pending_image_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn image_failed(&self, img: &PendingImage, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE images SET status = 'failed', reason = ? WHERE resource_type = ? AND resource_id = ? AND path = ?")
            .bind(reason)
            .bind(&img.resource_type)
            .bind(&img.resource_id)
            .bind(&img.path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The normalised images of a resource that were transcribed (readable ones), in path order.
    pub async fn transcribed_images(&self, rtype: &str, id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT normalised FROM images WHERE resource_type = ? AND resource_id = ? \
             AND status = 'transcribed' AND normalised IS NOT NULL ORDER BY path",
        )
        .bind(rtype)
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Counts of images by status.
    pub async fn image_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT status, COUNT(*) FROM images GROUP BY status ORDER BY status")
            .fetch_all(&self.pool)
            .await?)
    }
}

impl WriteTxn {
    /// Records a transcript: the image row, the owner's record (its note gains the text with
    /// where it came from), and an ingest row whose id tags the index commit. Returns that id and
    /// the updated record for indexing.
    pub async fn apply_transcript(
        &mut self,
        img: &PendingImage,
        transcript: &str,
        transcriber: &str,
    ) -> Result<(i64, StoredRecord), StoreError> {
        let tx = &mut *self.tx;
        sqlx::query(
            "UPDATE images SET status = 'transcribed', transcript = ?, transcriber = ? \
             WHERE resource_type = ? AND resource_id = ? AND path = ?",
        )
        .bind(transcript)
        .bind(transcriber)
        .bind(&img.resource_type)
        .bind(&img.resource_id)
        .bind(&img.path)
        .execute(&mut *tx)
        .await?;
        let (json, tokens): (String, Option<i64>) =
            sqlx::query_as("SELECT record, tokens FROM resources WHERE type = ? AND id = ?")
                .bind(&img.resource_type)
                .bind(&img.resource_id)
                .fetch_one(&mut *tx)
                .await?;
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
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO ingests (source, sha256, finished_at, resources, inserted, updated, \
             unchanged, stale, unresolved, by_type) \
             VALUES (?, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 1, 0, 1, 0, 0, 0, '{}') RETURNING id",
        )
        .bind(format!("transcription of {}/{} {}", img.resource_type, img.resource_id, img.path))
        .fetch_one(&mut *tx)
        .await?;
        // The record now belongs to this ingest, so an index that is behind picks it up.
        sqlx::query("UPDATE resources SET record = ?, ingest_id = ? WHERE type = ? AND id = ?")
            .bind(&json)
            .bind(id)
            .bind(&img.resource_type)
            .bind(&img.resource_id)
            .execute(&mut *tx)
            .await?;
        Ok((id, StoredRecord { record, json, tokens: tokens.map(|t| t as u32) }))
    }
}
