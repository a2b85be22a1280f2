//! Background jobs (syncs started over the API), kept in memory with their progress. A job
//! belongs to the key that started it, by the key's identity (its hash), not its name: only
//! that key can read it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::auth::KeyId;
use crate::sync::{PatientSync, SyncProgress, SyncReport};

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
    pub kind: &'static str,
    pub state: JobState,
    pub patients_total: usize,
    pub patients_done: usize,
    #[schema(value_type = Object)]
    pub report: Option<SyncReport>,
    /// Why the job as a whole failed.
    pub error: Option<String>,
    #[serde(skip)]
    owner: KeyId,
}

#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<HashMap<u64, Job>>,
}

impl Jobs {
    pub fn create(&self, kind: &'static str, owner: KeyId) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let job = Job {
            id,
            kind,
            state: JobState::Running,
            patients_total: 0,
            patients_done: 0,
            report: None,
            error: None,
            owner,
        };
        self.jobs.lock().expect("jobs lock").insert(id, job);
        id
    }

    /// The job as the key `owner` sees it: another key's job is `None`, as a job that does not
    /// exist is, so that ids reveal nothing.
    pub fn get(&self, id: u64, owner: KeyId) -> Option<Job> {
        self.jobs.lock().expect("jobs lock").get(&id).filter(|j| j.owner == owner).cloned()
    }

    pub fn update(&self, id: u64, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.jobs.lock().expect("jobs lock").get_mut(&id) {
            f(j);
        }
    }
}

/// Sync progress written into a job.
pub struct JobProgress<'a> {
    pub jobs: &'a Jobs,
    pub id: u64,
}

impl SyncProgress for JobProgress<'_> {
    fn started(&self, patients: usize) {
        self.jobs.update(self.id, |j| j.patients_total = patients);
    }

    fn patient(&self, _done: &PatientSync) {
        self.jobs.update(self.id, |j| j.patients_done += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_read_only_by_the_key_that_started_it() {
        let jobs = Jobs::default();
        let (admin, other) = (KeyId::of_key("ehrqa_admin_key"), KeyId::of_key("ehrqa_other_key"));
        let id = jobs.create("sync", admin);
        assert_eq!(jobs.get(id, admin).map(|j| j.id), Some(id));
        // Whatever the other key is named: names are not looked at.
        assert!(jobs.get(id, other).is_none());
        assert!(jobs.get(id, KeyId::ANONYMOUS).is_none());
    }
}
