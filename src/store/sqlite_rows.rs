//! SQLite's path for the multi-row tables: one prepared statement per table, run once per row on
//! the connection's own handle.
//!
//! sqlx's multi-row `VALUES` copied every value into its arguments, sent the statement to the
//! connection's worker thread, and had SQLite compile a statement of thousands of placeholders
//! per chunk: on a bulk ingest that was 2.3 s of writing 116k resources, most of the writer's
//! time, where SQLite's own inserts of the same rows take about 1 s. Here each value is bound
//! where it lies (`SQLITE_STATIC`, unbound again before `run` returns) and each statement is
//! compiled once per input. sqlx documents this handle for exactly this (`lock_handle`): while
//! it is held, sqlx's worker makes no call on the connection.

use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;
use sqlx::SqliteConnection;

use super::rows::{Param, Row, Rows};
use super::StoreError;

/// Inserts every row of `rows` inside the connection's open transaction.
pub async fn insert(conn: &mut SqliteConnection, rows: &Rows<'_>) -> Result<(), StoreError> {
    let mut handle = conn.lock_handle().await?;
    crate::blocking::in_place(|| {
        insert_table(&mut handle, &rows.resources)?;
        insert_table(&mut handle, &rows.refs)?;
        insert_table(&mut handle, &rows.identifiers)?;
        insert_table(&mut handle, &rows.attachments)?;
        insert_table(&mut handle, &rows.patients)
    })
}

fn insert_table<R: Row>(handle: &mut LockedSqliteHandle<'_>, rows: &[R]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut stmt = Statement::prepare(handle, &single_row_sql(&R::TABLE))?;
    let mut params = Vec::with_capacity(R::TABLE.columns);
    for row in rows {
        params.clear();
        row.params(&mut params);
        stmt.run(&params)?;
    }
    Ok(())
}

/// `head VALUES (?1, ..., ?N) tail`.
fn single_row_sql(t: &super::rows::Table) -> String {
    let slots: Vec<String> = (1..=t.columns).map(|i| format!("?{i}")).collect();
    format!("{}VALUES ({}){}", t.head, slots.join(", "), t.tail)
}

/// A compiled statement on a locked connection; finalized on drop.
struct Statement<'h> {
    raw: NonNull<ffi::sqlite3_stmt>,
    db: NonNull<ffi::sqlite3>,
    /// The statement must not outlive the lock on its connection.
    _locked: PhantomData<&'h mut ()>,
}

impl<'h> Statement<'h> {
    fn prepare(handle: &'h mut LockedSqliteHandle<'_>, sql: &str) -> Result<Self, StoreError> {
        let db = handle.as_raw_handle();
        let len = c_int::try_from(sql.len()).expect("statement text is short");
        let mut raw = ptr::null_mut();
        // SAFETY: `db` is the open connection, ours alone while `handle` is borrowed; `sql` is
        // passed with its length, so it need not be NUL-terminated.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(db.as_ptr(), sql.as_ptr().cast(), len, &mut raw, ptr::null_mut())
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let raw = NonNull::new(raw).expect("a statement with SQL text compiles to a statement");
        Ok(Self { raw, db, _locked: PhantomData })
    }

    /// Binds `params` in order, runs the statement to its end and resets it. The values are
    /// bound without a copy (`SQLITE_STATIC`) and unbound before this returns, so they need
    /// only live for the call.
    fn run(&mut self, params: &[Param<'_>]) -> Result<(), StoreError> {
        let result = self.bind(params).and_then(|()| self.step());
        // SAFETY: `raw` is a live statement; reset and clearing cannot fail in a way that
        // matters here (reset repeats the step's error, which `result` already holds).
        unsafe {
            ffi::sqlite3_reset(self.raw.as_ptr());
            ffi::sqlite3_clear_bindings(self.raw.as_ptr());
        }
        result
    }

    fn bind(&mut self, params: &[Param<'_>]) -> Result<(), StoreError> {
        let stmt = self.raw.as_ptr();
        for (i, p) in params.iter().enumerate() {
            let slot = c_int::try_from(i + 1).expect("few columns");
            // SAFETY: `stmt` is live; a text pointer stays valid until `run` clears the
            // bindings, before its borrow ends.
            let rc = unsafe {
                match *p {
                    Param::Text(Some(s)) => ffi::sqlite3_bind_text64(
                        stmt,
                        slot,
                        s.as_ptr().cast(),
                        s.len() as u64,
                        ffi::SQLITE_STATIC(),
                        ffi::SQLITE_UTF8 as u8,
                    ),
                    Param::Int(Some(v)) => ffi::sqlite3_bind_int64(stmt, slot, v),
                    Param::Text(None) | Param::Int(None) => ffi::sqlite3_bind_null(stmt, slot),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc));
            }
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), StoreError> {
        // SAFETY: `raw` is a live statement with every parameter bound.
        match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
            ffi::SQLITE_DONE => Ok(()),
            rc => Err(error(self.db, rc)),
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` was compiled on `db` and is finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

/// The connection's last error, with its extended code (`StoreError::is_busy` reads it).
fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> StoreError {
    // SAFETY: `db` is a live connection; `sqlite3_errmsg` returns a NUL-terminated string it
    // owns, copied here before any other call on the connection.
    let (code, message) = unsafe {
        let code = ffi::sqlite3_extended_errcode(db.as_ptr());
        let msg = CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())).to_string_lossy().into_owned();
        (if code == 0 { rc } else { code }, msg)
    };
    StoreError::Sqlite { code, message }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection;

    use super::*;
    use crate::store::rows::Table;

    #[test]
    fn a_single_row_statement_numbers_every_column() {
        let t = Table { head: "INSERT INTO t (a, b, c) ", tail: " ON CONFLICT (a) DO NOTHING", columns: 3 };
        assert_eq!(
            single_row_sql(&t),
            "INSERT INTO t (a, b, c) VALUES (?1, ?2, ?3) ON CONFLICT (a) DO NOTHING"
        );
    }

    struct Pair(String, Option<i64>);

    impl Row for Pair {
        const TABLE: Table = Table { head: "INSERT INTO t (a, b) ", tail: "", columns: 2 };

        fn params<'s>(&'s self, out: &mut Vec<Param<'s>>) {
            out.extend([Param::Text(Some(&self.0)), Param::Int(self.1)]);
        }
    }

    async fn table() -> SqliteConnection {
        let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (a TEXT NOT NULL UNIQUE, b INTEGER)").execute(&mut c).await.unwrap();
        c
    }

    /// Values bound without a copy arrive whole: text of every kind (empty, NUL inside,
    /// multi-byte), NULLs and integers, each row its own values (nothing left bound from the
    /// row before).
    #[tokio::test]
    async fn rows_arrive_as_bound() {
        let mut c = table().await;
        let rows = vec![
            Pair("é 漢字 😀".into(), Some(i64::MIN)),
            Pair(String::new(), None),
            Pair("a\0b".into(), Some(7)),
            Pair("x".repeat(100_000), Some(i64::MAX)),
        ];
        insert_table(&mut c.lock_handle().await.unwrap(), &rows).unwrap();
        let got: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT a, b FROM t ORDER BY rowid").fetch_all(&mut c).await.unwrap();
        let want: Vec<(String, Option<i64>)> = rows.into_iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(got, want);
    }

    /// A refused row is SQLite's own error with its extended code, and the rows before it in
    /// the same transaction are rolled back with it by the caller.
    #[tokio::test]
    async fn a_refused_row_is_an_error_with_sqlites_code() {
        let mut c = table().await;
        let mut tx = c.begin().await.unwrap();
        let rows = vec![Pair("same".into(), None), Pair("same".into(), Some(1))];
        let err = insert_table(&mut tx.lock_handle().await.unwrap(), &rows).unwrap_err();
        match &err {
            // SQLITE_CONSTRAINT_UNIQUE
            StoreError::Sqlite { code: 2067, message } => assert!(message.contains("UNIQUE"), "{message}"),
            other => panic!("unexpected error: {other:?}"),
        }
        assert!(!err.is_busy());
        tx.rollback().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut c).await.unwrap();
        assert_eq!(n, 0);
    }
}
