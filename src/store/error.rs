//! Errors of the store layer.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir { path: std::path::PathBuf, source: std::io::Error },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored record {0} is corrupt: {1}")]
    CorruptRecord(String, serde_json::Error),
}

impl StoreError {
    /// SQLite said the database is busy or locked (another connection holds the write lock past
    /// the busy timeout, or a snapshot went stale), or no connection was free in time: a retry
    /// may succeed, so the API answers 503 with `Retry-After` rather than 500.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sqlx(sqlx::Error::PoolTimedOut) => true,
            StoreError::Sqlx(sqlx::Error::Database(db)) => {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes (517, 262...).
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
                matches!(code & 0xff, 5 | 6)
            }
            _ => false,
        }
    }
}
