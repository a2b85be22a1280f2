//! The two databases the store runs on, SQLite (embedded, the default) and PostgreSQL (shared by
//! several replicas), and the one way the store's code reaches either.
//!
//! Every query is written once, in the SQL both speak: `$1` parameters (SQLite reads `$N` as
//! the N-th argument), `INSERT ... ON CONFLICT ... DO UPDATE`, `RETURNING`, integers that are
//! 64-bit on both sides, times bound from Rust rather than computed by the database. `on!` then
//! expands the code for each backend, so each copy is checked against its own driver's types:
//! no generic bounds, no `Any` driver converting every row.

use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction};

/// One value for SQLite or for PostgreSQL.
pub enum Backend<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// A connection pool of either backend.
pub type Pool = Backend<SqlitePool, PgPool>;

/// An open transaction of either backend.
pub type Txn = Backend<Transaction<'static, Sqlite>, Transaction<'static, Postgres>>;

/// A connection (inside a transaction) of either backend.
pub type Conn<'a> = Backend<&'a mut SqliteConnection, &'a mut PgConnection>;

impl Clone for Pool {
    fn clone(&self) -> Self {
        match self {
            Backend::Sqlite(p) => Backend::Sqlite(p.clone()),
            Backend::Postgres(p) => Backend::Postgres(p.clone()),
        }
    }
}

impl Txn {
    /// The transaction's connection, to run queries on.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Backend::Sqlite(t) => Backend::Sqlite(&mut **t),
            Backend::Postgres(t) => Backend::Postgres(&mut **t),
        }
    }
}

impl Conn<'_> {
    /// The same connection, borrowed again (a `Conn` is consumed by `on!`).
    pub fn again(&mut self) -> Conn<'_> {
        match self {
            Backend::Sqlite(c) => Backend::Sqlite(&mut **c),
            Backend::Postgres(c) => Backend::Postgres(&mut **c),
        }
    }
}

/// `on!(x, |v, Db| body)`: runs `body` with `v` bound to the SQLite or PostgreSQL value inside
/// the `Backend` `x`, and `Db` naming that backend's `sqlx::Database`. The body is compiled once
/// per backend.
macro_rules! on {
    ($e:expr, |$v:ident, $db:ident| $body:expr) => {
        match $e {
            $crate::store::backend::Backend::Sqlite($v) => {
                #[allow(unused)]
                type $db = sqlx::Sqlite;
                $body
            }
            $crate::store::backend::Backend::Postgres($v) => {
                #[allow(unused)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
    ($e:expr, |$v:ident| $body:expr) => {
        on!($e, |$v, _Db| $body)
    };
}
pub(crate) use on;
