//! `ehrqa key new --name NAME [--patients ID,ID] [--keys FILE]`: a new API key and its
//! keys-file line (the file keeps only the hash; the key is shown once). Names must be unique in
//! a keys file (`ehrqa serve` refuses the file otherwise); `--keys` checks before the line is made.

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
        /// The keys file the line is for: a name it already gives a key is refused.
        #[arg(long)]
        keys: Option<std::path::PathBuf>,
    },
}

pub fn run(cmd: Key, format: OutputFormat) -> anyhow::Result<bool> {
    let Key::New { name, patients, keys } = cmd;
    if name.is_empty() || name.contains(char::is_whitespace) {
        anyhow::bail!("--name must be one word");
    }
    if let Some(file) = keys {
        if crate::server::auth::Auth::load(Some(&file), None)?.has_name(&name) {
            anyhow::bail!("{} already has a key named {name:?}; key names must be unique", file.display());
        }
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
