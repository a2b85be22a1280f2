//! Resources that join their patient's compartment when a reference resolves across inputs.
//!
//! A resource whose only patient reference is a `urn:uuid:` or conditional reference into
//! another input is stored without a patient (`fhir::compartment`): no search, context or
//! citation of any patient reaches it. Its reference is stored marked `adopts`. After each input
//! is written and references are resolved (`resolve`), the marked references that now resolve
//! give their resources the patient they point at: the row's `patient_id` and its record's
//! `patient` are set, and the record is handed back so the caller re-indexes it in the same
//! commit. The marks are then cleared, so each resource is adopted once and the partial index
//! `refs_adopting` holds only what waits: the query reads nothing when nothing does.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::backend::{on, Conn};
use super::StoreError;
use crate::fhir::compartment::path_rank;
use crate::fhir::Record;

/// A stored record that has just been given its patient.
#[derive(Debug, Clone)]
pub struct Adopted {
    pub record: Record,
    /// `record` serialised, as stored.
    pub json: String,
    pub tokens: Option<u32>,
}

/// Marked references that resolved, with their resource's stored record. A resource that has a
/// patient by now keeps it (`choose`); its marks are cleared all the same.
const RESOLVED: &str = "SELECT f.src_type, f.src_id, f.path, f.target_type, f.target_id, r.patient_id, \
     r.record, r.tokens \
     FROM refs f JOIN resources r ON r.type = f.src_type AND r.id = f.src_id \
     WHERE f.adopts = 1 AND f.resolved = 1";

const CLEAR: &str = "UPDATE refs SET adopts = 0 WHERE adopts = 1 AND resolved = 1";

const SET_PATIENT: &str = "UPDATE resources SET patient_id = $1, record = $2 WHERE type = $3 AND id = $4";

/// A marked reference that resolved, with its resource's stored record.
#[derive(sqlx::FromRow)]
struct Marked {
    src_type: String,
    src_id: String,
    path: String,
    target_type: Option<String>,
    target_id: Option<String>,
    patient_id: Option<String>,
    record: String,
    tokens: Option<i64>,
}

/// The patient chosen for one resource, and what is needed to rewrite its record.
struct Choice {
    rank: usize,
    patient: String,
    record: String,
    tokens: Option<i64>,
}

/// Gives every resource whose marked reference has resolved to a Patient that patient, and
/// returns the records changed (for the index). Runs inside the write transaction, after
/// `resolve::run`.
pub async fn run(mut conn: Conn<'_>) -> Result<Vec<Adopted>, StoreError> {
    let rows: Vec<Marked> = on!(conn.again(), |c| sqlx::query_as(RESOLVED).fetch_all(&mut *c).await?);
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut adopted = Vec::new();
    for ((rtype, id), choice) in choose(rows) {
        let mut record: Record = serde_json::from_str(&choice.record)
            .map_err(|e| StoreError::CorruptRecord(format!("{rtype}/{id}"), e))?;
        record.patient = Some(choice.patient.clone());
        let json = serde_json::to_string(&record).expect("a record serialises");
        on!(conn.again(), |c| {
            sqlx::query(SET_PATIENT)
                .bind(&choice.patient)
                .bind(&json)
                .bind(&rtype)
                .bind(&id)
                .execute(&mut *c)
                .await?;
        });
        adopted.push(Adopted { record, json, tokens: choice.tokens.and_then(|t| u32::try_from(t).ok()) });
    }
    on!(conn.again(), |c| {
        sqlx::query(CLEAR).execute(&mut *c).await?;
    });
    Ok(adopted)
}

/// Per resource (type, id), the patient its most telling resolved reference names (`subject`
/// before `patient`, ...); references that resolved to something other than a Patient, and
/// resources that have a patient by now, give nothing. Sorted by resource, so the writes come in
/// a fixed order.
fn choose(rows: Vec<Marked>) -> Vec<((String, String), Choice)> {
    let mut best: HashMap<(String, String), Choice> = HashMap::new();
    for m in rows.into_iter().filter(|m| m.patient_id.is_none()) {
        let (Some(rank), Some("Patient"), Some(patient)) =
            (path_rank(&m.path), m.target_type.as_deref(), m.target_id)
        else {
            continue;
        };
        let choice = Choice { rank, patient, record: m.record, tokens: m.tokens };
        match best.entry((m.src_type, m.src_id)) {
            Entry::Occupied(mut held) if rank < held.get().rank => {
                held.insert(choice);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(choice);
            }
        }
    }
    let mut out: Vec<_> = best.into_iter().collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::{choose, Marked, CLEAR, RESOLVED};

    /// Both statements find the marked references through the partial index, so an input that
    /// adopts nothing costs one index probe, however many references the store holds.
    #[tokio::test]
    async fn the_marked_references_are_read_through_their_partial_index() {
        for sql in [RESOLVED, CLEAR] {
            let plan = crate::store::query_plan(sql).await;
            assert!(plan.iter().any(|s| s.contains("INDEX refs_adopting")), "{sql}\n{plan:?}");
        }
    }

    #[test]
    fn the_most_telling_reference_to_a_patient_decides() {
        let row = |id: &str, path: &str, ttype: &str, target: &str| Marked {
            src_type: "Observation".to_owned(),
            src_id: id.to_owned(),
            path: path.to_owned(),
            target_type: Some(ttype.to_owned()),
            target_id: Some(target.to_owned()),
            patient_id: None,
            record: format!("{{\"id\":\"{id}\"}}"),
            tokens: Some(3),
        };
        let chosen = choose(vec![
            row("o2", "target", "Patient", "p-target"),
            row("o2", "subject", "Patient", "p-subject"),
            row("o1", "subject", "Group", "g1"),
            row("o3", "performer", "Patient", "p-performer"),
            Marked { patient_id: Some("p-held".into()), ..row("o4", "subject", "Patient", "p-other") },
        ]);
        let got: Vec<(&str, &str)> = chosen.iter().map(|(k, c)| (k.1.as_str(), c.patient.as_str())).collect();
        assert_eq!(got, vec![("o2", "p-subject")]);
    }
}
