//! The store: sqlx over SQLite (embedded, the default) or PostgreSQL (one database shared by
//! several `ehrqa serve` replicas), the source of truth for raw resources, normalised records,
//! patients, references and the ingest log.
//!
//! Queries are built at run time (no compile-time checked macros) so the crate builds without a
//! database; each is written once for both backends (`backend.rs`).

mod adopt;
mod backend;
mod bulk;
mod busy;
mod change;
mod check;
mod error;
mod identity;
mod images;
mod jobs;
mod read;
mod resolve;
mod rows;
pub mod scratch;
mod service;
mod shared;
mod sqlite_rows;
mod timeline;
mod write;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Connection;

pub use backend::Backend;
use backend::{on, Pool};
pub use bulk::BulkState;
pub use busy::retry_busy;
pub use change::{Change, Staged, WriteOutcome};
pub use check::DatabaseCheck;
pub use error::StoreError;
pub use images::PendingImage;
pub use jobs::JobRow;
pub use read::{PatientRow, RefCounts, StoredRecord};
pub use service::{PatientSummary, SummaryLine};
pub use shared::Leadership;
pub use timeline::{TimelineCursor, TimelineEntry, TimelinePage, TIMELINE_TYPES};
pub use write::WriteTxn;

/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "ehrqa.sqlite";

/// The PostgreSQL channel a committed ingest is announced on (its payload: the ingest id), so
/// replicas index it at once instead of at their next poll.
pub const INGEST_CHANNEL: &str = "ehrqa_ingests";

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// Who this process is when it claims work in the database (`images.claimed_by`).
    claimant: std::sync::Arc<str>,
}

impl Store {
    /// Opens the database, migrated: PostgreSQL at `database_url` when one is given, else
    /// SQLite in `data_dir` (created if needed).
    pub async fn open(data_dir: &Path, database_url: Option<&str>) -> Result<Self, StoreError> {
        match database_url {
            Some(url) => Self::open_postgres(url).await,
            None => Self::open_sqlite(data_dir).await,
        }
    }

    /// SQLite in WAL mode, in `data_dir`.
    async fn open_sqlite(data_dir: &Path) -> Result<Self, StoreError> {
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
            .pragma("temp_store", "memory")
            // A resource row is a few KB (its JSON twice and its rendering): on 4 KB pages most
            // spill into overflow pages. 16 KB pages cut the writer's insert time by a third and
            // its commits by half (`ehrqa bench ingest`); 32 and 64 KB gained nothing more. A
            // database keeps the page size it was created with.
            .page_size(16384);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        SQLITE_MIGRATOR.run(&pool).await?;
        Ok(Self { pool: Backend::Sqlite(pool), claimant: claimant() })
    }

    /// PostgreSQL at `url`. Replicas starting together migrate once: sqlx's migrator holds an
    /// advisory lock while it runs.
    async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|_| StoreError::DatabaseUrl)?;
        // One connection first, so that a server that is not there, or refuses, says so at once
        // (a pool retries until its acquire timeout).
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("(default database)")
        );
        let probe = sqlx::PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Connect { target: target.clone(), reason: connect_reason(&e) })?;
        probe.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        POSTGRES_MIGRATOR.run(&pool).await?;
        Ok(Self { pool: Backend::Postgres(pool), claimant: claimant() })
    }

    /// Who this process is when it claims work (`claim_images`).
    pub fn claimant(&self) -> &str {
        &self.claimant
    }

    /// Which database this is: `sqlite` or `postgres` (health, metrics and `ehrqa check`).
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// The pool, for diagnostics and tests that read the database directly.
    pub fn pool(&self) -> Backend<&sqlx::SqlitePool, &sqlx::PgPool> {
        match &self.pool {
            Backend::Sqlite(p) => Backend::Sqlite(p),
            Backend::Postgres(p) => Backend::Postgres(p),
        }
    }

    /// The id of the last committed ingest (0 when none): the index is tagged with it.
    pub async fn last_ingest_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> =
            on!(&self.pool, |p| sqlx::query_scalar("SELECT MAX(id) FROM ingests").fetch_one(p).await?);
        Ok(id.unwrap_or(0))
    }

    /// A listener for committed ingests (`INGEST_CHANNEL`), on PostgreSQL; `None` on SQLite,
    /// whose only writers share this machine's data directory and are noticed by polling.
    pub async fn ingest_listener(&self) -> Result<Option<sqlx::postgres::PgListener>, StoreError> {
        let Backend::Postgres(pool) = &self.pool else { return Ok(None) };
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(INGEST_CHANNEL).await?;
        Ok(Some(listener))
    }
}

/// Why a connection failed, in one line (sqlx's message repeats its sources).
fn connect_reason(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        other => other.to_string(),
    }
}

/// A name for this process among those sharing the database: its host, process id and start.
fn claimant() -> std::sync::Arc<str> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}:{}:{:x}", host.trim(), std::process::id(), nanos.as_nanos()).into()
}

/// Now, as the database keeps instants (`finished_at`): RFC 3339 UTC with milliseconds.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seconds = crate::fhir::date::FhirDate::instant_string(now.as_secs() as i64);
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), now.subsec_millis())
}

/// SQLite's query plan for `sql` on a new, migrated database: one line per step (`SEARCH t USING
/// INDEX i (...)`), with `$1` bound to 1 when the statement has it. For tests that keep a hot
/// statement on an index.
#[cfg(test)]
pub(crate) async fn query_plan(sql: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None).await.unwrap();
    let Backend::Sqlite(pool) = store.pool() else { unreachable!("SQLite without a URL") };
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
    if sql.contains("$1") {
        query = query.bind(1);
    }
    query.fetch_all(pool).await.unwrap().into_iter().map(|step| step.3).collect()
}
