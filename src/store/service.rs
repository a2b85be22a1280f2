//! What the service keeps besides records: the audit log, patient summaries, sync state.

use std::collections::BTreeMap;

use serde::Serialize;

use super::backend::on;
use super::{Store, StoreError};

/// A patient at a glance (`GET /v1/patients/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PatientSummary {
    pub id: String,
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub deceased: Option<String>,
    /// Resources per type.
    pub counts: BTreeMap<String, i64>,
    /// Earliest and latest clinical dates in the record.
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    pub active_problems: Vec<SummaryLine>,
    pub active_medications: Vec<SummaryLine>,
    pub allergies: Vec<SummaryLine>,
}

/// One resource in a summary list.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SummaryLine {
    #[serde(rename = "ref")]
    pub rref: String,
    pub date: Option<String>,
    pub text: String,
}

#[derive(sqlx::FromRow)]
struct Demographics {
    id: String,
    name: Option<String>,
    birth_date: Option<String>,
    gender: Option<String>,
    deceased: Option<String>,
}

impl Store {
    /// Appends to the audit log.
    pub async fn audit(
        &self,
        key_name: &str,
        action: &str,
        patient: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let ts = crate::clock::now();
        super::retry_busy(|| async {
            on!(&self.pool, |p| {
                sqlx::query(
                    "INSERT INTO audit (ts, key_name, action, patient, detail) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(ts)
                .bind(key_name)
                .bind(action)
                .bind(patient)
                .bind(detail)
                .execute(p)
                .await?;
            });
            Ok(())
        })
        .await
    }

    pub async fn patient_summary(&self, id: &str) -> Result<Option<PatientSummary>, StoreError> {
        let row: Option<Demographics> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT id, name, birth_date, gender, deceased FROM patients WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let Some(Demographics { id, name, birth_date, gender, deceased }) = row else { return Ok(None) };
        let counts: Vec<(String, i64)> = on!(&self.pool, |p| sqlx::query_as(
            "SELECT type, COUNT(*) FROM resources WHERE patient_id = $1 GROUP BY type"
        )
        .bind(&id)
        .fetch_all(p)
        .await?);
        let (first_date, last_date): (Option<String>, Option<String>) = on!(&self.pool, |p| {
            sqlx::query_as(
            "SELECT MIN(date), MAX(date) FROM resources WHERE patient_id = $1 AND type <> 'Patient' AND date IS NOT NULL",
        )
        .bind(&id)
        .fetch_one(p)
        .await?
        });
        let list = |types: &'static str, statuses: &'static str| {
            let sql = format!(
                "SELECT type || '/' || id AS rref, date, text FROM records WHERE patient_id = $1 \
                 AND type IN ({types}) AND (status IS NULL OR status IN ({statuses})) ORDER BY ts DESC LIMIT 50"
            );
            let pool = &self.pool;
            let id = id.clone();
            async move {
                Ok::<_, sqlx::Error>(on!(pool, |p| sqlx::query_as::<_, SummaryLine>(&sql)
                    .bind(id)
                    .fetch_all(p)
                    .await?))
            }
        };
        Ok(Some(PatientSummary {
            active_problems: list("'Condition'", "'active','recurrence','relapse'").await?,
            active_medications: list("'MedicationRequest','MedicationStatement'", "'active'").await?,
            allergies: list("'AllergyIntolerance'", "'active'").await?,
            counts: counts.into_iter().collect(),
            first_date,
            last_date,
            id,
            name,
            birth_date,
            gender,
            deceased,
        }))
    }

    /// The patient a stored resource belongs to, and its raw JSON.
    pub async fn resource_of(
        &self,
        rtype: &str,
        id: &str,
    ) -> Result<Option<(Option<String>, String)>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_as(
            "SELECT patient_id, raw FROM resources WHERE type = $1 AND id = $2"
        )
        .bind(rtype)
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    pub async fn last_sync(&self, server: &str, patient: &str) -> Result<Option<String>, StoreError> {
        Ok(on!(&self.pool, |p| sqlx::query_scalar(
            "SELECT synced_at FROM sync_state WHERE server = $1 AND patient = $2"
        )
        .bind(server)
        .bind(patient)
        .fetch_optional(p)
        .await?))
    }

    pub async fn set_last_sync(&self, server: &str, patient: &str, at: &str) -> Result<(), StoreError> {
        on!(&self.pool, |p| {
            sqlx::query(
                "INSERT INTO sync_state (server, patient, synced_at) VALUES ($1, $2, $3) \
             ON CONFLICT (server, patient) DO UPDATE SET synced_at = excluded.synced_at",
            )
            .bind(server)
            .bind(patient)
            .bind(at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on!(&self.pool, |p| {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }
}
