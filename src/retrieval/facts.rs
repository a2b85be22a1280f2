//! Computed facts: for the concepts a question names, the answer-bearing numbers computed from the
//! structured data (latest, first, count in a period, highest, lowest, change), each citing the
//! records it states values from, so even a small model can answer aggregation questions.

use std::collections::BTreeMap;

use super::lookup::Found;
use super::question::{label_overlap, Analysis, Intent, TimeWindow};
use super::rank::Anchored;
use super::summary::{self, label, series_key, Computed, Focus, Point, SeriesKey, Summary};
use crate::fhir::date::FhirDate;
use crate::fhir::Record;

/// At most this many series get a fact (the largest first).
const MAX_SERIES: usize = 8;

/// Concepts naming a set of measurements, each its own series ("vital signs"): asked for as a
/// whole, the fact is the latest of each, on one line, not one long fact per series (at 2,048
/// tokens five of eight fitted, and blood pressure was among those left out).
const PANELS: [&str; 1] = ["vital signs"];

/// `anchor`: the record a time the question named was resolved on; the facts' scope then names
/// and cites it (`before the surgery on 1953-07-26 [Procedure/x]`), and they list it in `refs`.
pub fn compute(
    a: &Analysis,
    records: &[Found],
    window: &TimeWindow,
    anchor: Option<&Anchored>,
    patient_ref: &str,
) -> Vec<Summary> {
    if a.concepts.is_empty() {
        return Vec::new();
    }
    let scope = anchor.map(Anchored::scope).or_else(|| scope_text(window));
    let mut facts = compute_in(a, records, window, scope, patient_ref);
    if let Some(x) = anchor {
        for f in &mut facts {
            f.refs.push(x.found.key());
        }
    }
    facts
}

fn compute_in(
    a: &Analysis,
    records: &[Found],
    window: &TimeWindow,
    scope: Option<String>,
    patient_ref: &str,
) -> Vec<Summary> {
    let in_scope: Vec<&Found> = records.iter().filter(|f| window.admits(f.record.date)).collect();
    if in_scope.is_empty() {
        let names: Vec<&str> = a.concepts.iter().map(|c| c.name.as_str()).collect();
        return vec![Summary {
            text: format!(
                "No records of {} in the patient's record{}.",
                names.join(" or "),
                scope.as_deref().map(|s| format!(" {s}")).unwrap_or_default()
            ),
            primary: patient_ref.to_owned(),
            refs: Vec::new(),
            computed: Computed::Absent {
                names: names.iter().map(|n| (*n).to_owned()).collect(),
                scope: scope.clone(),
            },
        }];
    }
    let mut series: BTreeMap<SeriesKey, Vec<&Record>> = BTreeMap::new();
    for f in in_scope {
        series.entry(series_key(&f.record)).or_default().push(&f.record);
    }
    let mut groups: Vec<Vec<&Record>> = series.into_values().collect();
    let codes: Vec<&str> = a.codes().collect();
    // The series holding a code the question names first, then those its label names
    // ("varicella" among a child's twelve vaccines), then the largest.
    let coded = |g: &[&Record]| g.iter().any(|r| r.all_codes().any(|c| codes.contains(&c)));
    groups.sort_by_cached_key(|g| {
        std::cmp::Reverse((coded(g), label_overlap(&label(g[0]), &a.keywords), g.len()))
    });
    if let Some(panel) = panel(a, &groups, scope.as_deref()) {
        return vec![panel];
    }
    let focus = match a.intent {
        Intent::First => Focus::First,
        Intent::Highest => Focus::Highest,
        Intent::Lowest => Focus::Lowest,
        _ => Focus::Latest,
    };
    let total = groups.len();
    let all = (a.intent == Intent::Count && total > 1).then(|| count_all(a, &groups, scope.as_deref()));
    all.into_iter()
        .chain(
            groups
                .iter()
                .take(MAX_SERIES)
                .filter_map(|g| summary::summarise(g, &codes, focus, scope.as_deref()))
                .map(|mut s| {
                    if let Computed::Series(stats) = &mut s.computed {
                        stats.series = total;
                    }
                    s
                }),
        )
        .collect()
}

/// The latest of each series of a panel concept asked for as a whole (latest or plain).
fn panel(a: &Analysis, groups: &[Vec<&Record>], scope: Option<&str>) -> Option<Summary> {
    let [only] = a.concepts.as_slice() else { return None };
    if !PANELS.contains(&only.name.as_str()) || !matches!(a.intent, Intent::Latest | Intent::Lookup) {
        return None;
    }
    let mut items: Vec<(String, Point)> = groups
        .iter()
        .filter_map(|g| g.iter().rev().map(|r| (label(r), Point::of(r))).find(|(_, p)| p.value.is_some()))
        .collect();
    if items.len() < 2 {
        return None;
    }
    // Latest first, then by name.
    items.sort_by(|(l1, p1), (l2, p2)| p2.day.cmp(&p1.day).then_with(|| l1.cmp(l2)));
    let panel = summary::Panel { name: only.name.clone(), items, scope: scope.map(str::to_owned) };
    Some(Summary {
        text: panel.text(str::to_owned),
        primary: panel.items[0].1.rref.clone(),
        refs: panel.items.iter().map(|(_, p)| p.rref.clone()).collect(),
        computed: Computed::Panel(Box::new(panel)),
    })
}

/// "How many" over several series (visits of several kinds): the total, with the first and
/// the latest record.
fn count_all(a: &Analysis, groups: &[Vec<&Record>], scope: Option<&str>) -> Summary {
    let mut all: Vec<&Record> = groups.iter().flatten().copied().collect();
    all.sort_by_key(|r| r.date.map(|d| d.timestamp()));
    let names: Vec<&str> = a.concepts.iter().map(|c| c.name.as_str()).collect();
    let names = names.join(" or ");
    let (first, latest) = (Point::of(all[0]), Point::of(all[all.len() - 1]));
    let scope_text = scope.map(|s| format!(" {s}")).unwrap_or_default();
    Summary {
        text: format!(
            "{names}: {} records in all{scope_text}; first {} [{}]; latest {} [{}]",
            all.len(),
            first.day,
            first.rref,
            latest.day,
            latest.rref
        ),
        primary: latest.rref.clone(),
        refs: all.iter().map(|r| r.rref.to_string()).collect(),
        computed: Computed::Total { names, count: all.len(), first, latest, scope: scope.map(str::to_owned) },
    }
}
/// `in 2019-01-01..2019-12-31`, `since 2015-06-01`, `before 2010-01-01`.
pub(super) fn scope_text(w: &TimeWindow) -> Option<String> {
    let day = |t: i64| FhirDate::from_timestamp(t).day_string();
    match (w.from, w.to) {
        (Some(f), Some(t)) if day(f) == day(t) => Some(format!("on {}", day(f))),
        (Some(f), Some(t)) => Some(format!("between {} and {}", day(f), day(t))),
        (Some(f), None) => Some(format!("since {}", day(f))),
        (None, Some(t)) => Some(format!("until {}", day(t))),
        (None, None) => None,
    }
}
