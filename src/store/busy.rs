//! Retries where SQLite says busy.
//!
//! Every connection has a busy timeout, so a statement waits for the write lock instead of
//! failing. Two cases still fail at once: a transaction that must upgrade a stale read snapshot
//! (`SQLITE_BUSY_SNAPSHOT`; write transactions avoid it with `BEGIN IMMEDIATE`) and SQLite's
//! deadlock avoidance. Both succeed when simply tried again, which is what this does, a few
//! times with a growing pause.

use std::future::Future;
use std::time::Duration;

use super::StoreError;

/// Attempts in all, and the first pause (doubled each time).
const ATTEMPTS: u32 = 5;
const FIRST_PAUSE: Duration = Duration::from_millis(20);

/// Runs `op` until it succeeds, fails for another reason than a busy database, or has been
/// tried `ATTEMPTS` times.
pub async fn retry_busy<T, F, Fut>(mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut pause = FIRST_PAUSE;
    for _ in 1..ATTEMPTS {
        match op().await {
            Err(e) if e.is_busy() => {
                tracing::debug!(error = %e, "database busy; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            done => return done,
        }
    }
    op().await
}
