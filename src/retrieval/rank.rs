//! Hybrid ranking: full-text relevance (BM25 over renderings and notes) combined with structured
//! matches on the codes and resource types the question names, its time window, and recency or
//! extremes where the intent asks for them.

use std::collections::{HashMap, HashSet};

use super::display_match;
use super::lookup::{Field, Found};
use super::question::{Analysis, Intent, TimeWindow};
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
    /// The question's window, with "since her diagnosis" resolved.
    pub window: TimeWindow,
}

pub fn rank(index: &RecordIndex, patient: &str, a: &Analysis) -> Result<Ranked, IndexError> {
    let text = if a.keywords.is_empty() {
        Vec::new()
    } else {
        index.lookup(patient, index.clauses().text(&a.keywords.join(" ")), TEXT_HITS)?
    };
    let (mut concept_records, by_display) = concept_records(index, patient, a)?;
    concept_records.sort_by_key(|f| f.record.date.map(|d| d.timestamp()));
    let window = resolve_window(a, &concept_records);
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
    Ok(Ranked { candidates, concept_records, window })
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

/// "since her diagnosis": from the first onset of the conditions asked about.
fn resolve_window(a: &Analysis, concept_records: &[Found]) -> TimeWindow {
    let mut w = a.time;
    if w.since_diagnosis {
        w.from = concept_records
            .iter()
            .filter(|f| f.record.rref.rtype() == "Condition")
            .filter_map(|f| f.record.date.map(|d| d.timestamp()))
            .min();
        w.since_diagnosis = false;
    }
    w
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
