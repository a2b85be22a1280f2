//! Background jobs (syncs started over the API) and their progress, kept in the store so that
//! every replica answers for every job, whichever one runs it.

use super::backend::on;
use super::{Store, StoreError};

/// A job as stored. `state` is `running`, `done` or `failed`; `report` is JSON.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub patients_total: i64,
    pub patients_done: i64,
    pub report: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// A running job of `kind`, readable by `owner` only; its id.
    pub async fn create_job(&self, kind: &str, owner: &str) -> Result<i64, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_scalar(
            "INSERT INTO jobs (kind, owner, state, patients_total, patients_done, started_at) \
             VALUES ($1, $2, 'running', 0, 0, $3) RETURNING id"
        )
        .bind(kind)
        .bind(owner)
        .bind(crate::clock::now())
        .fetch_one(p)
        .await?))
    }

    /// The job, if it exists and `owner` started it (another key's job reads as none).
    pub async fn job(&self, id: i64, owner: &str) -> Result<Option<JobRow>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_as(
            "SELECT id, kind, state, patients_total, patients_done, report, error FROM jobs \
             WHERE id = $1 AND owner = $2"
        )
        .bind(id)
        .bind(owner)
        .fetch_optional(p)
        .await?))
    }

    pub async fn job_total(&self, id: i64, patients: i64) -> Result<(), StoreError> {
        self.job_update("UPDATE jobs SET patients_total = $2 WHERE id = $1", id, Some(patients)).await
    }

    /// One more patient done (an increment, so updates may land in any order).
    pub async fn job_patient_done(&self, id: i64) -> Result<(), StoreError> {
        self.job_update("UPDATE jobs SET patients_done = patients_done + 1 WHERE id = $1", id, None).await
    }

    async fn job_update(&self, sql: &'static str, id: i64, n: Option<i64>) -> Result<(), StoreError> {
        on!(&self.pool, |p| {
            let q = sqlx::query(sql).bind(id);
            let q = match n {
                Some(n) => q.bind(n),
                None => q,
            };
            q.execute(p).await?;
        });
        Ok(())
    }

    /// The job ended: `done` with its report, or `failed` with why.
    pub async fn job_finished(&self, id: i64, report: Result<String, String>) -> Result<(), StoreError> {
        let (state, report, error) = match report {
            Ok(r) => ("done", Some(r), None),
            Err(e) => ("failed", None, Some(e)),
        };
        on!(&self.pool, |p| {
            sqlx::query("UPDATE jobs SET state = $2, report = $3, error = $4 WHERE id = $1")
                .bind(id)
                .bind(state)
                .bind(report)
                .bind(error)
                .execute(p)
                .await?;
        });
        Ok(())
    }
}
