//! An answer's values read against the texts of the records it cites (a note's by the excerpt
//! the citation quotes), as a reader checking the citations would: every number, date and unit in the returned answer must be stated by a
//! cited record. Counts (whole numbers without a unit), changes (the difference of two cited
//! values) and days the question itself names are not record values.

use crate::answer::values::{self, Stated};
use crate::answer::Answer;

/// The values of `a` that no record it cites states, as written.
pub fn unheld(a: &Answer, question: &str) -> Vec<String> {
    if !a.answerable {
        return Vec::new();
    }
    let mut text = a.answer.clone();
    for n in 1..=a.citations.len() {
        text = text.replace(&format!("[{n}]"), " ");
    }
    let held: Vec<Stated> = a
        .citations
        .iter()
        .flat_map(|c| {
            let shown = [Some(&c.text), c.excerpt.as_ref(), c.date.as_ref()];
            shown.into_iter().flatten().flat_map(|t| values::read(t)).collect::<Vec<_>>()
        })
        .collect();
    let asked = values::read(question);
    let numbers: Vec<f64> = held
        .iter()
        .filter_map(|h| match h {
            Stated::Number { value, .. } => Some(*value),
            _ => None,
        })
        .collect();
    let is_difference =
        |x: f64| numbers.iter().any(|a| numbers.iter().any(|b| ((a - b).abs() - x).abs() < 1e-6));
    values::read(&text)
        .into_iter()
        .filter(|v| {
            let ok = match v {
                Stated::Number { decimals: 0, unit: None, .. } => true,
                Stated::Number { value, .. } => held.iter().any(|h| v.held_by(h)) || is_difference(*value),
                _ => held.iter().any(|h| v.held_by(h)) || asked.iter().any(|q| q.held_by(v) || v.held_by(q)),
            };
            !ok
        })
        .map(|v| v.text())
        .collect()
}
