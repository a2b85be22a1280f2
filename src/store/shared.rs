//! What processes sharing one database agree on besides records: secrets, and which of them
//! leads work that must run once (subscriptions on the FHIR servers).

use super::backend::{on, Backend};
use super::{Store, StoreError};

/// Holds a role among the processes sharing the database until dropped. On PostgreSQL it is a
/// session advisory lock on a connection of its own (taken out of the pool, so no other query
/// ever runs on it): if the process dies, the connection and the lock go with it and another
/// replica takes the role. On SQLite the one process serving the data directory always leads.
pub struct Leadership {
    session: Option<sqlx::PgConnection>,
}

impl Leadership {
    /// Whether the role is still held: on PostgreSQL, whether its session still answers (a
    /// session lost, as when the server restarts, took the lock with it).
    pub async fn held(&mut self) -> bool {
        match &mut self.session {
            None => true,
            Some(session) => sqlx::query("SELECT 1").execute(&mut *session).await.is_ok(),
        }
    }
}

impl Store {
    /// The secret named `name`: made (32 random bytes, hex) by the first process to ask, the
    /// same for every process after.
    pub async fn shared_secret(&self, name: &str) -> Result<String, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::Randomness(e.to_string()))?;
        let fresh = hex::encode(bytes);
        on!(&self.pool, |p| {
            sqlx::query(
                "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(&fresh)
            .execute(p)
            .await?;
        });
        Ok(on!(&self.pool, |p| sqlx::query_scalar("SELECT value FROM service_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(p)
            .await?))
    }

    /// Takes the role `role` if no other process holds it; `None` when one does.
    pub async fn try_lead(&self, role: &str) -> Result<Option<Leadership>, StoreError> {
        let Backend::Postgres(pool) = &self.pool else {
            return Ok(Some(Leadership { session: None }));
        };
        let mut session = pool.acquire().await?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(role_key(role))
            .fetch_one(&mut session)
            .await?;
        Ok(held.then_some(Leadership { session: Some(session) }))
    }
}

/// The advisory lock key of a role: FNV-1a of its name, so roles need no registry.
fn role_key(role: &str) -> i64 {
    let hash =
        role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    hash as i64
}
