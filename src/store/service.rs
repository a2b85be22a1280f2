//! What the service keeps besides records: the audit log, patient summaries, sync state.

use std::collections::BTreeMap;

use serde::Serialize;

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
            sqlx::query("INSERT INTO audit (ts, key_name, action, patient, detail) VALUES (?, ?, ?, ?, ?)")
                .bind(ts)
                .bind(key_name)
                .bind(action)
                .bind(patient)
                .bind(detail)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn patient_summary(&self, id: &str) -> Result<Option<PatientSummary>, StoreError> {
        let row: Option<Demographics> =
            sqlx::query_as("SELECT id, name, birth_date, gender, deceased FROM patients WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(Demographics { id, name, birth_date, gender, deceased }) = row else { return Ok(None) };
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT type, COUNT(*) FROM resources WHERE patient_id = ? GROUP BY type")
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
        let (first_date, last_date): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT MIN(date), MAX(date) FROM resources WHERE patient_id = ? AND type <> 'Patient' AND date IS NOT NULL",
        )
        .bind(&id)
        .fetch_one(&self.pool)
        .await?;
        let list = |types: &'static str, statuses: &'static str| {
            let sql = format!(
                "SELECT type || '/' || id AS rref, date, text FROM records WHERE patient_id = ? \
                 AND type IN ({types}) AND (status IS NULL OR status IN ({statuses})) ORDER BY ts DESC LIMIT 50"
            );
            let pool = self.pool.clone();
            let id = id.clone();
            async move { sqlx::query_as::<_, SummaryLine>(&sql).bind(id).fetch_all(&pool).await }
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
        Ok(sqlx::query_as("SELECT patient_id, raw FROM resources WHERE type = ? AND id = ?")
            .bind(rtype)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn last_sync(&self, server: &str, patient: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT synced_at FROM sync_state WHERE server = ? AND patient = ?")
            .bind(server)
            .bind(patient)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_last_sync(&self, server: &str, patient: &str, at: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_state (server, patient, synced_at) VALUES (?, ?, ?) \
             ON CONFLICT (server, patient) DO UPDATE SET synced_at = excluded.synced_at",
        )
        .bind(server)
        .bind(patient)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
