//! `ehrqa key new --name NAME [--patients ID,ID]`: a new API key and its keys-file line (the
//! file keeps only the hash; the key is shown once).

use super::output::{print_json, OutputFormat};

#[derive(Debug, clap::Subcommand)]
pub enum Key {
    /// Make a key.
    New {
        #[arg(long)]
        name: String,
        /// Patients the key may read (default: all).
        #[arg(long, value_delimiter = ',')]
        patients: Vec<String>,
    },
}

pub fn run(cmd: Key, format: OutputFormat) -> anyhow::Result<bool> {
    let Key::New { name, patients } = cmd;
    if name.is_empty() || name.contains(char::is_whitespace) {
        anyhow::bail!("--name must be one word");
    }
    if let Some(bad) = patients.iter().find(|p| !crate::fhir::reference::is_valid_id(p)) {
        anyhow::bail!("invalid patient id {bad:?}");
    }
    let scope = if patients.is_empty() { "*".to_owned() } else { patients.join(",") };
    let (key, line) =
        crate::server::auth::new_key(&name, &scope).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    match format {
        OutputFormat::Json => print_json(&serde_json::json!({ "key": key, "line": line }))?,
        OutputFormat::Text => {
            println!("{key}");
            eprintln!("add this line to the keys file (it holds the hash, not the key):\n{line}");
        }
    }
    Ok(true)
}
