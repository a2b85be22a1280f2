//! Reads for a patient's chart: the dated timeline, paged by keyset so that the largest record
//! costs the same per page as the smallest, their observations for trend series, and one record.

use serde::Serialize;

use super::backend::on;
use super::{Store, StoreError};
use crate::fhir::{Measured, Record, ResourceRef};

/// The resource types a timeline shows: visits, results, procedures, immunizations, notes,
/// problems, medications and allergies.
pub const TIMELINE_TYPES: &[&str] = &[
    "Encounter",
    "Observation",
    "DiagnosticReport",
    "Procedure",
    "Immunization",
    "DocumentReference",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
];

/// One dated line of a timeline.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// `Type/id`, the reference a citation uses.
    #[serde(rename = "ref")]
    pub rref: String,
    #[serde(rename = "type")]
    pub rtype: String,
    /// The clinically meaningful date, as the record gave it.
    pub date: String,
    pub status: Option<String>,
    /// The one-line rendering.
    pub text: String,
    #[serde(skip)]
    ts: i64,
    #[serde(skip)]
    id: String,
}

/// Where a timeline page ends: the last entry's (timestamp, type, id), the order's key. Opaque to
/// clients (`ts.type.id`), which pass it back as `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCursor {
    ts: i64,
    rtype: String,
    id: String,
}

impl TimelineCursor {
    pub fn parse(s: &str) -> Option<Self> {
        let (ts, rest) = s.split_once('.')?;
        let (rtype, id) = rest.split_once('.')?;
        let r = ResourceRef::new(rtype, id)?;
        Some(Self { ts: ts.parse().ok()?, rtype: r.rtype().to_owned(), id: r.id().to_owned() })
    }

    fn after(e: &TimelineEntry) -> Self {
        Self { ts: e.ts, rtype: e.rtype.clone(), id: e.id.clone() }
    }
}

impl std::fmt::Display for TimelineCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.ts, self.rtype, self.id)
    }
}

/// One page of a timeline, newest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl Store {
    /// The patient's dated records of `types` (each one of `TIMELINE_TYPES`), newest first, after
    /// `cursor`. Types outside the timeline's are ignored, so the SQL holds only known names.
    pub async fn timeline(
        &self,
        patient: &str,
        types: &[String],
        cursor: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<TimelinePage, StoreError> {
        let types: Vec<&str> =
            TIMELINE_TYPES.iter().copied().filter(|t| types.iter().any(|w| w == t)).collect();
        if types.is_empty() {
            return Ok(TimelinePage { entries: Vec::new(), next_cursor: None });
        }
        let list = types.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT type || '/' || id AS rref, type AS rtype, date, status, text, ts, id FROM resources \
             WHERE patient_id = $1 AND type IN ({list}) AND ts IS NOT NULL AND date IS NOT NULL \
             AND (ts < $2 OR (ts = $3 AND (type > $4 OR (type = $5 AND id > $6)))) \
             ORDER BY ts DESC, type, id LIMIT $7"
        );
        let c = cursor.cloned().unwrap_or(TimelineCursor {
            ts: i64::MAX,
            rtype: String::new(),
            id: String::new(),
        });
        let mut entries: Vec<TimelineEntry> = on!(&self.pool, |p| sqlx::query_as(&sql)
            .bind(patient)
            .bind(c.ts)
            .bind(c.ts)
            .bind(&c.rtype)
            .bind(&c.rtype)
            .bind(&c.id)
            .bind((limit + 1) as i64)
            .fetch_all(p)
            .await?);
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_cursor =
            more.then(|| entries.last().map(|e| TimelineCursor::after(e).to_string())).flatten();
        Ok(TimelinePage { entries, next_cursor })
    }

    /// The measured part of the patient's observations, oldest first, for trend series.
    pub async fn observations(&self, patient: &str) -> Result<Vec<Measured>, StoreError> {
        let rows: Vec<(String, String)> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT id, record FROM resources WHERE patient_id = $1 AND type = 'Observation' \
             AND ts IS NOT NULL ORDER BY ts, id",
        )
        .bind(patient)
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|(id, json)| {
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::CorruptRecord(format!("Observation/{id}"), e))
            })
            .collect()
    }

    /// Whether the patient's record holds this resource (without reading it).
    pub async fn holds(&self, patient: &str, r: &ResourceRef) -> Result<bool, StoreError> {
        let n: i64 = on!(&self.pool, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM resources WHERE type = $1 AND id = $2 AND patient_id = $3"
        )
        .bind(r.rtype())
        .bind(r.id())
        .bind(patient)
        .fetch_one(p)
        .await?);
        Ok(n > 0)
    }

    /// One record of the patient's, `None` when it is not theirs (or does not exist).
    pub async fn record_of(&self, patient: &str, r: &ResourceRef) -> Result<Option<Record>, StoreError> {
        let json: Option<String> = on!(&self.pool, |p| sqlx::query_scalar(
            "SELECT record FROM resources WHERE type = $1 AND id = $2 AND patient_id = $3"
        )
        .bind(r.rtype())
        .bind(r.id())
        .bind(patient)
        .fetch_optional(p)
        .await?);
        json.map(|j| serde_json::from_str(&j).map_err(|e| StoreError::CorruptRecord(r.to_string(), e)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_is_not_a_reference() {
        let c = TimelineCursor::parse("1404086400.Observation.e8deca02-1").unwrap();
        assert_eq!(c.to_string(), "1404086400.Observation.e8deca02-1");
        let negative = TimelineCursor::parse("-86400.Encounter.a.b").unwrap();
        assert_eq!((negative.ts, negative.id.as_str()), (-86400, "a.b"));
        for bad in
            ["", "x.Observation.1", "1.NotAType.1", "1.Observation", "1.Observation.a b", "1.Observation.'"]
        {
            assert!(TimelineCursor::parse(bad).is_none(), "{bad:?}");
        }
    }
}
