//! Scratch databases on a PostgreSQL server, for benchmarks that measure ingest into an empty
//! store run after run (`ehrqa bench ingest --database-url ...`).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::StoreError;

/// A database made on the server `url` names, dropped by `drop_scratch`.
pub struct Scratch {
    admin: PgConnectOptions,
    name: String,
    /// Where the scratch database is (the server's URL with its database name).
    pub url: String,
}

/// Creates database `name` (letters, digits and `_` only) on the server of `url`.
pub async fn create_scratch(url: &str, name: &str) -> Result<Scratch, StoreError> {
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(StoreError::DatabaseUrl);
    }
    let admin = PgConnectOptions::from_str(url).map_err(|_| StoreError::DatabaseUrl)?;
    let mut conn = admin.connect().await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    conn.close().await?;
    let mut scratch_url = url::Url::parse(url).map_err(|_| StoreError::DatabaseUrl)?;
    scratch_url.set_path(&format!("/{name}"));
    Ok(Scratch { admin, name: name.to_owned(), url: scratch_url.to_string() })
}

impl Scratch {
    /// Drops the database (closing whatever connections are left).
    pub async fn drop_scratch(self) -> Result<(), StoreError> {
        let mut conn = self.admin.connect().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    }
}
