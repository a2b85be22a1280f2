//! Hybrid ranking: full-text relevance (BM25 over renderings and notes) combined with structured
//! matches on the codes and resource types the question names, its time window, and recency or
//! extremes where the intent asks for them.

use std::collections::{HashMap, HashSet};

use super::display_match;
use super::lookup::{Field, Found};
use super::question::{Analysis, Anchor, Intent, TimeWindow, DAY};
use super::{IndexError, RecordIndex};

/// How many records each kind of lookup may return.
const TEXT_HITS: usize = 300;
const CONCEPT_HITS: usize = 5_000;
const WINDOW_HITS: usize = 2_000;

/// One record in the running for the context, with why.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub found: Found,
    pub score: f32,
    /// Its code is one the question names.
    pub code_hit: bool,
    /// Its type is one the question names (for concepts named by type, like "shots").
    pub type_hit: bool,
}

impl Candidate {
    pub fn ts(&self) -> Option<i64> {
        self.found.record.date.map(|d| d.timestamp())
    }
}

/// The ranking of a question over one patient's records.
pub struct Ranked {
    /// Best first.
    pub candidates: Vec<Candidate>,
    /// Every record of the concepts asked about (for computed facts), oldest first.
    pub concept_records: Vec<Found>,
    /// The question's window, with times named by records resolved.
    pub window: TimeWindow,
    /// The record such a time was resolved on ("the surgery" of "before the surgery").
    pub anchor: Option<Anchored>,
}

/// A time the question named by a record, and that record.
#[derive(Debug, Clone)]
pub struct Anchored {
    pub found: Found,
    /// How the question's scope reads: `before the surgery`, `at the last visit`.
    pub phrase: &'static str,
}

impl Anchored {
    /// `before the surgery on 1953-07-26 [Procedure/x]`: the scope of a fact, citing the record.
    pub fn scope(&self) -> String {
        let day = self.found.record.date.map(|d| d.day_string()).unwrap_or_default();
        format!("{} on {day} [{}]", self.phrase, self.found.key())
    }
}

pub fn rank(index: &RecordIndex, patient: &str, a: &Analysis) -> Result<Ranked, IndexError> {
    let text = if a.keywords.is_empty() {
        Vec::new()
    } else {
        index.lookup(patient, index.clauses().text(&a.keywords.join(" ")), TEXT_HITS)?
    };
    let (mut concept_records, by_display) = concept_records(index, patient, a)?;
    concept_records.sort_by_key(|f| f.record.date.map(|d| d.timestamp()));
    let (window, anchor) = resolve_window(index, patient, a, &concept_records)?;
    let max_bm25 = text.iter().map(|f| f.score).fold(0.0_f32, f32::max).max(1e-6);
    let codes: Vec<&str> = a.codes().collect();
    // Everything in the question's window competes too, whatever its words.
    let in_window = if window.is_open() {
        Vec::new()
    } else {
        index.lookup(patient, index.clauses().between(window.from, window.to), WINDOW_HITS)?
    };
    let mut by_key: HashMap<String, Candidate> = HashMap::new();
    for f in in_window {
        by_key.insert(f.key(), Candidate { found: f, score: 0.0, code_hit: false, type_hit: false });
    }
    for f in text {
        let score = f.score / max_bm25;
        by_key.insert(f.key(), Candidate { found: f, score, code_hit: false, type_hit: false });
    }
    for f in &concept_records {
        let code_hit = f.record.all_codes().any(|c| codes.contains(&c)) || by_display.contains(&f.key());
        let type_hit = !code_hit;
        let c = by_key.entry(f.key()).or_insert_with(|| Candidate {
            found: f.clone(),
            score: 0.0,
            code_hit: false,
            type_hit: false,
        });
        c.code_hit |= code_hit;
        c.type_hit |= type_hit;
    }
    let mut candidates: Vec<Candidate> = by_key.into_values().collect();
    score(&mut candidates, a, &window);
    candidates.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then_with(|| y.ts().cmp(&x.ts()))
            .then_with(|| x.found.key().cmp(&y.found.key()))
    });
    Ok(Ranked { candidates, concept_records, window, anchor })
}

/// Records of the concepts named: by code (or, when none has its codes, by the display of records
/// coded in a system the vocabulary does not know: `display_match`), or by resource type for a concept that has no
/// codes ("shots", "visits"), or that is about a whole type ("allergies": every allergy record
/// answers it). A specific concept with codes never falls back to its type: "diabetes" must not
/// find every condition, and finding nothing is the answer. Also returns the keys of the records
/// matched by display, which rank as code matches.
fn concept_records(
    index: &RecordIndex,
    patient: &str,
    a: &Analysis,
) -> Result<(Vec<Found>, HashSet<String>), IndexError> {
    let mut out: Vec<Found> = Vec::new();
    let mut seen = HashSet::new();
    let mut by_display = HashSet::new();
    for c in &a.concepts {
        let mut found = Vec::new();
        if !c.codes.is_empty() {
            found = index.lookup(patient, index.clauses().any_of(Field::Codes, &c.codes), CONCEPT_HITS)?;
            if found.is_empty() {
                found = display_match::records(index, patient, c)?;
                by_display.extend(found.iter().map(Found::key));
            }
        }
        let whole_type =
            !c.types.is_empty() && (c.codes.is_empty() || c.types.iter().any(|t| t == "AllergyIntolerance"));
        out.extend(found.into_iter().filter(|f| seen.insert(f.key())));
        if whole_type {
            let by_type =
                index.lookup(patient, index.clauses().any_of(Field::Type, &c.types), CONCEPT_HITS)?;
            out.extend(by_type.into_iter().filter(|f| seen.insert(f.key())));
        }
    }
    Ok((out, by_display))
}

/// The question's window with its anchor resolved against the record, and the record it was
/// resolved on: "since her diagnosis" from the first onset of the conditions asked about, "at his
/// last visit" the day of the latest encounter, "before/after the surgery" up to or from the day
/// of the latest surgery. An anchor the record does not hold (no encounter, no surgery) leaves
/// the window as the dates set it.
fn resolve_window(
    index: &RecordIndex,
    patient: &str,
    a: &Analysis,
    concept_records: &[Found],
) -> Result<(TimeWindow, Option<Anchored>), IndexError> {
    let mut w = a.time;
    let Some(anchor) = w.anchor.take() else { return Ok((w, None)) };
    let ts = |f: &Found| f.record.date.map(|d| d.timestamp());
    let day_of = |t: i64| t - t.rem_euclid(DAY);
    let (found, phrase) = match anchor {
        Anchor::SinceDiagnosis => {
            let first = concept_records
                .iter()
                .filter(|f| f.record.rref.rtype() == "Condition" && ts(f).is_some())
                .min_by_key(|f| ts(f))
                .cloned();
            (first, "since the diagnosis")
        }
        Anchor::LastVisit => {
            // "His blood pressure at his last visit": the last visit that measured it, when an
            // earlier one did and the latest did not.
            let days: Vec<i64> = concept_records.iter().filter_map(ts).map(day_of).collect();
            let measured =
                latest(index, patient, "Encounter", |e| ts(e).is_some_and(|t| days.contains(&day_of(t))))?;
            match measured {
                Some(e) => (Some(e), "at the last visit that recorded it,"),
                None => (latest(index, patient, "Encounter", |_| true)?, "at the last visit"),
            }
        }
        Anchor::BeforeSurgery => (latest(index, patient, "Procedure", is_surgery)?, "before the surgery"),
        Anchor::AfterSurgery => (latest(index, patient, "Procedure", is_surgery)?, "after the surgery"),
    };
    let Some(t) = found.as_ref().and_then(ts) else { return Ok((w, None)) };
    match anchor {
        Anchor::SinceDiagnosis => w.from = Some(t),
        Anchor::LastVisit => (w.from, w.to) = (Some(day_of(t)), Some(day_of(t) + DAY - 1)),
        Anchor::BeforeSurgery => w.to = Some(day_of(t) - 1),
        Anchor::AfterSurgery => w.from = Some(day_of(t) + DAY),
    }
    Ok((w, found.map(|found| Anchored { found, phrase })))
}

/// The patient's latest record of `rtype` that `keep` accepts.
pub(super) fn latest(
    index: &RecordIndex,
    patient: &str,
    rtype: &str,
    keep: impl Fn(&Found) -> bool,
) -> Result<Option<Found>, IndexError> {
    let found = index.lookup(patient, index.clauses().any_of(Field::Type, &[rtype]), CONCEPT_HITS)?;
    Ok(found
        .into_iter()
        .filter(|f| keep(f) && f.record.date.is_some())
        .max_by_key(|f| f.record.date.map(|d| d.timestamp())))
}

/// Word parts that make a procedure an operation (`appendectomy`, `arthroplasty`, `bypass`),
/// where screenings, reconciliations and assessments are procedures too.
const SURGICAL: [&str; 16] = [
    "ectomy",
    "otomy",
    "ostomy",
    "plasty",
    "pexy",
    "rrhaphy",
    "surgery",
    "surgical",
    "excision",
    "resection",
    "repair",
    "transplant",
    "replacement",
    "bypass",
    "amputation",
    "arthroscop",
];

fn is_surgery(f: &Found) -> bool {
    let text = f.record.text.to_lowercase();
    SURGICAL.iter().any(|s| text.contains(s))
}

fn score(candidates: &mut [Candidate], a: &Analysis, window: &TimeWindow) {
    let stamps: Vec<i64> = candidates.iter().filter_map(Candidate::ts).collect();
    let (lo, hi) = (stamps.iter().min().copied().unwrap_or(0), stamps.iter().max().copied().unwrap_or(0));
    let span = (hi - lo).max(1) as f32;
    let extreme = extreme_key(candidates, a);
    for c in candidates.iter_mut() {
        let mut s = c.score;
        if c.code_hit {
            s += 3.0;
        }
        if c.type_hit {
            s += 1.5;
        }
        let recency = c.ts().map_or(0.0, |t| (t - lo) as f32 / span);
        s += match a.intent {
            Intent::Latest => 1.5 * recency,
            Intent::First => 1.5 * (1.0 - recency),
            _ => 0.3 * recency,
        };
        if !window.is_open() {
            s += match c.ts() {
                Some(t) if window.contains(t) => 2.0,
                _ => -5.0,
            };
        }
        if extreme.as_deref() == Some(&c.found.key()) {
            s += 2.0;
        }
        c.score = s;
    }
}

/// The record holding the highest (or lowest) value of the concept, for those intents.
fn extreme_key(candidates: &[Candidate], a: &Analysis) -> Option<String> {
    let codes: Vec<&str> = a.codes().collect();
    let values = candidates
        .iter()
        .filter(|c| c.code_hit)
        .filter_map(|c| super::summary::value_of(&c.found.record, &codes).map(|v| (v, c.found.key())));
    match a.intent {
        Intent::Highest => values.max_by(|x, y| x.0.total_cmp(&y.0)).map(|(_, k)| k),
        Intent::Lowest => values.min_by(|x, y| x.0.total_cmp(&y.0)).map(|(_, k)| k),
        _ => None,
    }
}
