//! A data directory opened for work: the database and the index, checked to be in step.

use std::sync::Arc;

use super::{rebuild, IngestError, NoProgress};
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
}

impl Workspace {
    /// Opens the data directory. If the index does not reflect exactly the database's last
    /// ingest (a crash between the two commits, or a deleted index), it is rebuilt from the
    /// database, which is the source of truth.
    pub async fn open(settings: Settings) -> Result<Self, IngestError> {
        Self::open_with(settings, None).await
    }

    /// Opens the data directory with a token counter for ingest.
    pub async fn open_with(
        settings: Settings,
        counter: Option<Arc<dyn TokenCounter>>,
    ) -> Result<Self, IngestError> {
        let store = Store::open(settings.data_dir()).await?;
        let index = RecordIndex::open(&settings.index_dir())?;
        let ws = Self { settings, store, index, counter };
        let (db, ix) = (ws.store.last_ingest_id().await?, ws.index.committed_ingest_id()?);
        if db != ix {
            tracing::warn!(database = db, index = ix, "search index out of step; rebuilding it");
            rebuild(&ws, &NoProgress).await?;
        }
        Ok(ws)
    }
}
