//! Errors of the store layer.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// An error SQLite reported to a call made on the connection's handle directly (the bulk
    /// inserts of `sqlite_rows`); `code` is its extended result code.
    #[error("database error: {message} (SQLite code {code})")]
    Sqlite { code: i32, message: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the database URL is not a postgres:// URL sqlx can read (user, password, host, port, database)"
    )]
    DatabaseUrl,
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("no randomness for a secret: {0}")]
    Randomness(String),
    #[error("stored record {0} is corrupt: {1}")]
    CorruptRecord(String, serde_json::Error),
}

impl StoreError {
    /// The database is busy (SQLite: another connection holds the write lock past the busy
    /// timeout, or a snapshot went stale; PostgreSQL: a serialization failure, a deadlock, a
    /// lock not available) or no connection was free in time: a retry may succeed, so the API
    /// answers 503 with `Retry-After` rather than 500.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sqlx(sqlx::Error::PoolTimedOut) => true,
            StoreError::Sqlite { code, .. } => sqlite_busy(*code),
            StoreError::Sqlx(sqlx::Error::Database(db)) => {
                if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                    return matches!(db.code().as_deref(), Some("40001" | "40P01" | "55P03"));
                }
                sqlite_busy(db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0))
            }
            _ => false,
        }
    }
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes (517, 262...).
fn sqlite_busy(code: i32) -> bool {
    matches!(code & 0xff, 5 | 6)
}
