//! Evaluation: an EHRQA-style question generator over FHIR records, and the measures of
//! retrieval (evidence recall) run over its question sets.

pub mod answers;
pub mod generate;
pub mod grounded;
pub mod questions;
pub mod retrieval;
mod rng;
pub mod score;

pub use answers::AnswersReport;
pub use generate::{for_patient, PatientRecords};
pub use questions::{Gold, Kind, Question};
pub use retrieval::{evaluate, recalled, RetrievalReport};
pub use rng::Rng;

use crate::retrieval::question::Vocabulary;
use crate::store::{Store, StoreError};

/// Generates a question set over every patient in the store (or those named).
pub async fn generate_set(
    store: &Store,
    patients: &[String],
    per_kind: usize,
    seed: u64,
) -> Result<Vec<Question>, StoreError> {
    let mut ids: Vec<(String, Option<String>)> =
        store.patients().await?.into_iter().map(|p| (p.id, p.gender)).collect();
    if !patients.is_empty() {
        ids.retain(|(id, _)| patients.contains(id));
    }
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for (id, gender) in ids {
        let records = store.patient_records(&id).await?;
        let p = PatientRecords { id, gender, records };
        out.extend(for_patient(&p, Vocabulary::embedded(), &mut rng, per_kind));
    }
    for (i, q) in out.iter_mut().enumerate() {
        q.id = format!("q{:04}", i + 1);
    }
    Ok(out)
}
