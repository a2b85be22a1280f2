//! Rebuilding the index from the database (`ehrqa reindex`, and after a crash).

use super::{IngestError, Progress, Workspace};
use crate::retrieval::IndexedRecord;

const PAGE: i64 = 5_000;

/// Replaces the whole index with documents built from the stored records. Returns the number of
/// records indexed.
#[tracing::instrument(skip_all)]
pub async fn rebuild(ws: &Workspace, progress: &dyn Progress) -> Result<u64, IngestError> {
    let total = ws.store.record_count().await?;
    progress.start(total as u64, "reindex");
    let ingest_id = ws.store.last_ingest_id().await?;
    let mut writer = ws.index.writer()?;
    writer.clear()?;
    let (mut after, mut done) = (0, 0u64);
    loop {
        let (records, last) = ws.store.records_page(after, PAGE).await?;
        if records.is_empty() {
            break;
        }
        for r in &records {
            writer.upsert(IndexedRecord { record: &r.record, json: &r.json, tokens: r.tokens })?;
        }
        done += records.len() as u64;
        progress.advance(records.len() as u64);
        after = last;
    }
    writer.prepare(ingest_id)?.commit().map_err(crate::retrieval::IndexError::from)?;
    writer.finish()?;
    ws.index.reload()?;
    progress.finish();
    Ok(done)
}
