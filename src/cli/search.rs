//! `ehrqa search --patient ID [--type TYPE] [--limit N] QUERY`

use anyhow::{bail, Context};
use serde::Serialize;

use super::output::{print_json, OutputFormat};
use crate::fhir::reference::is_valid_id;
use crate::fhir::resource_type;
use crate::ingest::Workspace;
use crate::retrieval::{Hit, SearchRequest};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The patient whose records are searched (id as listed by `ehrqa patients`).
    #[arg(long)]
    pub patient: String,
    /// Only records of this resource type (e.g. Observation).
    #[arg(long = "type")]
    pub rtype: Option<String>,
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    /// Words to search for; empty lists the newest records.
    #[arg(default_value = "")]
    pub query: Vec<String>,
}

/// `{"results": [...]}`: the JSON contract of `ehrqa search`.
#[derive(Serialize)]
struct Output {
    results: Vec<Hit>,
}

pub async fn run(settings: Settings, args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    if !is_valid_id(&args.patient) {
        bail!("invalid patient id {:?}", args.patient);
    }
    if let Some(t) = args.rtype.as_deref().filter(|t| !resource_type::is_known(t)) {
        bail!("unknown resource type {t:?}");
    }
    let ws = Workspace::open(settings).await?;
    if !ws.store.patient_exists(&args.patient).await? {
        bail!("unknown patient {}", args.patient);
    }
    let req = SearchRequest {
        patient: args.patient,
        query: args.query.join(" "),
        rtype: args.rtype,
        from: None,
        to: None,
        limit: args.limit,
    };
    let index = &ws.index;
    let results = tokio::task::block_in_place(|| index.search(&req)).context("search failed")?;
    match format {
        OutputFormat::Json => print_json(&Output { results })?,
        OutputFormat::Text => {
            for h in &results {
                println!(
                    "{:>6.2}  {}  {}  {}",
                    h.score,
                    h.date.as_deref().unwrap_or("----------"),
                    h.rref,
                    h.text
                );
            }
        }
    }
    Ok(true)
}
