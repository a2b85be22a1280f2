//! Reading whole records of one patient back from the index, by query.
//!
//! Retrieval works from the index alone (each document stores its record as JSON), so assembling
//! a context needs no database round trip. As in `search.rs`, the patient term is a required
//! clause and every document is checked against it again.

use std::ops::Bound;
use tantivy::collector::TopDocs;

use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DateTime, TantivyDocument, Term};

use super::index::RecordIndex;
use super::schema::Fields;
use super::IndexError;
use crate::fhir::Record;

/// A record found in the index, with its relevance score when the query was scored.
#[derive(Debug, Clone)]
pub struct Found {
    pub record: Record,
    /// Tokens of the rendering, as counted at ingest.
    pub tokens: Option<u32>,
    pub score: f32,
}

impl Found {
    pub fn key(&self) -> String {
        self.record.rref.to_string()
    }
}

/// Clauses for a lookup, built against the index's fields.
pub struct Clauses<'a> {
    fields: Fields,
    index: &'a RecordIndex,
    clauses: Vec<(Occur, Box<dyn Query>)>,
}

impl<'a> Clauses<'a> {
    /// Records whose `field` is any of `values` (codes, types, statuses).
    pub fn any_of(mut self, field: Field, values: &[impl AsRef<str>]) -> Self {
        let f = field.of(&self.fields);
        let terms: Vec<(Occur, Box<dyn Query>)> = values
            .iter()
            .map(|v| {
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(Term::from_field_text(f, v.as_ref()), IndexRecordOption::Basic));
                (Occur::Should, q)
            })
            .collect();
        self.clauses.push((Occur::Must, Box::new(BooleanQuery::new(terms))));
        self
    }

    /// Records dated within `[from, to]` (UTC seconds, inclusive; open ends allowed).
    pub fn between(mut self, from: Option<i64>, to: Option<i64>) -> Self {
        let bound = |ts: Option<i64>| match ts {
            Some(s) => {
                Bound::Included(Term::from_field_date(self.fields.date, DateTime::from_timestamp_secs(s)))
            }
            None => Bound::Unbounded,
        };
        self.clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(from), bound(to)))));
        self
    }

    /// Full-text relevance over the rendering and the note text.
    pub fn text(mut self, words: &str) -> Self {
        let mut parser = QueryParser::for_index(self.index.index(), vec![self.fields.text, self.fields.note]);
        parser.set_field_boost(self.fields.note, 0.3);
        let (q, _) = parser.parse_query_lenient(words);
        self.clauses.push((Occur::Must, q));
        self
    }
}

/// The fields a lookup can filter on.
#[derive(Clone, Copy)]
pub enum Field {
    Codes,
    Type,
    Status,
}

impl Field {
    fn of(self, f: &Fields) -> tantivy::schema::Field {
        match self {
            Field::Codes => f.codes,
            Field::Type => f.rtype,
            Field::Status => f.status,
        }
    }
}

impl RecordIndex {
    /// Starts a lookup.
    pub fn clauses(&self) -> Clauses<'_> {
        Clauses { fields: self.fields(), index: self, clauses: Vec::new() }
    }

    /// The best `limit` records of `patient` matching all `clauses`.
    pub fn lookup(
        &self,
        patient: &str,
        clauses: Clauses<'_>,
        limit: usize,
    ) -> Result<Vec<Found>, IndexError> {
        let f = self.fields();
        let mut all = vec![(
            Occur::Must,
            Box::new(TermQuery::new(Term::from_field_text(f.patient, patient), IndexRecordOption::Basic))
                as Box<dyn Query>,
        )];
        all.extend(clauses.clauses);
        let searcher = self.reader().searcher();
        let top = searcher.search(&BooleanQuery::new(all), &TopDocs::with_limit(limit.max(1)))?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let owner = doc.get_first(f.patient).and_then(|v| v.as_str());
            if owner != Some(patient) {
                tracing::error!("lookup returned a record outside the requested patient; dropped");
                continue;
            }
            let Some(json) = doc.get_first(f.record).and_then(|v| v.as_str()) else { continue };
            let record: Record = match serde_json::from_str(json) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "unreadable record in the index; dropped");
                    continue;
                }
            };
            let tokens = doc.get_first(f.tokens).and_then(|v| v.as_u64()).map(|t| t as u32);
            out.push(Found { record, tokens, score });
        }
        Ok(out)
    }
}
