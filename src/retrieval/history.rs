//! Histories: for a question asking what a patient has had of one kind ("what vaccines has he
//! had?", "list her diagnoses", "what are his current problems?"), every record of that kind,
//! grouped by what it is, with how many, the first and latest day, and the latest cited.
//!
//! Why: the context holds a budget's worth of those records, and a small model given 63
//! immunizations listed one of them, and given 306 conditions answered "He has a chronic
//! condition." A list is complete or it misleads, and grouping records needs no model.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use super::facts::scope_text;
use super::lookup::Field;
use super::question::{words, Analysis, Intent, TimeWindow};
use super::summary::{self, Computed, History, HistoryGroup, Point, Summary};
use super::{IndexError, RecordIndex};
use crate::fhir::Record;

/// The kinds a history is drawn for: the vocabulary's concept naming the kind as a whole, the
/// resource types, and what the answer calls its records.
const KINDS: [(&str, &[&str], &str); 4] = [
    ("immunizations", &["Immunization"], "immunizations"),
    ("procedures", &["Procedure"], "procedures"),
    ("conditions", &["Condition"], "conditions"),
    ("medications", &["MedicationRequest", "MedicationStatement"], "medication orders and statements"),
];

/// Words asking for medications over time ("what has he been on?", "all his medications");
/// without them a medication question asks what the patient takes now, which the patient
/// header's active list answers (`answer::computed`).
const OVER_TIME: [&str; 11] =
    ["been", "was", "were", "ever", "history", "previous", "past", "prior", "all", "used", "had"];

/// Records of one kind read at most (Synthea's busiest patients have hundreds).
const MAX_RECORDS: usize = 5_000;

/// Words asking for the conditions the patient has now, not every one ever recorded.
const NOW: [&str; 8] = ["current", "currently", "active", "now", "ongoing", "present", "existing", "open"];

/// Condition statuses that mean the patient has it (as the patient header reads them).
const ACTIVE: [&str; 3] = ["active", "recurrence", "relapse"];

/// A history and the records it cites (their sources, for the answer's citations).
pub struct Listed {
    pub summary: Summary,
    pub cited: Vec<Record>,
}

impl Listed {
    /// A fact whose `text` is mainly about `primary` and is built from the `cited` records.
    pub fn citing(text: String, primary: String, computed: Computed, cited: Vec<Record>) -> Self {
        let refs = cited.iter().map(|r| r.rref.to_string()).collect();
        Self { summary: Summary { text, primary, refs, computed }, cited }
    }
}

/// The history the question asks for, at most `max_groups` kinds of record (the most recent),
/// when it asks for one; `None` when it names something specific ("flu shots") or asks for
/// one record (the latest, the first), which the computed facts answer.
pub fn fact(
    index: &RecordIndex,
    patient: &str,
    a: &Analysis,
    question: &str,
    window: &TimeWindow,
    max_groups: usize,
) -> Result<Option<Listed>, IndexError> {
    let ws = words(question);
    let now = ws.iter().any(|w| NOW.contains(&w.as_str())) || ws.windows(2).any(|w| w == ["problem", "list"]);
    let over_time = ws.iter().any(|w| OVER_TIME.contains(&w.as_str()));
    let Some((types, noun)) = asked_kind(a, now, over_time) else { return Ok(None) };
    let active_only = now && types == ["Condition"];
    let found = index.lookup(patient, index.clauses().any_of(Field::Type, types), MAX_RECORDS)?;
    let records: Vec<&Record> = found
        .iter()
        .map(|f| &f.record)
        .filter(|r| window.admits(r.date))
        .filter(|r| r.status.as_deref() != Some("entered-in-error"))
        .filter(|r| !active_only || r.status.as_deref().is_some_and(|s| ACTIVE.contains(&s)))
        .collect();
    if records.is_empty() {
        return Ok(None);
    }
    let mut groups = group(&records);
    // Disorders before the findings, situations and social facts Synthea also codes as
    // conditions ("Full-time employment (finding)"), so that a cut keeps the disorders.
    groups.sort_by_key(|g| is_circumstance(&g.label));
    let kinds = groups.len();
    groups.truncate(max_groups.max(1));
    let history = History {
        noun: if active_only { format!("active {noun}") } else { noun.to_owned() },
        records: records.len(),
        kinds,
        groups,
        scope: scope_text(window),
    };
    let refs: Vec<String> = history.groups.iter().flat_map(|g| g.refs()).map(str::to_owned).collect();
    let wanted: HashSet<&str> = refs.iter().map(String::as_str).collect();
    let cited: Vec<Record> = records
        .iter()
        .filter(|r| wanted.contains(r.rref.to_string().as_str()))
        .map(|r| (*r).clone())
        .collect();
    Ok(Some(Listed {
        summary: Summary {
            text: text(&history, |s| s.to_owned()),
            primary: history.groups[0].latest.rref.clone(),
            refs,
            computed: Computed::History(Box::new(history)),
        },
        cited,
    }))
}

/// The kind the question asks a history of: it names the kind as a whole and nothing more
/// specific, and asks for a list (or, for conditions, the ones the patient has now; for
/// medications, over time).
fn asked_kind(a: &Analysis, now: bool, over_time: bool) -> Option<(&'static [&'static str], &'static str)> {
    if a.asks_treatment || a.asks_reason || a.concepts.iter().any(|c| !c.codes.is_empty()) {
        return None;
    }
    let [only] = a.concepts.as_slice() else { return None };
    let (name, types, noun) = KINDS.iter().find(|(name, ..)| *name == only.name)?;
    if *name == "medications" && !over_time {
        return None;
    }
    let listing = matches!(a.intent, Intent::List | Intent::Lookup);
    let current_conditions = *name == "conditions" && now && a.intent == Intent::Latest;
    (listing || current_conditions).then_some((*types, *noun))
}

/// Records grouped by what they are (label and first code), the most recent group first; each
/// group cites its latest record.
fn group(records: &[&Record]) -> Vec<HistoryGroup> {
    let mut sorted: Vec<&Record> = records.to_vec();
    summary::latest_first(&mut sorted);
    let mut groups: Vec<HistoryGroup> = Vec::new();
    let mut index: HashMap<summary::SeriesKey, usize> = HashMap::new();
    for r in sorted {
        match index.entry(summary::series_key(r)) {
            Entry::Occupied(at) => {
                let g = &mut groups[*at.get()];
                g.count += 1;
                g.first = when(r);
            }
            Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push(HistoryGroup {
                    label: summary::label(r),
                    count: 1,
                    first: when(r),
                    latest: when(r),
                    status: r.status.clone(),
                });
            }
        }
    }
    groups
}

/// A record's day and reference (its value is the group's label, already said).
fn when(r: &Record) -> Point {
    Point { value: None, ..Point::of(r) }
}

/// A SNOMED CT semantic tag saying the "condition" is a circumstance, not a disorder.
fn is_circumstance(label: &str) -> bool {
    ["(finding)", "(situation)", "(person)", "(social concept)", "(life style)"]
        .iter()
        .any(|t| label.ends_with(t))
}

/// The fact as the model reads it, and as the answer states it (`answer::computed`, which
/// passes a `clean` that neutralises citation groups in record text; the context's tagging
/// does that for the model).
pub fn text(h: &History, clean: impl Fn(&str) -> String) -> String {
    let scope = h.scope.as_deref().map(|s| format!(" {s}")).unwrap_or_default();
    let shown = if h.groups.len() < h.kinds {
        format!(", the {} most recent kinds shown", h.groups.len())
    } else {
        String::new()
    };
    let records = if h.records == 1 { "1 record".to_owned() } else { format!("{} records", h.records) };
    let kinds = if h.kinds == 1 { "1 kind".to_owned() } else { format!("{} kinds", h.kinds) };
    format!(
        "The record's {}{scope} ({records} of {kinds}{shown}): {}.",
        h.noun,
        h.groups.iter().map(|g| group_text(g, &clean)).collect::<Vec<_>>().join("; ")
    )
}

/// `Influenza, seasonal, injectable, 55 records, 1947-11-14 [ref] to 2020-10-04 [ref]`: each
/// day cited by the record that states it.
fn group_text(g: &HistoryGroup, clean: impl Fn(&str) -> String) -> String {
    let label = clean(&g.label);
    // "completed" is what every procedure and immunization says: only other statuses inform.
    let status = g
        .status
        .as_deref()
        .filter(|s| *s != "completed")
        .map(|s| format!(", {}", clean(s)))
        .unwrap_or_default();
    let (first, latest) = (&g.first, &g.latest);
    if g.count == 1 {
        return format!("{label}, {}{status} [{}]", latest.day, latest.rref);
    }
    format!(
        "{label}, {} records, {} [{}] to {}{status} [{}]",
        g.count, first.day, first.rref, latest.day, latest.rref
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(label: &str, count: usize, first: &str, latest: &str) -> HistoryGroup {
        let at =
            |day: &str| Point { rref: format!("Immunization/{label}-{day}"), day: day.into(), value: None };
        HistoryGroup {
            label: label.into(),
            count,
            first: at(first),
            latest: at(latest),
            status: Some("completed".into()),
        }
    }

    #[test]
    fn a_history_says_how_many_records_of_how_many_kinds_and_when_some_are_left_out() {
        let h = History {
            noun: "immunizations".into(),
            records: 58,
            kinds: 3,
            groups: vec![
                group_of("Influenza", 55, "1947-11-14", "2020-10-04"),
                group_of("Td", 1, "1998-03-13", "1998-03-13"),
            ],
            scope: None,
        };
        assert_eq!(
            text(&h, |s| s.to_owned()),
            "The record's immunizations (58 records of 3 kinds, the 2 most recent kinds shown): \
             Influenza, 55 records, 1947-11-14 [Immunization/Influenza-1947-11-14] to 2020-10-04 \
             [Immunization/Influenza-2020-10-04]; \
             Td, 1998-03-13 [Immunization/Td-1998-03-13]."
        );
    }
}
