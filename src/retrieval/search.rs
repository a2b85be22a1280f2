//! Per-patient search over the record index.
//!
//! The patient term is a required clause of every query built here, and every hit is checked
//! again against the stored patient id before it leaves this module: a record of another patient
//! can never be returned, whatever the query text says.

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument, Term};

use super::index::RecordIndex;
use super::schema::Fields;
use super::IndexError;

/// One search: a patient, words, and optional filters.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub patient: String,
    pub query: String,
    pub rtype: Option<String>,
    /// Inclusive UTC bounds in seconds since the epoch.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: usize,
}

/// One ranked record (a JSON contract: `ehrqa search --format json`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Hit {
    #[serde(rename = "ref")]
    pub rref: String,
    #[serde(rename = "type")]
    pub rtype: String,
    pub date: Option<String>,
    pub text: String,
    pub score: f32,
}

impl RecordIndex {
    /// Ranked records of one patient. An empty query lists the newest records first.
    #[tracing::instrument(skip_all, fields(limit = req.limit))]
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<Hit>, IndexError> {
        let f = self.fields();
        let searcher = self.reader().searcher();
        let filter = filter_clauses(&f, req);
        let limit = req.limit.max(1);
        let scored: Vec<(f32, DocAddress)> = if req.query.trim().is_empty() {
            let query = BooleanQuery::new(with(filter, Box::new(AllQuery)));
            let by_date = TopDocs::with_limit(limit).order_by_fast_field::<DateTime>("date", Order::Desc);
            searcher.search(&query, &by_date)?.into_iter().map(|(_, a)| (0.0, a)).collect()
        } else {
            let text = self.text_query(&f, &req.query);
            let query = BooleanQuery::new(with(filter, text));
            // Fetch some slack so that ties at the cut are ordered by date, not by segment order.
            searcher.search(&query, &TopDocs::with_limit(limit * 2 + 16))?
        };
        let mut hits = scored
            .into_iter()
            .filter_map(|(score, addr)| to_hit(&searcher, &f, addr, score, &req.patient).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        hits.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then_with(|| b.date.cmp(&a.date)).then_with(|| a.rref.cmp(&b.rref))
        });
        hits.truncate(limit);
        Ok(hits)
    }

    fn text_query(&self, f: &Fields, text: &str) -> Box<dyn Query> {
        let mut parser = QueryParser::for_index(self.index(), vec![f.text, f.note, f.codes]);
        parser.set_field_boost(f.note, 0.4);
        parser.set_field_boost(f.codes, 2.0);
        let (query, _errors) = parser.parse_query_lenient(text);
        query
    }
}

fn filter_clauses(f: &Fields, req: &SearchRequest) -> Vec<(Occur, Box<dyn Query>)> {
    let term = |field, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
    };
    let mut clauses = vec![(Occur::Must, term(f.patient, &req.patient))];
    if let Some(t) = &req.rtype {
        clauses.push((Occur::Must, term(f.rtype, t)));
    }
    if req.from.is_some() || req.to.is_some() {
        let bound = |ts: Option<i64>| match ts {
            Some(s) => {
                std::ops::Bound::Included(Term::from_field_date(f.date, DateTime::from_timestamp_secs(s)))
            }
            None => std::ops::Bound::Unbounded,
        };
        clauses.push((Occur::Must, Box::new(RangeQuery::new(bound(req.from), bound(req.to)))));
    }
    clauses
}

fn with(mut clauses: Vec<(Occur, Box<dyn Query>)>, q: Box<dyn Query>) -> Vec<(Occur, Box<dyn Query>)> {
    clauses.push((Occur::Must, q));
    clauses
}

fn to_hit(
    searcher: &Searcher,
    f: &Fields,
    addr: DocAddress,
    score: f32,
    patient: &str,
) -> Result<Option<Hit>, IndexError> {
    let doc: TantivyDocument = searcher.doc(addr)?;
    let text = |field| doc.get_first(field).and_then(|v| v.as_str()).map(str::to_owned);
    if text(f.patient).as_deref() != Some(patient) {
        tracing::error!("search returned a record outside the requested patient; dropped");
        return Ok(None);
    }
    Ok(Some(Hit {
        rref: text(f.key).unwrap_or_default(),
        rtype: text(f.rtype).unwrap_or_default(),
        date: text(f.day),
        text: text(f.text).unwrap_or_default(),
        score,
    }))
}
