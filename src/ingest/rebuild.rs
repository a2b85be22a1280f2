//! Bringing the index in step with the database: a full rebuild (`ehrqa reindex`, or an index
//! that claims more than the database holds) or a catch-up of what came after the index's tag
//! (another process crashed between its database and index commits).
//!
//! Both take a `Writing` guard: only the data directory's one writer may touch the index.

use super::writer::Writing;
use super::{IngestError, NoProgress, Progress, Workspace};
use crate::retrieval::{IndexError, IndexUpdater, IndexedRecord};
use crate::store::{StoredRecord, WriteTxn};

const PAGE: i64 = 5_000;

/// Replaces the whole index with documents built from the stored records. Returns the number of
/// records indexed.
#[tracing::instrument(skip_all)]
pub async fn rebuild(ws: &Workspace, progress: &dyn Progress) -> Result<u64, IngestError> {
    let writing = ws.writing().await?;
    rebuild_locked(ws, &writing, progress).await
}

pub(super) async fn rebuild_locked(
    ws: &Workspace,
    _writing: &Writing<'_>,
    progress: &dyn Progress,
) -> Result<u64, IngestError> {
    let total = ws.store.record_count().await?;
    progress.start(total as u64, "reindex");
    let ingest_id = ws.store.last_ingest_id().await?;
    let mut writer = ws.index.writer()?;
    writer.clear()?;
    let done = index_pages(&mut writer, progress, |after| ws.store.records_page(after, PAGE)).await?;
    commit(ws, writer, ingest_id)?;
    progress.finish();
    Ok(done)
}

/// Indexes the records written after the index's tag, if the database is ahead of it; rebuilds
/// everything if the index is ahead of the database. Returns the number of records indexed.
#[tracing::instrument(skip_all)]
pub(super) async fn catch_up(
    ws: &Workspace,
    writing: &Writing<'_>,
    progress: &dyn Progress,
) -> Result<u64, IngestError> {
    let (db, ix) = (ws.store.last_ingest_id().await?, ws.index.committed_ingest_id()?);
    if db == ix {
        return Ok(0);
    }
    if ix > db {
        tracing::warn!(database = db, index = ix, "search index ahead of the database; rebuilding it");
        return rebuild_locked(ws, writing, progress).await;
    }
    tracing::info!(database = db, index = ix, "search index behind the database; catching up");
    let mut writer = ws.index.writer()?;
    let done = index_pages(&mut writer, progress, |after| ws.store.records_since(ix, after, PAGE)).await?;
    commit(ws, writer, db)?;
    Ok(done)
}

/// Adds to `writer` what other writers committed to a shared database since the index's tag,
/// once this process holds the database's write turn (`txn`): on PostgreSQL another replica may
/// have written between this one's last catch-up and its taking the turn, and the commit this
/// writer makes will be tagged as reflecting every ingest up to its own. On SQLite the data
/// directory's write gate has already brought the index in step and this finds nothing.
pub(super) async fn in_step(
    ws: &Workspace,
    txn: &mut WriteTxn,
    writer: &mut IndexUpdater,
) -> Result<u64, IngestError> {
    let ix = ws.index.committed_ingest_id()?;
    if txn.last_ingest_id().await? <= ix {
        return Ok(0);
    }
    let done = index_pages(writer, &NoProgress, |after| ws.store.records_since(ix, after, PAGE)).await?;
    tracing::debug!(records = done, "indexed what other replicas wrote before this write");
    Ok(done)
}

/// Upserts every page `next(after)` yields until an empty one.
async fn index_pages<F, Fut>(
    writer: &mut IndexUpdater,
    progress: &dyn Progress,
    mut next: F,
) -> Result<u64, IngestError>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<StoredRecord>, i64), crate::store::StoreError>>,
{
    let (mut after, mut done) = (0, 0u64);
    loop {
        let (records, last) = next(after).await?;
        if records.is_empty() {
            return Ok(done);
        }
        for r in &records {
            writer.upsert(IndexedRecord { record: &r.record, json: &r.json, tokens: r.tokens })?;
        }
        done += records.len() as u64;
        progress.advance(records.len() as u64);
        after = last;
    }
}

fn commit(ws: &Workspace, mut writer: IndexUpdater, ingest_id: i64) -> Result<(), IngestError> {
    writer.prepare(ingest_id)?.commit().map_err(IndexError::from)?;
    writer.finish()?;
    ws.index.reload()?;
    Ok(())
}
