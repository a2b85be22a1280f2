//! Background jobs (syncs started over the API), kept in the store with their progress, so that
//! a job started through one replica is followed through any. A job belongs to the key that
//! started it, by the key's identity (its hash), not its name: only that key can read it.

use serde::Serialize;

use super::auth::KeyId;
use crate::store::{JobRow, Store, StoreError};
use crate::sync::{PatientSync, SyncProgress};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
    Failed,
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: u64,
    pub kind: String,
    pub state: JobState,
    pub patients_total: usize,
    pub patients_done: usize,
    /// The sync's report, when it is done.
    #[schema(value_type = Object)]
    pub report: Option<serde_json::Value>,
    /// Why the job as a whole failed.
    pub error: Option<String>,
}

impl Job {
    fn from_row(row: JobRow) -> Self {
        let state = match row.state.as_str() {
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => JobState::Running,
        };
        Job {
            id: row.id as u64,
            kind: row.kind,
            state,
            patients_total: row.patients_total as usize,
            patients_done: row.patients_done as usize,
            report: row.report.and_then(|r| serde_json::from_str(&r).ok()),
            error: row.error,
        }
    }
}

/// Starts a job of `kind` for `owner`.
pub async fn create(store: &Store, kind: &str, owner: KeyId) -> Result<u64, StoreError> {
    Ok(store.create_job(kind, &owner.to_hex()).await? as u64)
}

/// The job as the key `owner` sees it: another key's job is `None`, as a job that does not
/// exist is, so that ids reveal nothing.
pub async fn get(store: &Store, id: u64, owner: KeyId) -> Result<Option<Job>, StoreError> {
    let Ok(id) = i64::try_from(id) else { return Ok(None) };
    Ok(store.job(id, &owner.to_hex()).await?.map(Job::from_row))
}

/// Records how a job ended: its report (serialised) or its error.
pub async fn finish<R: Serialize, E: std::fmt::Display>(
    store: &Store,
    id: u64,
    result: Result<R, E>,
) -> Result<(), StoreError> {
    let result =
        result.map(|r| serde_json::to_string(&r).expect("reports serialise")).map_err(|e| e.to_string());
    store.job_finished(id as i64, result).await
}

/// Sync progress written into a job. Progress arrives in synchronous callbacks; each update is
/// written by a task of its own (a lost one only makes the counts lag).
pub struct JobProgress {
    pub store: Store,
    pub id: u64,
}

impl JobProgress {
    fn write<F>(&self, update: impl FnOnce(Store, i64) -> F + Send + 'static)
    where
        F: std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
    {
        let (store, id) = (self.store.clone(), self.id as i64);
        tokio::spawn(async move {
            if let Err(e) = update(store, id).await {
                tracing::warn!("job progress not written: {e}");
            }
        });
    }
}

impl SyncProgress for JobProgress {
    fn started(&self, patients: usize) {
        self.write(move |store, id| async move { store.job_total(id, patients as i64).await });
    }

    fn patient(&self, _done: &PatientSync) {
        self.write(|store, id| async move { store.job_patient_done(id).await });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_is_read_only_by_the_key_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).await.unwrap();
        let (admin, other) = (KeyId::of_key("ehrqa_admin_key"), KeyId::of_key("ehrqa_other_key"));
        let id = create(&store, "sync", admin).await.unwrap();
        assert_eq!(get(&store, id, admin).await.unwrap().map(|j| j.id), Some(id));
        // Whatever the other key is named: names are not looked at.
        assert!(get(&store, id, other).await.unwrap().is_none());
        assert!(get(&store, id, KeyId::ANONYMOUS).await.unwrap().is_none());
        finish(&store, id, Ok::<_, String>(serde_json::json!({"patients": 2}))).await.unwrap();
        let done = get(&store, id, admin).await.unwrap().unwrap();
        assert_eq!((done.state, done.report), (JobState::Done, Some(serde_json::json!({"patients": 2}))));
    }
}
