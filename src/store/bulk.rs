//! Bulk Data export state: the export in flight and the last one completed, per server and scope.

use super::{Store, StoreError};

/// Where a server's exports of one scope stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct BulkState {
    /// The status URL of an export started and not yet finished here.
    pub status_url: Option<String>,
    /// The `transactionTime` of the last export ingested whole.
    pub transaction_time: Option<String>,
}

impl Store {
    pub async fn bulk_state(&self, server: &str, scope: &str) -> Result<BulkState, StoreError> {
        let row: Option<BulkState> = sqlx::query_as(
            "SELECT status_url, transaction_time FROM bulk_exports WHERE server = ? AND scope = ?",
        )
        .bind(server)
        .bind(scope)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.unwrap_or_default())
    }

    /// An export started: kept until it is finished, so an interrupted sync resumes it.
    pub async fn bulk_started(&self, server: &str, scope: &str, status_url: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bulk_exports (server, scope, status_url) VALUES (?, ?, ?) \
             ON CONFLICT (server, scope) DO UPDATE SET status_url = excluded.status_url",
        )
        .bind(server)
        .bind(scope)
        .bind(status_url)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An export ingested whole (`Some` time), or abandoned (`None`: the last time is kept).
    pub async fn bulk_finished(
        &self,
        server: &str,
        scope: &str,
        transaction_time: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE bulk_exports SET status_url = NULL, \
             transaction_time = COALESCE(?, transaction_time) WHERE server = ? AND scope = ?",
        )
        .bind(transaction_time)
        .bind(server)
        .bind(scope)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
