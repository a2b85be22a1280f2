//! Bulk Data export state: the export in flight and the last one completed, per server and scope.

use super::backend::on;
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
        let row: Option<BulkState> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT status_url, transaction_time FROM bulk_exports WHERE server = $1 AND scope = $2",
        )
        .bind(server)
        .bind(scope)
        .fetch_optional(p)
        .await?);
        Ok(row.unwrap_or_default())
    }

    /// An export started: kept until it is finished, so an interrupted sync resumes it.
    pub async fn bulk_started(&self, server: &str, scope: &str, status_url: &str) -> Result<(), StoreError> {
        on!(&self.pool, |p| {
            sqlx::query(
                "INSERT INTO bulk_exports (server, scope, status_url) VALUES ($1, $2, $3) \
             ON CONFLICT (server, scope) DO UPDATE SET status_url = excluded.status_url",
            )
            .bind(server)
            .bind(scope)
            .bind(status_url)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// An export ingested whole (`Some` time), or abandoned (`None`: the last time is kept).
    pub async fn bulk_finished(
        &self,
        server: &str,
        scope: &str,
        transaction_time: Option<&str>,
    ) -> Result<(), StoreError> {
        on!(&self.pool, |p| {
            sqlx::query(
                "UPDATE bulk_exports SET status_url = NULL, \
             transaction_time = COALESCE($1, transaction_time) WHERE server = $2 AND scope = $3",
            )
            .bind(transaction_time)
            .bind(server)
            .bind(scope)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
