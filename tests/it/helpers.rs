//! Shared test helpers: a fresh data directory per test, the real store and index, and the real
//! binary for CLI tests.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, OnceLock};

use ehrqa::ingest::{ingest_files, IngestReport, NoProgress, Workspace};
use ehrqa::llm::Tokenizer;
use ehrqa::retrieval::{Hit, SearchRequest};
use ehrqa::settings::DatabaseUrl;
use ehrqa::tokens::TokenCounter;
use ehrqa::Settings;
use tempfile::TempDir;

use super::pg::{postgres_requested, PgServer};

/// The real Gemma 3 tokenizer, as `scripts/setup` caches it (`EHRQA_TOKENIZER` overrides).
pub fn tokenizer() -> Arc<Tokenizer> {
    static TOKENIZER: OnceLock<Arc<Tokenizer>> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| {
            let explicit = std::env::var_os("EHRQA_TOKENIZER").map(PathBuf::from);
            let path =
                ehrqa::llm::tokenizer::locate(explicit.as_deref(), &ehrqa::settings::default_cache_dir())
                    .expect("the Gemma 3 tokenizer (run scripts/setup)");
            Arc::new(Tokenizer::from_file(&path).expect("load tokenizer"))
        })
        .clone()
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// Runs `$body` with `$p` bound to the test's database pool, SQLite or PostgreSQL: the SQL is
/// written once, with `$1` parameters, which both read.
#[macro_export]
macro_rules! db {
    ($store:expr, |$p:ident| $body:expr) => {
        match $store.pool() {
            ehrqa::store::Backend::Sqlite($p) => $body,
            ehrqa::store::Backend::Postgres($p) => $body,
        }
    };
}

/// A fresh data directory with the workspace opened on it, on SQLite or, when the tests are
/// run with `EHRQA_TEST_BACKEND=postgres`, on a PostgreSQL of its own.
pub struct TestData {
    pub ws: Workspace,
    pub dir: TempDir,
    /// Dropped after the workspace (fields drop in order), so its pool closes first.
    pub _pg: Option<PgServer>,
}

impl TestData {
    pub async fn new() -> Self {
        Self::open(None).await
    }

    /// A data directory that counts tokens at ingest with the real Gemma 3 tokenizer.
    pub async fn with_tokens() -> Self {
        let counter: Arc<dyn TokenCounter> = tokenizer();
        Self::open(Some(counter)).await
    }

    async fn open(counter: Option<Arc<dyn TokenCounter>>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::new(dir.path());
        let pg = if postgres_requested() { Some(PgServer::start()) } else { None };
        if let Some(pg) = &pg {
            settings.database_url = Some(DatabaseUrl(pg.database("ehrqa").await));
        }
        let ws = Workspace::open_with(settings, counter).await.expect("open workspace");
        Self { ws, dir, _pg: pg }
    }

    pub async fn ingest(&self, rels: &[&str]) -> IngestReport {
        let files = ehrqa::ingest::expand(&rels.iter().map(|r| fixture(r)).collect::<Vec<_>>()).0;
        ingest_files(&self.ws, files, &NoProgress).await.expect("ingest runs")
    }

    pub async fn ingest_paths(&self, paths: Vec<PathBuf>) -> IngestReport {
        ingest_files(&self.ws, paths, &NoProgress).await.expect("ingest runs")
    }

    /// Runs the real `ehrqa` binary on this data directory and database.
    pub fn ehrqa(&self, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ehrqa"));
        cmd.arg("--data-dir").arg(self.dir.path()).args(args);
        match &self.ws.settings.database_url {
            Some(url) => cmd.env("EHRQA_DATABASE_URL", url.as_str()),
            None => cmd.env_remove("EHRQA_DATABASE_URL"),
        };
        cmd.output().expect("run ehrqa")
    }

    pub async fn count(&self, sql: &str) -> i64 {
        db!(self.ws.store, |p| sqlx::query_scalar(sql).fetch_one(p).await.expect(sql))
    }

    pub fn search(&self, patient: &str, query: &str, limit: usize) -> Vec<Hit> {
        let req = SearchRequest {
            patient: patient.to_owned(),
            query: query.to_owned(),
            limit,
            ..SearchRequest::default()
        };
        self.ws.index.search(&req).expect("search")
    }

    /// The stored text of a record.
    pub async fn line(&self, rref: &str) -> String {
        let (t, id) = rref.split_once('/').unwrap();
        db!(self.ws.store, |p| sqlx::query_scalar("SELECT text FROM records WHERE type = $1 AND id = $2")
            .bind(t)
            .bind(id)
            .fetch_one(p)
            .await
            .unwrap_or_else(|_| panic!("no record {rref}")))
    }
}

/// Runs the real `ehrqa` binary against a data directory.
pub fn ehrqa(data_dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run ehrqa")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Patient ids of the fixture patients.
pub const DONG: &str = "7e58e78c-ba17-4bc7-a711-b44a20ca76d7";
pub const SEARCHSET_PATIENT: &str = "srch-1";
pub const BOB_JAVA: &str = "3f6fd0bb-6cd3-eb3f-4401-cd38ace25f2b";
pub const MERVIN: &str = "fcadcaee-3101-4fd7-89b8-b73630df93c0";

/// A child process killed when dropped (servers started by tests).
pub struct Process {
    pub child: std::process::Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ehrqa serve` on a free loopback port with `args` (after `serve --bind`) and `env`, its
/// output discarded; returns the process (killed when dropped) and its base URL once it listens.
pub fn spawn_serve(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Process, String) {
    let port = free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .args(args)
        .env_remove("EHRQA_API_KEY")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ehrqa serve");
    let process = Process { child };
    wait_for_port(port, std::time::Duration::from_secs(60));
    (process, format!("http://127.0.0.1:{port}"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until something accepts connections on the port.
pub fn wait_for_port(port: u16, within: std::time::Duration) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < within, "nothing listens on port {port}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
