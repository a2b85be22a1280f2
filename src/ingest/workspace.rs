//! A data directory opened for work: the database and the index, checked to be in step, and the
//! one gate every write goes through.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::rebuild::catch_up;
use super::writer::{WriteGate, Writing};
use super::{IngestError, NoProgress};
use crate::retrieval::RecordIndex;
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::TokenCounter;

pub struct Workspace {
    pub settings: Settings,
    pub store: Store,
    pub index: RecordIndex,
    /// Counts tokens of renderings at ingest; `None` stores no counts (they are then counted when
    /// a context is assembled).
    pub counter: Option<Arc<dyn TokenCounter>>,
    gate: WriteGate,
    /// The index commit (its opstamp) searches last saw, to notice other processes' commits.
    seen: AtomicI64,
}

impl Workspace {
    /// Opens the data directory. If the index does not reflect exactly the database's last
    /// ingest (a crash between the two commits, or a deleted index), it is brought in step from
    /// the database, which is the source of truth.
    pub async fn open(settings: Settings) -> Result<Self, IngestError> {
        Self::open_with(settings, None).await
    }

    /// Opens the data directory with a token counter for ingest.
    pub async fn open_with(
        settings: Settings,
        counter: Option<Arc<dyn TokenCounter>>,
    ) -> Result<Self, IngestError> {
        let ws = Self::open_as_found(settings, counter).await?;
        // A process writing now keeps the two in step itself; otherwise repair what a crash left.
        if let Some(writing) = ws.gate.try_enter()? {
            catch_up(&ws, &writing, &NoProgress).await?;
        }
        Ok(ws)
    }

    /// Opens the data directory without bringing the index in step (`ehrqa check` reports the
    /// state a crash left; every other command repairs it).
    pub async fn open_as_found(
        settings: Settings,
        counter: Option<Arc<dyn TokenCounter>>,
    ) -> Result<Self, IngestError> {
        let store =
            Store::open(settings.data_dir(), settings.database_url.as_ref().map(|u| u.as_str())).await?;
        let index = RecordIndex::open(&settings.index_dir())?;
        let gate = WriteGate::new(settings.data_dir());
        let seen = AtomicI64::new(index.commit_stamp()?);
        Ok(Self { settings, store, index, counter, gate, seen })
    }

    /// The data directory's write turn: waits behind this process's other writers, then at most
    /// `settings.write_wait` for another process's, and brings the index in step with what that
    /// process (or a crash of it) left before handing the turn over.
    pub async fn writing(&self) -> Result<Writing<'_>, IngestError> {
        let writing = self.gate.enter(self.settings.write_wait).await?;
        catch_up(self, &writing, &NoProgress).await?;
        Ok(writing)
    }

    /// Lets searches see what other processes committed to this data directory since the last
    /// call (the service calls this every few hundred milliseconds). If the database is ahead
    /// of the index and nobody is writing, the writer that should have indexed it died, and the
    /// missing records are indexed here.
    pub async fn follow(&self) -> Result<(), IngestError> {
        let db = self.store.last_ingest_id().await?;
        if self.index.committed_ingest_id()? < db {
            if let Some(writing) = self.gate.try_enter()? {
                catch_up(self, &writing, &NoProgress).await?;
            }
        }
        let committed = self.index.commit_stamp()?;
        if self.seen.swap(committed, Ordering::AcqRel) != committed {
            self.index.reload()?;
        }
        Ok(())
    }

    /// Whether another process holds the write lock now, and its process id if it said.
    pub fn writer_elsewhere(&self) -> Result<Option<u32>, IngestError> {
        self.gate.held_elsewhere()
    }
}
