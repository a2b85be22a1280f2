//! Series summaries: many records of the same thing (40 weights, 12 A1c results, 30 visits) said
//! in one compact line that still cites the records whose values it states, and lists every
//! record it was built from.

use crate::fhir::value::{format_number, Value};
use crate::fhir::Record;

/// A statement built from several records.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub text: String,
    /// The record the statement is mainly about (the latest, or the one the intent points at).
    pub primary: String,
    /// Every record it was built from.
    pub refs: Vec<String>,
    /// The same statement as data, for answers computed without the model.
    pub computed: Computed,
}

/// What a computed fact states, as data: a series' count and its notable records, or that the
/// record holds nothing of what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Computed {
    /// No records of these concepts (in `scope`).
    Absent {
        names: Vec<String>,
        scope: Option<String>,
    },
    /// How many records of the concepts asked about, over all their series.
    Total {
        names: String,
        count: usize,
        first: Point,
        latest: Point,
        scope: Option<String>,
    },
    Series(Box<SeriesStats>),
    /// Why the patient came, as the notes of that visit state it under their headings (the
    /// notes giving a reason first).
    Reason(Vec<VisitReason>),
    /// The medications whose reason is the condition asked about (`retrieval::treatment`).
    Treatments(Box<Treatments>),
    /// Every record of one kind, grouped (`retrieval::history`).
    History(Box<History>),
    /// The latest of each measurement of a set ("vital signs"), asked for as a whole.
    Panel(Box<Panel>),
    /// A visit and the records made at it (`retrieval::visit`).
    Visit(Box<Visit>),
    /// Who the patient's encounters were with (`retrieval::clinician`).
    Clinician(Box<Clinician>),
}

/// The clinician of the latest (or the asked-about) encounter, and the one most encounters name.
#[derive(Debug, Clone, PartialEq)]
pub struct Clinician {
    pub latest_name: String,
    pub latest: Point,
    /// `latest` is the visit the question named ("at his last visit").
    pub at_anchor: bool,
    pub most_name: String,
    /// Encounters naming `most_name`, of `encounters` that name anyone.
    pub most_count: usize,
    pub encounters: usize,
    pub most_first: Point,
    pub most_latest: Point,
}

/// A visit (an encounter) and the records that name it, by kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Visit {
    /// The encounter's day and reference.
    pub encounter: Point,
    /// What the encounter was (`Encounter for symptom (procedure)`).
    pub label: String,
    /// Records of the listed kinds made at it; `kinds` holds the first of them.
    pub records: usize,
    pub kinds: Vec<VisitKind>,
}

/// Records of one kind made at a visit: each one's label and its day, reference and value.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitKind {
    /// What the answer calls them (`results`, `conditions`).
    pub noun: String,
    pub items: Vec<(String, Point)>,
}

/// The latest value of each series of a panel concept.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The concept (`vital signs`).
    pub name: String,
    /// Each series' label and latest valued record, latest first.
    pub items: Vec<(String, Point)>,
    pub scope: Option<String>,
}

impl Panel {
    /// The fact as the model reads it, and as the answer states it (`answer::computed`, which
    /// passes a `clean` that neutralises citation groups in record text).
    pub fn text(&self, clean: impl Fn(&str) -> String) -> String {
        let scope = self.scope.as_deref().map(|s| format!(" {}", clean(s))).unwrap_or_default();
        let each: Vec<String> = self
            .items
            .iter()
            .map(|(label, p)| {
                let value = p.value.as_deref().map(|v| format!("{} ", clean(v))).unwrap_or_default();
                format!("{} {value}on {} {}", clean(label), p.day, tag_of(&p.rref))
            })
            .collect();
        format!(
            "The latest {}{scope}, each the most recent of its kind: {}.",
            clean(&self.name),
            each.join("; ")
        )
    }
}

/// What a patient has had of one kind (immunizations, procedures, conditions), grouped by what
/// each record is.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// What the records are called (`immunizations`, `active conditions`).
    pub noun: String,
    /// Records of the kind (in `scope`).
    pub records: usize,
    /// Groups among them; `groups` holds the most recent of them.
    pub kinds: usize,
    /// Latest first.
    pub groups: Vec<HistoryGroup>,
    /// `between ... and ...` when the question named a time.
    pub scope: Option<String>,
}

/// Records of one kind that are the same thing (label and first code).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryGroup {
    /// As the records name it (untrusted record text).
    pub label: String,
    pub count: usize,
    /// The first and the latest record, each cited by the day it states.
    pub first: Point,
    pub latest: Point,
    /// The latest record's status (a condition's clinical status).
    pub status: Option<String>,
}

impl HistoryGroup {
    /// The records it cites: the latest, and the first when there are several.
    pub fn refs(&self) -> impl Iterator<Item = &str> {
        let first = (self.count > 1).then_some(self.first.rref.as_str());
        std::iter::once(self.latest.rref.as_str()).chain(first)
    }
}

/// What a condition was the reason for, as the medication records say.
#[derive(Debug, Clone, PartialEq)]
pub struct Treatments {
    /// The condition as the question's vocabulary names it (`strep throat`).
    pub asked: String,
    /// The orders and statements giving it as their reason, latest first.
    pub items: Vec<Treated>,
    /// `between ... and ...` when the question named a time.
    pub scope: Option<String>,
}

/// One medication record given for the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Treated {
    pub rref: String,
    /// `YYYY-MM-DD`, or `undated`.
    pub day: String,
    /// The drug as the record names it (untrusted record text).
    pub drug: String,
    /// The reason as the record names it (`Streptococcal sore throat (disorder)`).
    pub reason: String,
    pub status: Option<String>,
}

/// The reason a note gives for a visit.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitReason {
    /// The note's day, `YYYY-MM-DD`.
    pub day: String,
    /// The note's heading, as written (`Chief Complaint`).
    pub heading: String,
    /// The lines under it (untrusted record text).
    pub lines: Vec<String>,
    /// The note.
    pub rref: String,
}

/// One series' statistics, each point with the record that states it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesStats {
    pub label: String,
    pub rtype: String,
    pub count: usize,
    /// Whether its records carry a code the question's concepts name (not only their type).
    pub coded: bool,
    /// How many series the question's records form (this one among them): a count over all
    /// of them needs every one.
    pub series: usize,
    /// `in 2019`, `since 2015-06-01`: the period the question set.
    pub scope: Option<String>,
    pub first: Point,
    pub latest: Point,
    /// Present when at least two records have numeric values.
    pub numeric: Option<NumericStats>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NumericStats {
    pub first: Point,
    pub latest: Point,
    pub highest: Point,
    pub lowest: Point,
    /// `+0.3 %`, `-4 kg`: latest minus first.
    pub change: String,
}

/// One record's day and value as a summary shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub rref: String,
    /// `YYYY-MM-DD`, or `undated`.
    pub day: String,
    /// `6.2 %`, `128/82 mm[Hg]`; none for records without a value.
    pub value: Option<String>,
}

impl Point {
    pub fn of(r: &Record) -> Self {
        Self { rref: r.rref.to_string(), day: day(r), value: value_text(r) }
    }
}

/// The numeric value of a record for the codes asked about: its own value, or the value of the
/// component with one of those codes (systolic in a blood-pressure panel).
pub fn value_of(r: &Record, codes: &[&str]) -> Option<f64> {
    if let Some(v) = r.value.as_ref().and_then(Value::as_number) {
        return Some(v);
    }
    r.components
        .iter()
        .filter(|c| codes.is_empty() || c.code.codings.iter().any(|k| codes.contains(&k.code.as_str())))
        .find_map(|c| c.value.as_ref().and_then(Value::as_number))
}

/// How a record's value reads in a summary (`6.2 %`, `128/82 mm[Hg]`).
pub fn value_text(r: &Record) -> Option<String> {
    if let Some(v) = &r.value {
        return Some(v.to_string());
    }
    let parts: Vec<&Value> = r.components.iter().filter_map(|c| c.value.as_ref()).collect();
    match parts.as_slice() {
        [] => None,
        [Value::Quantity(a), Value::Quantity(b)] if a.unit == b.unit => Some(format!(
            "{}/{}{}",
            format_number(a.value),
            format_number(b.value),
            a.unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default()
        )),
        many => Some(many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

fn tag(r: &Record) -> String {
    format!("[{}]", r.rref)
}

fn tag_of(rref: &str) -> String {
    format!("[{rref}]")
}

pub fn day(r: &Record) -> String {
    r.date.map(|d| d.day_string()).unwrap_or_else(|| "undated".to_owned())
}

/// The label of a series: the main concept's label, else the type.
pub fn label(r: &Record) -> String {
    r.code.as_ref().map(|c| c.label()).filter(|l| !l.is_empty()).unwrap_or_else(|| r.rref.rtype().to_owned())
}

/// Sorts records latest first, undated last, ties by reference (so the order does not depend on
/// the index's).
pub fn latest_first(records: &mut [&Record]) {
    records.sort_by(|x, y| {
        let t = |r: &Record| r.date.map(|d| d.timestamp());
        t(y).cmp(&t(x)).then_with(|| x.rref.cmp(&y.rref))
    });
}

/// What makes records one series: their type, label and first code. Two codes under one
/// display (a systolic and a diastolic pressure both labelled "LOINC Code") are two series.
pub type SeriesKey = (String, String, Option<String>);

pub fn series_key(r: &Record) -> SeriesKey {
    let code = r.code.as_ref().and_then(|c| c.codings.first()).map(|c| c.code.clone());
    (r.rref.rtype().to_owned(), label(r), code)
}

/// Which record of the series the statement centres on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Latest,
    First,
    Highest,
    Lowest,
}

/// Summarises records of one series, given oldest first. `codes` picks the component that
/// carries the value in multi-part observations; `scope` says what range the records cover
/// (e.g. `in 2019`) when the question set one.
pub fn summarise(series: &[&Record], codes: &[&str], focus: Focus, scope: Option<&str>) -> Option<Summary> {
    let first = *series.first()?;
    let last = *series.last()?;
    let n = series.len();
    let name = label(first);
    let noun = if first.rref.rtype() == "Observation" { "results" } else { "records" };
    let noun = if n == 1 { noun.trim_end_matches('s') } else { noun };
    let scope = scope.map(|s| format!(" {s}")).unwrap_or_default();
    let mut text = format!("{name}: {n} {noun}{scope}");
    if n > 1 {
        text.push_str(&format!(" from {} to {}", day(first), day(last)));
    }
    let numeric: Vec<(&Record, f64)> =
        series.iter().filter_map(|r| value_of(r, codes).map(|v| (*r, v))).collect();
    let mut primary = last;
    let mut stats = SeriesStats {
        label: name.clone(),
        rtype: first.rref.rtype().to_owned(),
        count: n,
        coded: series.iter().any(|r| r.all_codes().any(|c| codes.contains(&c))),
        series: 1,
        scope: (!scope.is_empty()).then(|| scope.trim().to_owned()),
        first: Point::of(first),
        latest: Point::of(last),
        numeric: None,
    };
    if numeric.is_empty() {
        text.push_str(&format!("; latest {} {}", day(last), tag(last)));
        if n > 1 {
            text.push_str(&format!("; first {} {}", day(first), tag(first)));
        }
        if focus == Focus::First {
            primary = first;
        }
    } else {
        let show = |r: &Record| format!("{} on {} {}", value_text(r).unwrap_or_default(), day(r), tag(r));
        let (latest, _) = *numeric.last().expect("not empty");
        text.push_str(&format!("; latest {}", show(latest)));
        if numeric.len() > 1 {
            let hi = numeric.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("not empty").0;
            let lo = numeric.iter().min_by(|a, b| a.1.total_cmp(&b.1)).expect("not empty").0;
            let (earliest, v0) = numeric[0];
            let v1 = numeric.last().expect("not empty").1;
            text.push_str(&format!("; highest {}; lowest {}", show(hi), show(lo)));
            // The change of the values as shown, so that the numbers a reader sees add up.
            let shown = |v: f64| format_number(v).parse::<f64>().unwrap_or(v);
            let delta = shown(v1) - shown(v0);
            let sign = if delta < 0.0 { "-" } else { "+" };
            let change = format!("{sign}{}", format_number(delta.abs()));
            text.push_str(&format!("; first {}; change {change}", show(earliest)));
            let unit = value_unit(latest);
            stats.numeric = Some(NumericStats {
                first: Point::of(earliest),
                latest: Point::of(latest),
                highest: Point::of(hi),
                lowest: Point::of(lo),
                change: format!("{change}{}", unit.map(|u| format!(" {u}")).unwrap_or_default()),
            });
            primary = match focus {
                Focus::Latest => latest,
                Focus::First => earliest,
                Focus::Highest => hi,
                Focus::Lowest => lo,
            };
        }
    }
    Some(Summary {
        text,
        primary: primary.rref.to_string(),
        refs: series.iter().map(|r| r.rref.to_string()).collect(),
        computed: Computed::Series(Box::new(stats)),
    })
}

/// The unit of a record's value (or of its first component's).
fn value_unit(r: &Record) -> Option<&str> {
    let q = match &r.value {
        Some(Value::Quantity(q)) => Some(q),
        _ => r.components.iter().find_map(|c| match &c.value {
            Some(Value::Quantity(q)) => Some(q),
            _ => None,
        }),
    };
    q.and_then(|q| q.unit.as_deref())
}
