//! Which files an ingest reads: the files named, and FHIR files found under directories named.

use std::path::{Path, PathBuf};

/// One input path that could not be listed.
#[derive(Debug, Clone)]
pub struct Unlistable {
    pub path: PathBuf,
    pub reason: String,
}

/// Expands paths into files: files as given, directories walked recursively for `*.json`,
/// `*.ndjson` and `*.jsonl`, each directory's entries in name order so runs are repeatable.
pub fn expand(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Unlistable>) {
    let mut files = Vec::new();
    let mut bad = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut files, &mut bad),
            Ok(_) => files.push(p.clone()),
            Err(e) => bad.push(Unlistable { path: p.clone(), reason: e.to_string() }),
        }
    }
    (files, bad)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, bad: &mut Vec<Unlistable>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            bad.push(Unlistable { path: dir.to_owned(), reason: e.to_string() });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, files, bad);
        } else if is_fhir_file(&p) {
            files.push(p);
        }
    }
}

fn is_fhir_file(p: &Path) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("json" | "ndjson" | "jsonl"))
}
