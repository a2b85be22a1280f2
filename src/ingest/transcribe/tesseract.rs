//! OCR with Tesseract (`tesseract-ocr`, installed by `scripts/setup`), so image-only lab reports
//! are searchable on a CPU-only install.

use std::path::PathBuf;
use std::process::Command;

use super::Transcriber;

pub struct Tesseract {
    bin: PathBuf,
    name: String,
}

impl Tesseract {
    /// The `tesseract` on the PATH (or `EHRQA_TESSERACT`), if it runs.
    pub fn locate() -> Option<Self> {
        let bin =
            std::env::var_os("EHRQA_TESSERACT").map_or_else(|| PathBuf::from("tesseract"), PathBuf::from);
        let out = Command::new(&bin).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(if out.stdout.is_empty() { &out.stderr } else { &out.stdout })
            .into_owned();
        let version = text.lines().next()?.trim().to_owned();
        version.starts_with("tesseract").then_some(Self { bin, name: version })
    }
}

impl Transcriber for Tesseract {
    fn name(&self) -> &str {
        &self.name
    }

    fn transcribe(&self, png: Vec<u8>) -> crate::llm::generator::BoxFuture<'_, Result<String, String>> {
        let bin = self.bin.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ocr(&bin, &png)).await.map_err(|e| e.to_string())?
        })
    }
}

/// One OCR run (blocking: a child process).
fn ocr(bin: &std::path::Path, png: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("image.png");
    std::fs::write(&file, png).map_err(|e| e.to_string())?;
    // Page segmentation 6: one uniform block, which keeps the rows of a results table.
    let out = Command::new(bin)
        .arg(&file)
        .arg("stdout")
        .args(["--psm", "6", "-l", "eng"])
        .output()
        .map_err(|e| format!("cannot run tesseract: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("tesseract failed: {}", err.lines().last().unwrap_or("").trim()));
    }
    // One line per row of the page: a row keeps its analyte, value and unit together, and a
    // note excerpt can start at the row a question is about.
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    Ok(rows.join("\n"))
}
