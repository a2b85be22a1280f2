//! Note excerpts: the passage of a clinical note that matches the question, not the whole note.

use crate::retrieval::question::words;

/// Up to `max_words` words of `note` around the lines that share the most words with
/// `specific` (the words naming the coded concepts asked about: "mchc"), then with `keywords`
/// (every content word: "report" also names a report's title line); the note's beginning when
/// nothing matches.
pub fn excerpt(note: &str, keywords: &[String], specific: &[String], max_words: usize) -> String {
    let lines: Vec<&str> = note.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let stems: Vec<String> = keywords.iter().chain(specific).map(|k| stem(k)).collect();
    let named: Vec<String> = specific.iter().map(|k| stem(k)).collect();
    let score = |line: &str| {
        let ws = words(line);
        (
            ws.iter().filter(|w| named.contains(&stem(w))).count(),
            ws.iter().filter(|w| stems.contains(&stem(w))).count(),
        )
    };
    let best = (0..lines.len()).max_by_key(|&i| (score(lines[i]), std::cmp::Reverse(i)));
    let start = match best {
        Some(i) if score(lines[i]) > (0, 0) => i.saturating_sub(1),
        _ => 0,
    };
    let mut out: Vec<&str> = Vec::new();
    for line in &lines[start..] {
        for w in line.split_whitespace() {
            if out.len() >= max_words {
                return format!("{} ...", out.join(" "));
            }
            out.push(w);
        }
        if out.len() >= max_words {
            break;
        }
    }
    out.join(" ")
}

/// A crude stem: the first six letters, enough to match "diabetes"/"diabetic".
fn stem(w: &str) -> String {
    w.chars().take(6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_around_the_matching_passage() {
        let note = "2019-03-02\n# Chief Complaint\nNo complaints.\n# History\nShe reports dizziness.\n# Plan\nContinue metformin for diabetes.";
        let e = excerpt(note, &["metformin".into()], &[], 8);
        assert_eq!(e, "# Plan Continue metformin for diabetes.");
        assert_eq!(excerpt(note, &["nothing".into()], &[], 3), "2019-03-02 # Chief ...");
        // The concept asked about outweighs a word the note's title shares.
        let report = "Lab Report\nPatient: X\nMCH 31.5 pg\nMCHC 37.1 g/dL";
        let e = excerpt(report, &["report".into(), "mchc".into()], &["mchc".into()], 4);
        assert_eq!(e, "MCH 31.5 pg MCHC ...");
    }
}
