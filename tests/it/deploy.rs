//! The compose files under `deploy/`, checked without Docker (none runs here, and no image
//! registry is reachable): each parsed against the compose specification's JSON schema
//! (check-jsonschema's vendored `compose-spec`), and every service's command against the options
//! its program documents (`tests/deploy/check_compose.py`: ehrqa's own `--help`, PostgreSQL's
//! `--describe-config`, vLLM's documented options).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{stderr, stdout};
use crate::openapi::venv_tool as tool;

fn compose_files() -> Vec<PathBuf> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let files = ["compose.yaml", "compose.replicas.yaml"].map(|f| deploy.join(f));
    files.to_vec()
}

#[test]
fn the_compose_files_follow_the_compose_specification() {
    let out = Command::new(tool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .args(compose_files())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn every_service_asks_only_what_its_program_takes() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deploy/check_compose.py");
    let out = Command::new(tool("python"))
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_ehrqa"))
        .arg(crate::pg::bin_dir().join("postgres"))
        .args(compose_files())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("checked 2 compose files"), "{}", stderr(&out));
}
