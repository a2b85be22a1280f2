//! The rows an input writes into the multi-row tables, described once for both backends.
//!
//! Each table is an insert head, an optional conflict clause and a row type whose `params`
//! lists the values in column order. SQLite binds them to one prepared statement per table
//! (`sqlite_rows`); PostgreSQL sends them as multi-row `VALUES` (`write::insert_pg`). Values
//! borrow the prepared input: nothing is copied to describe a row.

use crate::fhir::attachment::Attachment;
use crate::fhir::compartment;
use crate::fhir::normalise::patient::Demographics;
use crate::fhir::resolve::RefLink;
use crate::fhir::PreparedResource;

/// One bound value. NULLs keep their column's type, which PostgreSQL needs to plan the insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
}

/// An insert statement without its values.
pub struct Table {
    /// `INSERT INTO t (c1, c2, ...) `, up to the values.
    pub head: &'static str,
    /// What follows the values (`ON CONFLICT ...`), or "".
    pub tail: &'static str,
    /// How many values a row binds.
    pub columns: usize,
}

/// A row of one table.
pub trait Row {
    const TABLE: Table;

    /// The row's values in column order (exactly `TABLE.columns` of them), appended to `out`.
    fn params<'s>(&'s self, out: &mut Vec<Param<'s>>);
}

/// Everything one input writes into the multi-row tables (images are written on their own).
pub struct Rows<'a> {
    pub resources: Vec<ResourceRow<'a>>,
    pub refs: Vec<RefRow<'a>>,
    pub identifiers: Vec<IdentifierRow<'a>>,
    pub attachments: Vec<AttachmentRow<'a>>,
    pub patients: Vec<PatientRow<'a>>,
}

impl<'a> Rows<'a> {
    /// The rows of `resources`, written as part of ingest `ingest_id`. Only references their
    /// own input left unresolved are stored (see `resolve`).
    pub fn of(resources: &[&'a PreparedResource], ingest_id: i64) -> Self {
        Rows {
            resources: resources
                .iter()
                .map(|&r| ResourceRow { r, day: r.record.date.map(|d| d.day_string()), ingest_id })
                .collect(),
            refs: resources
                .iter()
                .flat_map(|&r| {
                    r.links.iter().filter(|l| !l.resolved).map(move |link| RefRow { r, link, ingest_id })
                })
                .collect(),
            identifiers: resources
                .iter()
                .flat_map(|&r| {
                    r.identifiers.iter().map(move |(system, value)| IdentifierRow { r, system, value })
                })
                .collect(),
            attachments: resources
                .iter()
                .flat_map(|&r| r.attachments.iter().map(move |a| AttachmentRow { r, a }))
                .collect(),
            patients: resources
                .iter()
                .filter_map(|r| Some(PatientRow { id: r.rref.id(), d: r.demographics.as_ref()? }))
                .collect(),
        }
    }
}

pub struct ResourceRow<'a> {
    r: &'a PreparedResource,
    /// The record's date as rendered (`YYYY[-MM[-DD]]`).
    day: Option<String>,
    ingest_id: i64,
}

impl Row for ResourceRow<'_> {
    const TABLE: Table = Table {
        head: "INSERT INTO resources (type, id, patient_id, full_url, version_id, last_updated, hash, raw, \
               ingest_id, date, ts, status, code, text, record, refs, tokens) ",
        // A replaced resource's row is updated in place.
        tail: " ON CONFLICT (type, id) DO UPDATE SET patient_id = excluded.patient_id, \
               full_url = excluded.full_url, version_id = excluded.version_id, \
               last_updated = excluded.last_updated, hash = excluded.hash, raw = excluded.raw, \
               ingest_id = excluded.ingest_id, date = excluded.date, ts = excluded.ts, \
               status = excluded.status, code = excluded.code, text = excluded.text, \
               record = excluded.record, refs = excluded.refs, tokens = excluded.tokens",
        columns: 17,
    };

    fn params<'s>(&'s self, out: &mut Vec<Param<'s>>) {
        let (r, rec) = (self.r, &self.r.record);
        out.extend([
            Param::Text(Some(r.rref.rtype())),
            Param::Text(Some(r.rref.id())),
            Param::Text(rec.patient.as_deref()),
            Param::Text(r.full_url.as_deref()),
            Param::Text(r.version_id.as_deref()),
            Param::Int(r.last_updated),
            Param::Text(Some(&r.hash)),
            Param::Text(Some(&r.raw)),
            Param::Int(Some(self.ingest_id)),
            Param::Text(self.day.as_deref()),
            Param::Int(rec.date.map(|d| d.timestamp())),
            Param::Text(rec.status.as_deref()),
            Param::Text(rec.code.as_ref().and_then(|c| c.codings.first()).map(|c| c.code.as_str())),
            Param::Text(Some(&rec.text)),
            Param::Text(Some(&r.record_json)),
            Param::Int(Some(r.links.len() as i64)),
            Param::Int(r.tokens.map(i64::from)),
        ]);
    }
}

pub struct RefRow<'a> {
    r: &'a PreparedResource,
    link: &'a RefLink,
    ingest_id: i64,
}

impl Row for RefRow<'_> {
    const TABLE: Table = Table {
        head: "INSERT INTO refs (src_type, src_id, path, raw, kind, target_type, target_id, resolved, \
               cond_system, cond_value, ingest_id, adopts) ",
        tail: "",
        columns: 12,
    };

    fn params<'s>(&'s self, out: &mut Vec<Param<'s>>) {
        let (r, l) = (self.r, self.link);
        let cond = l.conditional.as_ref();
        out.extend([
            Param::Text(Some(r.rref.rtype())),
            Param::Text(Some(r.rref.id())),
            Param::Text(Some(&l.path)),
            Param::Text(Some(&l.raw)),
            Param::Text(Some(l.kind.as_str())),
            Param::Text(l.target.as_ref().map(|t| t.rtype()).or(cond.map(|c| c.rtype.as_str()))),
            Param::Text(l.target.as_ref().map(|t| t.id())),
            Param::Int(Some(i64::from(l.resolved))),
            Param::Text(cond.and_then(|c| c.system.as_deref())),
            Param::Text(cond.map(|c| c.value.as_str())),
            Param::Int(Some(self.ingest_id)),
            Param::Int(Some(i64::from(compartment::adopts_patient(r.record.patient.as_deref(), l)))),
        ]);
    }
}

pub struct IdentifierRow<'a> {
    r: &'a PreparedResource,
    system: &'a Option<String>,
    value: &'a str,
}

impl Row for IdentifierRow<'_> {
    const TABLE: Table = Table {
        head: "INSERT INTO identifiers (resource_type, resource_id, system, value) ",
        tail: "",
        columns: 4,
    };

    fn params<'s>(&'s self, out: &mut Vec<Param<'s>>) {
        out.extend([
            Param::Text(Some(self.r.rref.rtype())),
            Param::Text(Some(self.r.rref.id())),
            Param::Text(self.system.as_deref()),
            Param::Text(Some(self.value)),
        ]);
    }
}

pub struct AttachmentRow<'a> {
    r: &'a PreparedResource,
    a: &'a Attachment,
}

impl Row for AttachmentRow<'_> {
    const TABLE: Table = Table {
        head: "INSERT INTO attachments (resource_type, resource_id, path, content_type, title, size, \
               sha256, url, is_text) ",
        tail: "",
        columns: 9,
    };

    fn params<'s>(&'s self, out: &mut Vec<Param<'s>>) {
        let a = self.a;
        out.extend([
            Param::Text(Some(self.r.rref.rtype())),
            Param::Text(Some(self.r.rref.id())),
            Param::Text(Some(&a.path)),
            Param::Text(a.content_type.as_deref()),
            Param::Text(a.title.as_deref()),
            Param::Int(Some(a.size as i64)),
            Param::Text(a.sha256.as_deref()),
            Param::Text(a.url.as_deref()),
            Param::Int(Some(i64::from(a.text.is_some()))),
        ]);
    }
}

pub struct PatientRow<'a> {
    id: &'a str,
    d: &'a Demographics,
}

impl Row for PatientRow<'_> {
    const TABLE: Table = Table {
        head: "INSERT INTO patients (id, name, birth_date, gender, deceased) ",
        tail: " ON CONFLICT (id) DO UPDATE SET name = excluded.name, birth_date = excluded.birth_date, \
               gender = excluded.gender, deceased = excluded.deceased",
        columns: 5,
    };

    fn params<'s>(&'s self, out: &mut Vec<Param<'s>>) {
        let d = self.d;
        out.extend([
            Param::Text(Some(self.id)),
            Param::Text(d.name.as_deref()),
            Param::Text(d.birth_date.as_deref()),
            Param::Text(d.gender.as_deref()),
            Param::Text(d.deceased.as_deref()),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row binds as many values as its table names columns: a mismatch would shift every
    /// value into the wrong column on one backend or fail the statement on the other.
    #[test]
    fn each_table_names_as_many_columns_as_its_rows_bind() {
        for t in
            [ResourceRow::TABLE, RefRow::TABLE, IdentifierRow::TABLE, AttachmentRow::TABLE, PatientRow::TABLE]
        {
            let list =
                t.head.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map(|(cols, _)| cols);
            let named = list.expect("a column list").split(',').count();
            assert_eq!(named, t.columns, "{}", t.head);
        }
    }
}
