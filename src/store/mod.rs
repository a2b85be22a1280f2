//! The store: sqlx over SQLite, the source of truth for raw resources, normalised records,
//! patients, references and the ingest log.
//!
//! Queries are built at run time (no compile-time checked macros) so the crate builds without a
//! database and a PostgreSQL implementation can sit beside this one behind the same methods.

mod bulk;
mod busy;
mod change;
mod check;
mod error;
mod identity;
mod images;
mod read;
mod resolve;
mod service;
mod timeline;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use bulk::BulkState;
pub use busy::retry_busy;
pub use change::{Change, Staged, WriteOutcome};
pub use check::DatabaseCheck;
pub use error::StoreError;
pub use images::PendingImage;
pub use read::{PatientRow, RefCounts, StoredRecord};
pub use service::{PatientSummary, SummaryLine};
pub use timeline::{TimelineCursor, TimelineEntry, TimelinePage, TIMELINE_TYPES};
pub use write::WriteTxn;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "ehrqa.sqlite";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, in WAL mode, and migrates it.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
        let url = format!("sqlite://{}", data_dir.join(DB_FILE).display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // The default 2 MB page cache makes bulk inserts I/O bound.
            .pragma("cache_size", "-131072")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The id of the last committed ingest (0 when none): the index is tagged with it.
    pub async fn last_ingest_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM ingests").fetch_one(&self.pool).await?;
        Ok(id.unwrap_or(0))
    }
}
