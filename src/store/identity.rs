//! Refusing inputs that would merge two people.
//!
//! Resources without an `id` take theirs from a `urn:uuid` fullUrl, and generators reuse those
//! (carebundle's history generator gives a second, differently named person the first one's
//! Patient fullUrl). Storing such an input would silently replace one person with another and
//! join both people's records under one id, so before anything is written the input's Patients
//! are compared with the stored ones of the same id, and its other resources with the patient
//! they are stored under. A clash refuses the whole input with a reason that names references
//! and what differs, never the people's names or dates (reasons reach logs and API clients).

use std::collections::{HashMap, HashSet};

use super::backend::{on, Conn};
use super::change::Existing;
use super::StoreError;
use crate::fhir::normalise::patient::Demographics;
use crate::fhir::{PreparedBatch, ResourceRef};

/// Why `batch` may not be stored over what the store holds, if it may not.
pub(super) async fn clash(
    mut conn: Conn<'_>,
    batch: &PreparedBatch,
    existing: &HashMap<ResourceRef, Existing>,
) -> Result<Option<String>, StoreError> {
    for r in &batch.resources {
        let Some(stored) = existing.get(&r.rref) else { continue };
        if let Some(incoming) = &r.demographics {
            let held = stored_person(conn.again(), r.rref.id()).await?;
            let differs = differences(&held, &Person::from_parts(incoming, &r.identifiers));
            if !differs.is_empty() {
                return Ok(Some(format!(
                    "{} is a different person from the stored {} ({} differ); refused so that two \
                     people are not merged, nothing was stored",
                    r.rref,
                    r.rref,
                    differs.join(", ")
                )));
            }
        } else if let (Some(was), Some(now)) = (&stored.patient, &r.record.patient) {
            if was != now {
                return Ok(Some(format!(
                    "{} is stored for another patient than this input gives it; refused so that \
                     patients' records are not mixed, nothing was stored",
                    r.rref
                )));
            }
        }
    }
    Ok(None)
}

/// What identifies a person: normalised name words, birth date, identifiers by system.
#[derive(Debug, Default, PartialEq)]
struct Person {
    names: HashSet<String>,
    birth_date: Option<String>,
    identifiers: HashMap<String, HashSet<String>>,
}

impl Person {
    fn from_parts(d: &Demographics, identifiers: &[(Option<String>, String)]) -> Self {
        let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
        for (system, value) in identifiers {
            if let Some(s) = system {
                ids.entry(s.clone()).or_default().insert(value.trim().to_owned());
            }
        }
        Self { names: name_words(d.name.as_deref()), birth_date: d.birth_date.clone(), identifiers: ids }
    }
}

/// Lower-case letters-only words of a name, so "Abdul Christiansen" and "christiansen, abdul"
/// agree and a digit suffix Synthea adds ("Abdul123") does not matter.
fn name_words(name: Option<&str>) -> HashSet<String> {
    name.unwrap_or("")
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| w.chars().count() > 1)
        .map(str::to_lowercase)
        .collect()
}

/// What makes two Patients different people: another birth date, names with no word in common
/// (a changed family name keeps the given names), or another value under the same identifier
/// system (a medical record number, a social security number). Empty when they may be one person.
fn differences(a: &Person, b: &Person) -> Vec<&'static str> {
    let mut out = Vec::new();
    if let (Some(x), Some(y)) = (&a.birth_date, &b.birth_date) {
        if x.trim() != y.trim() {
            out.push("birth date");
        }
    }
    if !a.names.is_empty() && !b.names.is_empty() && a.names.is_disjoint(&b.names) {
        out.push("name");
    }
    let other_value = a
        .identifiers
        .iter()
        .any(|(system, values)| b.identifiers.get(system).is_some_and(|theirs| values.is_disjoint(theirs)));
    if other_value {
        out.push("identifiers");
    }
    out
}

async fn stored_person(mut conn: Conn<'_>, id: &str) -> Result<Person, StoreError> {
    let row: Option<(Option<String>, Option<String>)> =
        on!(conn.again(), |c| sqlx::query_as("SELECT name, birth_date FROM patients WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?);
    let ids: Vec<(Option<String>, String)> = on!(conn, |c| sqlx::query_as(
        "SELECT system, value FROM identifiers WHERE resource_type = 'Patient' AND resource_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *c)
    .await?);
    let (name, birth_date) = row.unwrap_or_default();
    let d = Demographics { name, birth_date, gender: None, deceased: None };
    Ok(Person::from_parts(&d, &ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, birth: &str, ids: &[(&str, &str)]) -> Person {
        let d = Demographics {
            name: Some(name.into()),
            birth_date: Some(birth.into()),
            gender: None,
            deceased: None,
        };
        let ids: Vec<_> = ids.iter().map(|(s, v)| (Some(s.to_string()), v.to_string())).collect();
        Person::from_parts(&d, &ids)
    }

    #[test]
    fn the_same_person_updated_is_not_a_clash() {
        let a = person("Abdul218 Christiansen251", "1970-01-02", &[("urn:mrn", "A1")]);
        let renamed = person("Abdul Smith", "1970-01-02", &[("urn:mrn", "A1"), ("urn:ssn", "999")]);
        assert!(differences(&a, &renamed).is_empty());
        assert!(differences(&a, &person("christiansen, abdul", "1970-01-02", &[])).is_empty());
    }

    #[test]
    fn another_person_under_the_same_id_is_a_clash() {
        let a = person("Abdul Christiansen", "1970-01-02", &[("urn:mrn", "A1")]);
        assert_eq!(differences(&a, &person("Maria Lopez", "1970-01-02", &[])), vec!["name"]);
        assert_eq!(differences(&a, &person("Abdul Christiansen", "1988-05-06", &[])), vec!["birth date"]);
        assert_eq!(
            differences(&a, &person("Abdul Christiansen", "1970-01-02", &[("urn:mrn", "B7")])),
            vec!["identifiers"]
        );
    }
}
