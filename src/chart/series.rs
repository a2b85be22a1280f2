//! Trend series: one measured quantity over time (a vital sign, a lab test, or one component of
//! a panel such as blood pressure), built from the patient's observations.

use std::collections::HashMap;

use serde::Serialize;

use crate::fhir::concept::Concept;
use crate::fhir::value::{Quantity, Value};
use crate::fhir::Measured;

/// Points kept per series: enough for a trend, few enough that the chart stays one small page.
pub const MAX_POINTS: usize = 24;

/// One value of a series, with the record that states it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Point {
    #[serde(rename = "ref")]
    pub rref: String,
    pub date: String,
    pub value: f64,
}

/// Where a series' values are expected to lie, as its latest record states it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Range {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// A measured quantity over time, oldest point first; the last point is the latest value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Series {
    /// The LOINC code when the record has one, else the concept's label.
    pub code: String,
    pub name: String,
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_range: Option<Range>,
    /// Values recorded in all, of which `points` holds the latest `MAX_POINTS`.
    pub count: usize,
    pub points: Vec<Point>,
}

/// A series being gathered: its values in record order (oldest first) and its latest range.
struct Gathered {
    code: String,
    name: String,
    values: Vec<(Point, Option<String>)>,
    range: Option<Range>,
}

/// Every quantity series in `records` (observations, oldest first) that `keep` selects by the
/// record's categories. A panel's numeric components (blood pressure) each make a series.
pub fn series(records: &[Measured], keep: impl Fn(&Measured) -> bool) -> Vec<Series> {
    let mut by_code: HashMap<String, Gathered> = HashMap::new();
    let mut order = Vec::new();
    for r in records.iter().filter(|r| keep(r)) {
        let (Some(date), Some(code)) = (r.date, r.code.as_ref()) else { continue };
        let mut add = |concept: &Concept, q: &Quantity, range: Option<Range>| {
            let key = series_code(concept);
            let g = by_code.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                Gathered { code: key, name: concept.label(), values: Vec::new(), range: None }
            });
            let point = Point { rref: r.rref.to_string(), date: date.to_string(), value: q.value };
            g.values.push((point, q.unit.clone()));
            if range.is_some() {
                g.range = range;
            }
        };
        if let Some(Value::Quantity(q)) = &r.value {
            add(code, q, record_range(r));
        }
        for c in &r.components {
            if let Some(Value::Quantity(q)) = &c.value {
                add(&c.code, q, None);
            }
        }
    }
    order.into_iter().filter_map(|k| by_code.remove(&k)).map(finish).collect()
}

/// Keeps the values in the latest value's unit (a trend never mixes units), the last `MAX_POINTS`.
fn finish(g: Gathered) -> Series {
    let unit = g.values.last().and_then(|(_, u)| u.clone());
    let same: Vec<Point> = g.values.into_iter().filter(|(_, u)| *u == unit).map(|(p, _)| p).collect();
    let count = same.len();
    let points = same[count.saturating_sub(MAX_POINTS)..].to_vec();
    Series { code: g.code, name: g.name, unit, reference_range: g.range, count, points }
}

fn series_code(c: &Concept) -> String {
    c.codings
        .iter()
        .find(|c| c.system.as_deref().is_some_and(|s| s.contains("loinc")))
        .or_else(|| c.codings.first())
        .map_or_else(|| c.label(), |c| c.code.clone())
}

fn record_range(r: &Measured) -> Option<Range> {
    let rr = r.reference_range.as_ref()?;
    (rr.low.is_some() || rr.high.is_some()).then_some(Range { low: rr.low, high: rr.high })
}

/// True when one of the record's categories has this code (`vital-signs`, `laboratory`).
pub fn in_category(r: &Measured, code: &str) -> bool {
    r.categories.iter().any(|c| c.has_code(code))
}
