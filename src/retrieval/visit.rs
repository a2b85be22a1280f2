//! What happened at a visit: for a question about the last visit as a whole ("what happened at
//! his last visit?", "what was done during her most recent appointment?"), the encounter and the
//! records made at it, grouped by kind, each cited.
//!
//! Why: such a question names no concept, so the ranking drew whatever that day held, and the
//! model, given a patient header and a few records, answered "Patient was diagnosed with
//! asthma." for a visit that was for dialysis. The records that name the encounter say what
//! happened at it; listing them needs no model.

use std::collections::HashSet;

use super::history::Listed;
use super::lookup::Field;
use super::question::{words, Analysis};
use super::rank::Anchored;
use super::summary::{self, Computed, Point, Visit, VisitKind};
use super::{IndexError, RecordIndex};
use crate::fhir::Record;

/// Kinds of record listed, in this order, and what the answer calls them. Claims, benefits and
/// provenance name the encounter too but say nothing clinical.
const KINDS: [(&str, &str); 12] = [
    ("Condition", "conditions"),
    ("Procedure", "procedures"),
    ("MedicationRequest", "medication orders"),
    ("MedicationAdministration", "medications given"),
    ("Immunization", "immunizations"),
    ("Observation", "results"),
    ("DiagnosticReport", "reports"),
    ("ImagingStudy", "imaging studies"),
    ("CarePlan", "care plans"),
    ("Device", "devices"),
    ("SupplyDelivery", "supplies"),
    ("DocumentReference", "notes"),
];

/// A visit's records are looked for up to this long after its start (an inpatient stay).
const STAY: i64 = 31 * 86_400;

/// Records read at most (a long stay records thousands).
const MAX_RECORDS: usize = 5_000;

/// Words asking to be told about a visit as a whole ("tell me about his last visit").
const ABOUT: [&str; 9] =
    ["tell", "about", "summary", "summarise", "summarize", "describe", "details", "happened", "done"];

/// Words picking the last visit.
const LAST: [&str; 4] = ["last", "latest", "recent", "previous"];

/// The visit the question's "at his last visit" resolved to (or, for "tell me about his last
/// visit", the latest encounter), with its records, when the question asks about the visit
/// itself: it names nothing else and does not ask why (the notes answer that, `visit_reason`).
/// At most `max_items` records are listed.
pub fn fact(
    index: &RecordIndex,
    patient: &str,
    a: &Analysis,
    question: &str,
    anchor: Option<&Anchored>,
    max_items: usize,
) -> Result<Option<Listed>, IndexError> {
    if a.asks_reason || a.asks_treatment {
        return Ok(None);
    }
    let latest;
    let encounter = match anchor.map(|x| &x.found.record).filter(|r| r.rref.rtype() == "Encounter") {
        Some(e) if a.concepts.is_empty() => e,
        None if asks_about_the_last_visit(a, question) => {
            // The encounter "at his last visit" resolves to (`rank`).
            latest = super::rank::latest(index, patient, "Encounter", |_| true)?;
            match &latest {
                Some(f) => &f.record,
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let Some(start) = encounter.date.map(|d| d.timestamp()) else { return Ok(None) };
    let day = start - start.rem_euclid(86_400);
    let mut found =
        index.lookup(patient, index.clauses().between(Some(day), Some(day + STAY)), MAX_RECORDS)?;
    // A condition diagnosed at the visit is dated by its onset, often days or years before.
    found.extend(
        index
            .lookup(patient, index.clauses().any_of(Field::Type, &["Condition"]), MAX_RECORDS)?
            .into_iter()
            .filter(|f| f.record.date.is_none_or(|d| d.timestamp() < day)),
    );
    let at_visit: Vec<&Record> = found
        .iter()
        .map(|f| &f.record)
        .filter(|r| r.encounter.as_ref() == Some(&encounter.rref))
        .filter(|r| r.status.as_deref() != Some("entered-in-error"))
        .collect();
    let visit = visit(encounter, &at_visit, max_items);
    let listed: HashSet<&str> =
        visit.kinds.iter().flat_map(|k| &k.items).map(|(_, p)| p.rref.as_str()).collect();
    let mut cited: Vec<Record> = vec![encounter.clone()];
    cited.extend(
        at_visit.iter().filter(|r| listed.contains(r.rref.to_string().as_str())).map(|r| (*r).clone()),
    );
    let (text, primary) = (text(&visit, |s| s.to_owned()), visit.encounter.rref.clone());
    Ok(Some(Listed::citing(text, primary, Computed::Visit(Box::new(visit)), cited)))
}

/// The encounter and its records grouped by kind (in `KINDS` order, each kind's records by
/// day, then label), the first `max_items` of them.
fn visit(encounter: &Record, records: &[&Record], max_items: usize) -> Visit {
    let mut kinds: Vec<VisitKind> = Vec::new();
    let mut shown = 0;
    for (rtype, noun) in KINDS {
        let mut of_kind: Vec<&&Record> = records.iter().filter(|r| r.rref.rtype() == rtype).collect();
        of_kind.sort_by_key(|r| (r.date.map(|d| d.timestamp()), summary::label(r), r.rref.to_string()));
        let items: Vec<(String, Point)> = of_kind
            .into_iter()
            .take(max_items.saturating_sub(shown))
            .map(|r| (summary::label(r), Point::of(r)))
            .collect();
        shown += items.len();
        if !items.is_empty() {
            kinds.push(VisitKind { noun: noun.to_owned(), items });
        }
    }
    let listed_types: Vec<&str> = KINDS.iter().map(|(t, _)| *t).collect();
    Visit {
        encounter: Point { value: None, ..Point::of(encounter) },
        label: label(encounter),
        records: records.iter().filter(|r| listed_types.contains(&r.rref.rtype())).count(),
        kinds,
    }
}

/// "Tell me about his last visit", "summarise her most recent appointment": the question names
/// only encounters, a last one, and asks about it as a whole (not when it was).
fn asks_about_the_last_visit(a: &Analysis, question: &str) -> bool {
    let ws = words(question);
    let has = |set: &[&str]| ws.iter().any(|w| set.contains(&w.as_str()));
    let [only] = a.concepts.as_slice() else { return false };
    only.name == "encounters" && has(&LAST) && has(&ABOUT) && !ws.iter().any(|w| w == "when")
}

/// What the encounter was, and what for when it says (`Encounter for check up (procedure) for
/// dental_referral`).
fn label(encounter: &Record) -> String {
    let reasons: Vec<String> =
        encounter.reasons.iter().map(|c| c.label()).filter(|l| !l.is_empty()).collect();
    if reasons.is_empty() {
        summary::label(encounter)
    } else {
        format!("{} for {}", summary::label(encounter), reasons.join(", "))
    }
}

/// The fact as the model reads it, and as the answer states it (`answer::computed`, which passes
/// a `clean` that neutralises citation groups in record text).
pub fn text(v: &Visit, clean: impl Fn(&str) -> String) -> String {
    let head = format!("The last visit, on {} [{}], {}", v.encounter.day, v.encounter.rref, clean(&v.label));
    let shown: usize = v.kinds.iter().map(|k| k.items.len()).sum();
    if shown == 0 {
        return format!("{head}: the record holds no other records made at it.");
    }
    let records = if v.records == 1 { "1 record".to_owned() } else { format!("{} records", v.records) };
    let cut = if shown < v.records { format!(", the first {shown} shown") } else { String::new() };
    let kinds: Vec<String> = v
        .kinds
        .iter()
        .map(|k| {
            let items: Vec<String> = k.items.iter().map(|(label, p)| item_text(label, p, &clean)).collect();
            format!("{}: {}", k.noun, items.join(", "))
        })
        .collect();
    format!("{head}, has {records} made at it{cut}: {}.", kinds.join("; "))
}

/// `Body Weight 80.1 kg [ref]`, `Acute bronchitis (disorder) [ref]`.
fn item_text(label: &str, p: &Point, clean: impl Fn(&str) -> String) -> String {
    match &p.value {
        Some(v) => format!("{} {} [{}]", clean(label), clean(v), p.rref),
        None => format!("{} [{}]", clean(label), p.rref),
    }
}
