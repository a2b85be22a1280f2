//! `ehrqa key new --name NAME [--patients ID,ID] [--keys FILE]`: a new API key and its
//! keys-file line (the file keeps only the hash; the key is shown once). Names must be unique in
//! a keys file (`ehrqa serve` refuses the file otherwise); `--keys` checks before the line is made.
//!
//! `ehrqa key signing --out key.pem` and `ehrqa key jwks --private-key key.pem`: the key a SMART
//! backend signs its client assertions with, and the public JWKS to register with the server.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sync::signing::{self, SigningKey};

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
        keys: Option<PathBuf>,
    },
    /// Make an ES384 (P-384) private key for SMART Backend Services, written as PKCS#8 PEM
    /// readable by its owner only; prints the public JWKS. (RS384: `openssl genpkey -algorithm
    /// RSA -pkeyopt rsa_keygen_bits:3072 -out key.pem`.)
    Signing {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public JWKS of backend signing keys, to register with the FHIR server.
    Jwks {
        #[arg(long = "private-key", required = true)]
        private_keys: Vec<PathBuf>,
        /// The key id (one key only; default: its RFC 7638 thumbprint).
        #[arg(long)]
        kid: Option<String>,
    },
}

pub fn run(cmd: Key, format: OutputFormat) -> anyhow::Result<bool> {
    match cmd {
        Key::New { name, patients, keys } => api_key(name, patients, keys, format),
        Key::Signing { out } => signing_key(&out),
        Key::Jwks { private_keys, kid } => {
            if kid.is_some() && private_keys.len() > 1 {
                anyhow::bail!("--kid names one key; give one --private-key with it");
            }
            let keys: Vec<SigningKey> =
                private_keys.iter().map(|p| SigningKey::load(p, kid.as_deref())).collect::<Result<_, _>>()?;
            print_json(&signing::jwks(&keys))?;
            Ok(true)
        }
    }
}

/// Writes a new key where none is (an existing key is never overwritten), then prints its JWKS.
fn signing_key(out: &Path) -> anyhow::Result<bool> {
    let pem = SigningKey::generate_es384_pem()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    file.write_all(pem.as_bytes())?;
    let key = SigningKey::from_pem(&out.display().to_string(), &pem, None)?;
    eprintln!("wrote {} (ES384, kid {}); register this JWKS with the server:", out.display(), key.kid());
    print_json(&signing::jwks(&[key]))?;
    Ok(true)
}

fn api_key(
    name: String,
    patients: Vec<String>,
    keys: Option<PathBuf>,
    format: OutputFormat,
) -> anyhow::Result<bool> {
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
