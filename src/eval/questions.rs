//! The question set format (JSON Lines): one question with its gold answer and gold evidence.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What a question asks; evaluations report per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LatestValue,
    ValueOnDate,
    Highest,
    Lowest,
    FirstDiagnosis,
    EverHadYes,
    EverHadNo,
    ActiveMedications,
    Allergies,
    LastProcedure,
    ImmunizationDate,
    EncounterCount,
    Trend,
    NoteContent,
    Unanswerable,
    /// A value shown only in a lab-report image (`tools/make_lab_images.py` writes these; the
    /// generator over structured data cannot).
    ImageLabValue,
}

impl Kind {
    pub const ALL: [Kind; 15] = [
        Kind::LatestValue,
        Kind::ValueOnDate,
        Kind::Highest,
        Kind::Lowest,
        Kind::FirstDiagnosis,
        Kind::EverHadYes,
        Kind::EverHadNo,
        Kind::ActiveMedications,
        Kind::Allergies,
        Kind::LastProcedure,
        Kind::ImmunizationDate,
        Kind::EncounterCount,
        Kind::Trend,
        Kind::NoteContent,
        Kind::Unanswerable,
    ];

    pub fn name(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Kinds whose questions ask for something the record computes (latest, first, highest,
    /// lowest, count, change, ever, date of).
    pub fn computed_intent(self) -> bool {
        !matches!(
            self,
            Kind::ActiveMedications
                | Kind::Allergies
                | Kind::NoteContent
                | Kind::Unanswerable
                | Kind::ImageLabValue
        )
    }

    /// Kinds whose record holds no evidence: the context should say so instead.
    pub fn expects_absence(self) -> bool {
        matches!(self, Kind::EverHadNo | Kind::Unanswerable)
    }
}

/// The gold answer, typed so answer evaluation can compare with tolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Gold {
    Number {
        value: f64,
        unit: Option<String>,
    },
    Date {
        value: String,
    },
    YesNo {
        value: bool,
    },
    Count {
        value: usize,
    },
    Set {
        values: Vec<String>,
    },
    Text {
        value: String,
    },
    /// The record does not contain the answer.
    NotInRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: String,
    pub patient: String,
    pub kind: Kind,
    pub question: String,
    pub answer: Gold,
    /// References that together hold the answer (empty when the record does not).
    pub evidence: Vec<String>,
}

pub fn read(path: &Path) -> anyhow::Result<Vec<Question>> {
    let file =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let q = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), i + 1))?;
        out.push(q);
    }
    Ok(out)
}

pub fn write(path: &Path, questions: &[Question]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for q in questions {
        serde_json::to_writer(&mut f, q)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}
