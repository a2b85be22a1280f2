//! Reads: patients, records for reindexing, raw resources, reference statistics.

use serde::Serialize;

use super::backend::on;
use super::{Store, StoreError};
use crate::fhir::{Record, ResourceRef};

/// One row of `ehrqa patients` (a JSON contract: field names are stable).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow, utoipa::ToSchema)]
pub struct PatientRow {
    pub id: String,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    /// The date of death (or `yes` when only the fact is known); absent for the living.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deceased: Option<String>,
    pub resources: i64,
}

/// A record as read back for indexing.
pub struct StoredRecord {
    pub record: Record,
    pub json: String,
    pub tokens: Option<u32>,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    rowid: i64,
    r#type: String,
    id: String,
    record: String,
    tokens: Option<i64>,
}

/// How many references the stored resources hold.
const REFS_TOTAL: &str = "SELECT CAST(SUM(refs) AS BIGINT) FROM records";

/// References by kind and resolution, for the ingest summary.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct RefCounts {
    pub total: i64,
    pub unresolved: i64,
    /// Unresolved references per kind (literal, urn, conditional, contained, unparseable).
    pub unresolved_by_kind: std::collections::BTreeMap<String, i64>,
}

impl Store {
    pub async fn patients(&self) -> Result<Vec<PatientRow>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_as::<_, PatientRow>(
            "SELECT p.id, p.name, p.birth_date, p.gender, p.deceased, \
               (SELECT COUNT(*) FROM resources r WHERE r.patient_id = p.id) AS resources \
             FROM patients p ORDER BY p.name, p.id",
        )
        .fetch_all(p)
        .await?))
    }

    pub async fn patient_exists(&self, id: &str) -> Result<bool, StoreError> {
        let n: i64 = on!(&self.pool, |p| sqlx::query_scalar("SELECT COUNT(*) FROM patients WHERE id = $1")
            .bind(id)
            .fetch_one(p)
            .await?);
        Ok(n > 0)
    }

    /// Records in storage order, `limit` at a time after `after` (a rowid cursor).
    pub async fn records_page(&self, after: i64, limit: i64) -> Result<(Vec<StoredRecord>, i64), StoreError> {
        let rows: Vec<RecordRow> = on!(&self.pool, |p| {
            sqlx::query_as(
            "SELECT rowid, type, id, record, tokens FROM resources WHERE rowid > $1 ORDER BY rowid LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?
        });
        page(rows, after)
    }

    /// Records written by ingests after `ingest_id`, `limit` at a time after `after` (a rowid
    /// cursor): what an index tagged `ingest_id` lacks.
    pub async fn records_since(
        &self,
        ingest_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<(Vec<StoredRecord>, i64), StoreError> {
        let rows: Vec<RecordRow> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT rowid, type, id, record, tokens FROM resources \
             WHERE ingest_id > $1 AND rowid > $2 ORDER BY rowid LIMIT $3",
        )
        .bind(ingest_id)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await?);
        page(rows, after)
    }

    /// Every record of a patient, oldest first.
    pub async fn patient_records(&self, patient: &str) -> Result<Vec<Record>, StoreError> {
        let rows: Vec<(String, String, String)> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT type, id, record FROM resources WHERE patient_id = $1 ORDER BY ts, type, id",
        )
        .bind(patient)
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|(t, id, json)| {
                serde_json::from_str(&json).map_err(|e| StoreError::CorruptRecord(format!("{t}/{id}"), e))
            })
            .collect()
    }

    pub async fn record_count(&self) -> Result<i64, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_scalar("SELECT COUNT(*) FROM records").fetch_one(p).await?))
    }

    /// The stored raw JSON of a resource.
    pub async fn raw_resource(&self, r: &ResourceRef) -> Result<Option<String>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_scalar("SELECT raw FROM resources WHERE type = $1 AND id = $2")
            .bind(r.rtype())
            .bind(r.id())
            .fetch_optional(p)
            .await?))
    }

    /// The store's references: every ingest reports them when it is done. On SQLite neither
    /// query reads a resource row: the pending counts read the partial index of pending
    /// references (`refs_pending_ingest`), the total reads `resources_refs`.
    pub async fn ref_counts(&self) -> Result<RefCounts, StoreError> {
        let rows: Vec<(String, i64)> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT kind, COUNT(*) FROM refs WHERE resolved = 0 GROUP BY kind"
        )
        .fetch_all(p)
        .await?);
        let total: Option<i64> = on!(&self.pool, |p| sqlx::query_scalar(REFS_TOTAL).fetch_one(p).await?);
        let mut c = RefCounts { total: total.unwrap_or(0), ..RefCounts::default() };
        for (kind, n) in rows {
            c.unresolved += n;
            c.unresolved_by_kind.insert(kind, n);
        }
        Ok(c)
    }
}

/// Rows parsed into records, with the cursor after the last one.
fn page(rows: Vec<RecordRow>, after: i64) -> Result<(Vec<StoredRecord>, i64), StoreError> {
    let last = rows.last().map_or(after, |r| r.rowid);
    let records = rows
        .into_iter()
        .map(|r| {
            let record = serde_json::from_str(&r.record)
                .map_err(|e| StoreError::CorruptRecord(format!("{}/{}", r.r#type, r.id), e))?;
            Ok(StoredRecord { record, json: r.record, tokens: r.tokens.map(|t| t as u32) })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((records, last))
}

#[cfg(test)]
mod tests {
    use super::REFS_TOTAL;

    /// The total is read from the index, not from the rows: a row's `refs` lies after its JSON,
    /// in overflow pages, and summing it over the table read the whole table.
    #[tokio::test]
    async fn the_reference_total_reads_an_index_only() {
        let steps = crate::store::query_plan(REFS_TOTAL).await;
        assert_eq!(steps, ["SCAN resources USING COVERING INDEX resources_refs"]);
    }
}
