//! Computed facts: for the concepts a question names, the answer-bearing numbers computed from the
//! structured data (latest, first, count in a period, highest, lowest, change), each citing the
//! records it states values from, so even a small model can answer aggregation questions.

use std::collections::BTreeMap;

use super::lookup::Found;
use super::question::{Analysis, Intent, TimeWindow};
use super::summary::{self, label, Computed, Focus, Point, Summary};
use crate::fhir::date::FhirDate;
use crate::fhir::Record;

/// At most this many series get a fact (the largest first).
const MAX_SERIES: usize = 8;

pub fn compute(a: &Analysis, records: &[Found], window: &TimeWindow, patient_ref: &str) -> Vec<Summary> {
    if a.concepts.is_empty() {
        return Vec::new();
    }
    let scope = scope_text(window);
    let in_scope: Vec<&Found> = records
        .iter()
        .filter(|f| window.is_open() || f.record.date.is_some_and(|d| window.contains(d.timestamp())))
        .collect();
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
    let mut series: BTreeMap<(String, String), Vec<&Record>> = BTreeMap::new();
    for f in in_scope {
        let r = &f.record;
        series.entry((r.rref.rtype().to_owned(), label(r))).or_default().push(r);
    }
    let mut groups: Vec<Vec<&Record>> = series.into_values().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let codes: Vec<&str> = a.codes().collect();
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
fn scope_text(w: &TimeWindow) -> Option<String> {
    let day = |t: i64| FhirDate::from_timestamp(t).day_string();
    match (w.from, w.to) {
        (Some(f), Some(t)) if day(f) == day(t) => Some(format!("on {}", day(f))),
        (Some(f), Some(t)) => Some(format!("between {} and {}", day(f), day(t))),
        (Some(f), None) => Some(format!("since {}", day(f))),
        (None, Some(t)) => Some(format!("until {}", day(t))),
        (None, None) => None,
    }
}
