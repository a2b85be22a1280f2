//! `ehrqa patients`

use super::output::{print_json, thousands, OutputFormat};
use crate::ingest::Workspace;
use crate::settings::Settings;

pub async fn run(settings: Settings, format: OutputFormat) -> anyhow::Result<bool> {
    let ws = Workspace::open(settings).await?;
    let patients = ws.store.patients().await?;
    match format {
        OutputFormat::Json => print_json(&patients)?,
        OutputFormat::Text => {
            println!("{:<38} {:<32} {:<10} {:<7} {:>9}", "ID", "NAME", "BORN", "GENDER", "RESOURCES");
            for p in &patients {
                println!(
                    "{:<38} {:<32} {:<10} {:<7} {:>9}",
                    p.id,
                    p.name.as_deref().unwrap_or("-"),
                    p.birth_date.as_deref().unwrap_or("-"),
                    p.gender.as_deref().unwrap_or("-"),
                    thousands(p.resources as u64)
                );
            }
        }
    }
    Ok(true)
}
