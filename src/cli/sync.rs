//! `ehrqa sync --server URL (--patient ID ... | --all) [--since INSTANT] [auth]`: pull patients
//! from a FHIR server into the data directory, one by one; with `--bulk (--all | --group ID)
//! [--types T,T]`, as a population through Bulk Data `$export`. Auth is a bearer token, OAuth
//! client credentials with a secret, or SMART Backend Services (`--client-id --private-key`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;

use super::output::{print_json, OutputFormat};
use crate::ingest::Workspace;
use crate::settings::Settings;
use crate::sync::bulk::BulkFile;
use crate::sync::signing::SigningKey;
use crate::sync::{
    self, BulkProgress, BulkRequest, BulkScope, PatientSync, ServerAuth, Status, SyncProgress, SyncRequest,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The FHIR server's base URL.
    #[arg(long)]
    pub server: String,
    #[arg(long = "patient", conflicts_with = "bulk")]
    pub patients: Vec<String>,
    /// Every patient on the server.
    #[arg(long, alias = "all-patients", conflicts_with = "patients")]
    pub all: bool,
    /// Through Bulk Data `$export` (with `--all` or `--group`), not patient by patient.
    #[arg(long)]
    pub bulk: bool,
    /// With `--bulk`: the members of this Group.
    #[arg(long, requires = "bulk", conflicts_with = "all")]
    pub group: Option<String>,
    /// With `--bulk`: only these resource types.
    #[arg(long, requires = "bulk", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only what changed since this FHIR instant (default: since each patient's last sync).
    #[arg(long)]
    pub since: Option<String>,
    /// Fetch everything, ignoring the last sync.
    #[arg(long, conflicts_with = "since")]
    pub full: bool,
    /// Search each resource type by patient instead of asking for `$everything`.
    #[arg(long)]
    pub no_everything: bool,
    #[command(flatten)]
    pub auth: FhirAuthArgs,
    /// Resources per page.
    #[arg(long, default_value_t = 500)]
    pub page_size: usize,
    /// Seconds to wait for one response.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
}

/// How to sign in to a FHIR server (shared by `sync` and `serve --subscribe-to`).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Signing in to the FHIR server")]
pub struct FhirAuthArgs {
    /// A bearer token (or EHRQA_FHIR_TOKEN, or --token-file).
    #[arg(long, env = "EHRQA_FHIR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding a bearer token (surrounding whitespace ignored).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// OAuth client credentials: with a secret (EHRQA_FHIR_CLIENT_SECRET or --client-secret), or
    /// SMART Backend Services with --private-key.
    #[arg(long, conflicts_with_all = ["token", "token_file"])]
    pub client_id: Option<String>,
    #[arg(long, env = "EHRQA_FHIR_CLIENT_SECRET", hide_env_values = true, requires = "client_id")]
    pub client_secret: Option<String>,
    /// SMART Backend Services: the PKCS#8 PEM key (RS384 or ES384) client assertions are signed
    /// with; `ehrqa key jwks --private-key FILE` prints the public key to register.
    #[arg(long, requires = "client_id", conflicts_with = "client_secret")]
    pub private_key: Option<PathBuf>,
    /// The key id assertions name (default: the key's RFC 7638 thumbprint, as `key jwks` prints).
    #[arg(long, requires = "private_key")]
    pub kid: Option<String>,
    /// The token endpoint (default: from the server's .well-known/smart-configuration).
    #[arg(long, requires = "client_id")]
    pub token_url: Option<String>,
    /// Scopes asked of the token endpoint (backend default: system/*.rs, or system/*.read for
    /// servers that offer only SMART v1 scopes).
    #[arg(long, requires = "client_id")]
    pub scope: Option<String>,
}

struct Lines;

impl SyncProgress for Lines {
    fn started(&self, patients: usize) {
        eprintln!("syncing {patients} patient(s)");
    }

    fn patient(&self, p: &PatientSync) {
        match &p.error {
            None => eprintln!("  {}: {} resources", p.id, p.resources),
            Some(e) => eprintln!("  {}: failed: {e}", p.id),
        }
    }
}

impl BulkProgress for Lines {
    fn waiting(&self, progress: Option<&str>) {
        eprintln!("  export: {}", progress.unwrap_or("in progress"));
    }

    fn file(&self, f: &BulkFile, done: usize, total: usize) {
        eprintln!("  {}", file_line(f, done, total));
    }
}

fn file_line(f: &BulkFile, done: usize, total: usize) -> String {
    match &f.error {
        None => format!("[{done}/{total}] {}: {} resources", f.rtype, f.resources),
        Some(e) => format!("[{done}/{total}] {}: failed: {e}", f.rtype),
    }
}

/// On a terminal, a bulk export's progress as a bar: the server's `X-Progress` while it
/// exports, then the files as they are stored (each file's line is kept above the bar).
struct BulkBar(indicatif::ProgressBar);

impl BulkBar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }
}

impl BulkProgress for BulkBar {
    fn waiting(&self, progress: Option<&str>) {
        self.0.set_message(format!("export: {}", progress.unwrap_or("in progress")));
    }

    fn file(&self, f: &BulkFile, done: usize, total: usize) {
        if self.0.length() != Some(total as u64) {
            let style = indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} files")
                .expect("valid template")
                .progress_chars("=> ");
            self.0.set_style(style);
            self.0.set_length(total as u64);
        }
        self.0.set_position(done as u64);
        self.0.set_message("downloading and storing");
        self.0.println(format!("  {}", file_line(f, done, total)));
        if done == total {
            self.0.finish_and_clear();
        }
    }
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    if args.bulk {
        return bulk(settings, args, format).await;
    }
    let auth = args.auth.server_auth()?;
    let mut req = SyncRequest::new(&args.server);
    req.patients = args.patients;
    req.all = args.all;
    req.since = args.since;
    req.full = args.full;
    req.everything = !args.no_everything;
    req.page_size = args.page_size;
    req.timeout = Duration::from_secs(args.timeout);
    req.auth = auth;
    sync::validate(&req)?;
    let ws = Workspace::open_with(settings.clone(), super::optional_counter(&settings)).await?;
    let report = sync::run(&ws, &req, &Lines).await?;
    match format {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => println!(
            "synced {} patient(s), {} failed, {} resources in {:.1} s",
            report.synced,
            report.failed,
            report.resources,
            report.elapsed_ms as f64 / 1000.0
        ),
    }
    Ok(report.patients.iter().all(|p| p.status == Status::Synced))
}

async fn bulk(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    let auth = args.auth.server_auth()?;
    let scope = match (args.all, args.group) {
        (true, None) => BulkScope::AllPatients,
        (false, Some(g)) => BulkScope::Group(g),
        _ => bail!("--bulk needs --all (every patient) or --group ID"),
    };
    let req = BulkRequest {
        server: args.server.trim_end_matches('/').to_owned(),
        scope,
        types: args.types,
        since: args.since,
        full: args.full,
        auth,
        timeout: Duration::from_secs(args.timeout),
    };
    sync::bulk::validate(&req)?;
    let ws = Workspace::open_with(settings.clone(), super::optional_counter(&settings)).await?;
    eprintln!(
        "exporting from {}{}",
        req.server,
        if let BulkScope::Group(g) = &req.scope { format!(" (Group/{g})") } else { String::new() }
    );
    let report = if std::io::stderr().is_terminal() {
        sync::bulk::run(&ws, &req, &BulkBar::new()).await?
    } else {
        sync::bulk::run(&ws, &req, &Lines).await?
    };
    match format {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => println!(
            "exported {} file(s), {} resources, {} error(s) reported by the server, in {:.1} s{}",
            report.files.len(),
            report.resources,
            report.errors,
            report.elapsed_ms as f64 / 1000.0,
            if report.resumed { " (resumed)" } else { "" }
        ),
    }
    Ok(report.files.iter().all(|f| f.error.is_none()))
}

impl FhirAuthArgs {
    pub fn server_auth(&self) -> anyhow::Result<ServerAuth> {
        if let Some(path) = &self.token_file {
            let t = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            return Ok(ServerAuth::Bearer(t.trim().to_owned()));
        }
        let (token_url, scope) = (self.token_url.clone(), self.scope.clone());
        match (&self.token, &self.client_id, &self.client_secret, &self.private_key) {
            (Some(t), None, ..) => Ok(ServerAuth::Bearer(t.clone())),
            (None, Some(id), Some(secret), None) => Ok(ServerAuth::ClientCredentials {
                client_id: id.clone(),
                client_secret: secret.clone(),
                token_url,
                scope,
            }),
            (None, Some(id), None, Some(path)) => {
                let key = SigningKey::load(path, self.kid.as_deref())?;
                Ok(ServerAuth::Backend { client_id: id.clone(), key: Arc::new(key), token_url, scope })
            }
            (None, None, ..) => Ok(ServerAuth::None),
            _ => bail!("give --token, or --client-id with --client-secret or --private-key"),
        }
    }
}
