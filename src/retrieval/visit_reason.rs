//! Why the patient came: for a question asking it of one day ("why did he come in on
//! 2019-03-02?"), the reason each note of that day gives under its heading (a chief complaint, a
//! reason for the visit), as a computed fact citing the notes. A small model misreads a note
//! excerpt; the notes' own words need no model.

use super::context::notes;
use super::question::{Analysis, TimeWindow};
use super::rank::Candidate;
use super::summary::{Computed, Summary, VisitReason};
use crate::fhir::date::FhirDate;

/// Lines of a reason's section kept, and notes of one day read.
const MAX_LINES: usize = 3;
const MAX_NOTES: usize = 3;

/// The reasons the notes of the question's day give, when the question asks why the patient
/// came and names one day. Notes saying there was no complaint come last.
pub fn fact(a: &Analysis, candidates: &[Candidate], window: &TimeWindow) -> Option<Summary> {
    let day = |t: i64| FhirDate::from_timestamp(t).day_string();
    let (Some(from), Some(to)) = (window.from, window.to) else { return None };
    if !a.asks_reason || day(from) != day(to) {
        return None;
    }
    let mut reasons: Vec<VisitReason> = Vec::new();
    for c in candidates {
        let r = &c.found.record;
        let Some(ts) = r.date.map(|d| d.timestamp()).filter(|t| window.contains(*t)) else { continue };
        let Some((heading, lines)) = r.note.as_deref().and_then(|n| notes::reason(n, MAX_LINES)) else {
            continue;
        };
        if !reasons.iter().any(|x| x.heading == heading && x.lines == lines) {
            reasons.push(VisitReason { day: day(ts), heading, lines, rref: r.rref.to_string() });
        }
    }
    reasons.sort_by_key(|r| r.lines.iter().all(|l| says_none(l)));
    reasons.truncate(MAX_NOTES);
    let first = reasons.first()?;
    let stated: Vec<String> = reasons
        .iter()
        .map(|r| format!("the {} note's {}: {} [{}]", r.day, r.heading, joined(&r.lines), r.rref))
        .collect();
    Some(Summary {
        text: format!("Reason for the visit, {}", stated.join("; ")),
        primary: first.rref.clone(),
        refs: reasons.iter().map(|r| r.rref.clone()).collect(),
        computed: Computed::Reason(reasons),
    })
}

/// "No complaints.", "None": a note that gives no reason.
fn says_none(line: &str) -> bool {
    let l = line.trim().trim_end_matches('.').to_lowercase();
    matches!(l.as_str(), "none" | "no complaints" | "no complaint" | "n/a" | "nil")
}

/// A section's lines on one line.
pub fn joined(lines: &[String]) -> String {
    lines.iter().map(|l| l.trim_end_matches('.')).collect::<Vec<_>>().join(", ")
}
