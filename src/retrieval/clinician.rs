//! Who the patient sees: for a question asking for the patient's doctor ("who is his doctor?",
//! "who is her primary care provider?", "who did he see at his last visit?"), the clinician the
//! latest encounter names (or the encounter the question's "at his last visit" resolved to),
//! and the one most of the encounters name, each cited.
//!
//! Why: a practitioner is not in the patient's compartment, so no record of the patient's was
//! about one and the model answered "The record does not contain this information." The
//! encounters name who they were with (`Record::performer`); counting them needs no model.

use std::collections::HashMap;

use super::history::Listed;
use super::lookup::Field;
use super::question::{words, Analysis};
use super::rank::Anchored;
use super::summary::{self, Clinician, Computed, Point};
use super::{IndexError, RecordIndex};
use crate::fhir::Record;

/// Words naming a clinician.
const CLINICIAN: [&str; 11] = [
    "doctor",
    "doctors",
    "physician",
    "provider",
    "pcp",
    "gp",
    "practitioner",
    "clinician",
    "dr",
    "nurse",
    "see",
];

/// Encounters read at most.
const MAX_RECORDS: usize = 5_000;

/// The clinicians the patient's encounters name, when the question asks who the patient sees:
/// "who" (or "name") and a word for a clinician, and no concept other than encounters or the
/// care team (whose words, "doctors", "pcp", "primary care provider", are the question's).
pub fn fact(
    index: &RecordIndex,
    patient: &str,
    a: &Analysis,
    question: &str,
    anchor: Option<&Anchored>,
) -> Result<Option<Listed>, IndexError> {
    let ws = words(question);
    let asks_who = ws.iter().any(|w| w == "who" || w == "name" || w == "whom");
    let clinician = ws.iter().any(|w| CLINICIAN.contains(&w.as_str()));
    let about_whom = |name: &str| matches!(name, "encounters" | "care team");
    if !asks_who || !clinician || a.concepts.iter().any(|c| !about_whom(&c.name)) {
        return Ok(None);
    }
    let found = index.lookup(patient, index.clauses().any_of(Field::Type, &["Encounter"]), MAX_RECORDS)?;
    let mut named: Vec<&Record> =
        found.iter().map(|f| &f.record).filter(|r| r.performer.is_some() && r.date.is_some()).collect();
    summary::latest_first(&mut named);
    let at = anchor.map(|x| &x.found.record).filter(|r| r.rref.rtype() == "Encounter");
    let latest = match at {
        Some(visit) => named.iter().find(|r| r.rref == visit.rref),
        None => named.first(),
    };
    let Some(latest) = latest.copied() else { return Ok(None) };
    let c = clinician_of(&named, latest, at.is_some());
    let mut cited: Vec<Record> = vec![latest.clone()];
    for p in [&c.most_first, &c.most_latest] {
        if let Some(r) = named.iter().find(|r| r.rref.to_string() == p.rref) {
            if !cited.iter().any(|x| x.rref == r.rref) {
                cited.push((*r).clone());
            }
        }
    }
    let (text, primary) = (text(&c, |s| s.to_owned()), c.latest.rref.clone());
    Ok(Some(Listed::citing(text, primary, Computed::Clinician(Box::new(c)), cited)))
}

/// The clinician of `latest`, and the one named on most of `named` (latest first), with how many
/// and their first and latest encounters.
fn clinician_of(named: &[&Record], latest: &Record, at_anchor: bool) -> Clinician {
    let mut counts: HashMap<&str, (usize, &Record, &Record)> = HashMap::new();
    for r in named {
        let who = r.performer.as_deref().expect("filtered on a performer");
        let e = counts.entry(who).or_insert((0, r, r));
        e.0 += 1;
        e.2 = r;
    }
    // Most encounters; a tie goes to the one seen most recently.
    let (most, (count, most_latest, most_first)) = counts
        .into_iter()
        .max_by_key(|(_, (n, l, _))| (*n, l.date.map(|d| d.timestamp())))
        .expect("at least the latest encounter");
    let point = |r: &Record| Point { value: None, ..Point::of(r) };
    Clinician {
        latest_name: latest.performer.clone().expect("filtered on a performer"),
        latest: point(latest),
        at_anchor,
        most_name: most.to_owned(),
        most_count: count,
        encounters: named.len(),
        most_first: point(most_first),
        most_latest: point(most_latest),
    }
}

/// The fact as the model reads it, and as the answer states it (`answer::computed`, which passes
/// a `clean` that neutralises citation groups in record text).
pub fn text(c: &Clinician, clean: impl Fn(&str) -> String) -> String {
    let which = if c.at_anchor { "The last visit" } else { "The most recent encounter naming a clinician" };
    let head =
        format!("{which}, on {} [{}], was with {}", c.latest.day, c.latest.rref, clean(&c.latest_name));
    let span = if c.most_count == 1 {
        format!("on {} [{}]", c.most_first.day, c.most_first.rref)
    } else {
        format!(
            "from {} [{}] to {} [{}]",
            c.most_first.day, c.most_first.rref, c.most_latest.day, c.most_latest.rref
        )
    };
    format!(
        "{head}. {} is named on {} of the {} encounters that name a clinician, {span}.",
        clean(&c.most_name),
        c.most_count,
        c.encounters
    )
}
