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

fn day(r: &Record) -> String {
    r.date.map(|d| d.day_string()).unwrap_or_else(|| "undated".to_owned())
}

/// The label of a series: the main concept's label, else the type.
pub fn label(r: &Record) -> String {
    r.code.as_ref().map(|c| c.label()).filter(|l| !l.is_empty()).unwrap_or_else(|| r.rref.rtype().to_owned())
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
            let delta = v1 - v0;
            let sign = if delta < 0.0 { "-" } else { "+" };
            text.push_str(&format!(
                "; first {}; change {sign}{}",
                show(earliest),
                format_number(delta.abs())
            ));
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
    })
}
