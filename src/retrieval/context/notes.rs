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

/// The headings under which notes state why the patient came: a chief complaint, a reason for
/// the visit or a presenting problem (`# Chief Complaint`, `REASON FOR VISIT:`).
const REASON_HEADINGS: [&str; 6] = [
    "chief complaint",
    "reason for visit",
    "reason for encounter",
    "reason for the visit",
    "presenting complaint",
    "presenting problem",
];

/// The first lines (at most `max_lines`) under a heading that says why the patient came, with
/// that heading as written. A heading is a Markdown heading (`# Chief Complaint`) or a line that
/// ends with a colon; the text may also follow the colon on the same line
/// (`Reason for visit: cough`, then that text alone). List markers are dropped.
pub fn reason(note: &str, max_lines: usize) -> Option<(String, Vec<String>)> {
    let lines: Vec<&str> = note.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        let Some((heading, rest)) = heading(line) else { continue };
        let lower = heading.to_lowercase();
        if !REASON_HEADINGS.iter().any(|h| lower == *h || lower.trim_end_matches('s') == *h) {
            continue;
        }
        if !rest.is_empty() {
            return Some((heading.to_owned(), vec![rest.to_owned()]));
        }
        let mut body: Vec<String> = Vec::new();
        for l in &lines[i + 1..] {
            if body.len() >= max_lines || heading_of(l).is_some() {
                break;
            }
            let item = l.trim_start_matches(['-', '*', '\u{2022}']).trim();
            if !item.is_empty() {
                body.push(item.to_owned());
            }
        }
        if !body.is_empty() {
            return Some((heading.to_owned(), body));
        }
    }
    None
}

/// `# Chief Complaint` -> (`Chief Complaint`, ``); `Reason for visit: cough` -> (`Reason for
/// visit`, `cough`).
fn heading(line: &str) -> Option<(&str, &str)> {
    if let Some(h) = heading_of(line) {
        return Some((h, ""));
    }
    let (h, rest) = line.split_once(':')?;
    (h.split_whitespace().count() <= 4 && !h.is_empty()).then(|| (h.trim(), rest.trim()))
}

/// A line that is only a heading.
fn heading_of(line: &str) -> Option<&str> {
    if line.starts_with('#') {
        let h = line.trim_start_matches('#').trim();
        return (!h.is_empty()).then_some(h);
    }
    let h = line.strip_suffix(':')?.trim();
    (!h.is_empty() && h.split_whitespace().count() <= 4).then_some(h)
}

/// A crude stem: the first six letters, enough to match "diabetes"/"diabetic".
fn stem(w: &str) -> String {
    w.chars().take(6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_why_the_patient_came() {
        let synthea = "1955-07-31\n\n# Chief Complaint\n- acute viral pharyngitis (disorder)\n\n# History of Present Illness\nShe has a cough.";
        let (h, body) = reason(synthea, 3).unwrap();
        assert_eq!(
            (h.as_str(), body),
            ("Chief Complaint", vec!["acute viral pharyngitis (disorder)".to_owned()])
        );
        let inline = "PROGRESS NOTE\nReason for visit: cough and fever\nPlan: rest";
        assert_eq!(reason(inline, 3).unwrap().1, vec!["cough and fever".to_owned()]);
        let colon = "CHIEF COMPLAINT:\nChest pain.\nShortness of breath.\nASSESSMENT:\nAngina.";
        assert_eq!(
            reason(colon, 3).unwrap().1,
            vec!["Chest pain.".to_owned(), "Shortness of breath.".to_owned()]
        );
        assert_eq!(reason("# Plan\nRest.", 3), None);
        assert_eq!(reason("# Chief Complaint\n# Plan\nRest.", 3), None);
    }

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
