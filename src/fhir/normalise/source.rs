//! A lenient reader over one resource's JSON that records what it could not read.
//!
//! Normalisers never fail: a field of an unexpected shape is skipped and noted in `issues`, so a
//! resource with one odd optional field is still stored, rendered and counted.

use serde_json::{Map, Value as Json};

use crate::fhir::concept::Concept;
use crate::fhir::date::FhirDate;

pub struct Source<'a> {
    obj: &'a Map<String, Json>,
    pub issues: Vec<String>,
}

impl<'a> Source<'a> {
    pub fn new(obj: &'a Map<String, Json>) -> Self {
        Self { obj, issues: Vec::new() }
    }

    pub fn obj(&self) -> &'a Map<String, Json> {
        self.obj
    }

    /// The value at a dotted path (`context.period.start`); arrays take their first element.
    pub fn at(&self, path: &str) -> Option<&'a Json> {
        let mut cur: &Json = self.obj.get(path.split('.').next()?)?;
        for key in path.split('.').skip(1) {
            cur = match cur {
                Json::Array(items) => items.first()?.get(key)?,
                other => other.get(key)?,
            };
        }
        match cur {
            Json::Array(items) if !items.is_empty() && !items[0].is_object() => Some(cur),
            Json::Array(items) => items.first(),
            other => Some(other),
        }
    }

    pub fn str(&self, path: &str) -> Option<&'a str> {
        self.at(path).and_then(Json::as_str).filter(|s| !s.trim().is_empty())
    }

    /// A CodeableConcept at `path`; notes an issue when present but unreadable.
    pub fn concept(&mut self, path: &str) -> Option<Concept> {
        let v = self.at(path)?;
        let c = Concept::from_json(v);
        if c.is_none() {
            self.issues.push(format!("{path}: not a readable CodeableConcept"));
        }
        c
    }

    /// Every CodeableConcept in the array at top-level `key`.
    pub fn concepts(&self, key: &str) -> Vec<Concept> {
        Concept::list_from_json(self.obj.get(key))
    }

    /// The first of `paths` that holds a date; notes unparseable dates.
    pub fn first_date(&mut self, paths: &[&str]) -> Option<FhirDate> {
        for path in paths {
            if let Some(raw) = self.str(path) {
                match FhirDate::parse(raw) {
                    Some(d) => return Some(d),
                    None => self.issues.push(format!("{path}: unreadable date {raw:?}")),
                }
            }
        }
        None
    }

    /// `status` as a code, or the code of a `clinicalStatus` concept (Condition, Allergy).
    pub fn status(&mut self) -> Option<String> {
        if let Some(s) = self.str("status") {
            return Some(s.to_owned());
        }
        self.concept("clinicalStatus").and_then(|c| c.codings.first().map(|c| c.code.clone()).or(c.text))
    }

    /// Labels of the concepts in `key`, joined for a rendering.
    pub fn labels(&self, key: &str) -> Vec<String> {
        self.concepts(key).iter().map(Concept::label).filter(|l| !l.is_empty()).collect()
    }
}
