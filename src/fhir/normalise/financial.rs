//! Claim and ExplanationOfBenefit: what was billed and paid, and for what.

use serde_json::Value as Json;

use super::{join_labels, Parts, Source};
use crate::fhir::concept::Concept;
use crate::fhir::record::Record;
use crate::fhir::value::format_number;

pub fn normalise(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("type");
    let mut detail = String::new();
    let items: Vec<String> = src
        .obj()
        .get("item")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("productOrService").and_then(Concept::from_json))
        .map(|c| c.label())
        .collect();
    if !items.is_empty() {
        detail.push_str(&format!(": {}", join_labels(&items, 4)));
    }
    if let Some(total) = money(src.at("total")).or_else(|| money(src.at("total.amount"))) {
        detail.push_str(&format!("; total {total}"));
    }
    if let Some(paid) = money(src.at("payment.amount")) {
        detail.push_str(&format!("; paid {paid}"));
    }
    Parts { label: rec.code.as_ref().map(|c| c.label()).unwrap_or_default(), detail }
}

fn money(v: Option<&Json>) -> Option<String> {
    let v = v?;
    let value = v.get("value")?.as_f64()?;
    let currency = v.get("currency").and_then(Json::as_str).unwrap_or("");
    Some(format!("{} {currency}", format_number(value)).trim().to_owned())
}
