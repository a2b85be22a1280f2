//! Scoring an answer's text against a gold answer: numbers with a tolerance and their unit,
//! dates by day, yes/no, counts exactly, sets by F1 over the items, free text by word overlap.
//! Each returns a score in 0..=1.

use super::questions::Gold;
use crate::fhir::value::format_number;

/// The score of `answer` (which says whether it answered) against `gold`.
pub fn score(gold: &Gold, answer: &str, answerable: bool) -> f64 {
    let a = strip_tags(answer);
    let hit = |ok: bool| if ok { 1.0 } else { 0.0 };
    match gold {
        Gold::NotInRecord => hit(!answerable),
        // "The record does not contain X" answers "has she ever had X?" with no.
        Gold::YesNo { value } if !answerable => hit(!value),
        _ if !answerable => 0.0,
        Gold::Number { value, unit } => hit(numbers(&a).first().is_some_and(|x| close(*x, *value))
            && unit.as_deref().is_none_or(|u| unit_stated(&a, u))),
        Gold::Date { value } => hit(dates(&a).first().is_some_and(|d| value.starts_with(d.as_str()))),
        Gold::YesNo { value } => hit(yes_no(&a) == Some(*value)),
        Gold::Count { value } => hit(numbers(&a).first().is_some_and(|x| *x == *value as f64)),
        Gold::Set { values } => set_f1(&items(answer).unwrap_or_else(|| plain_items(&a)), values),
        Gold::Text { value } => hit(text_matches(&a, value)),
    }
}

/// Whether a cited record's text supports the gold answer (states its value or date).
pub fn supports(gold: &Gold, text: &str) -> bool {
    match gold {
        Gold::Number { value, .. } => numbers(text).iter().any(|x| close(*x, *value)),
        Gold::Date { value } => text.contains(value.get(..10).unwrap_or(value)),
        Gold::Set { values } => values.iter().any(|v| overlap(text, v) >= 0.6),
        // A trend's citations each state one end of it.
        Gold::Text { value } if value.contains(" -> ") => value
            .split(" -> ")
            .any(|end| end.parse::<f64>().is_ok_and(|v| numbers(text).iter().any(|x| close(*x, v)))),
        Gold::Text { value } => text_matches(text, value),
        _ => false,
    }
}

/// Within half a percent, or equal as the record renders it.
fn close(x: f64, v: f64) -> bool {
    (x - v).abs() <= (v.abs() * 0.005).max(0.01) || format_number(x) == format_number(v)
}

/// Units like `{score}` or `1` are not said in prose; others must appear.
fn unit_stated(a: &str, unit: &str) -> bool {
    unit.starts_with('{') || unit == "1" || a.to_lowercase().contains(&unit.to_lowercase())
}

/// `[1]`, `[2][3]` removed.
fn strip_tags(a: &str) -> String {
    let mut out = String::with_capacity(a.len());
    let mut rest = a;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        match rest[open..].find(']') {
            Some(close) if rest[open + 1..open + close].chars().all(|c| c.is_ascii_digit()) => {
                rest = &rest[open + close + 1..];
            }
            _ => {
                out.push('[');
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Numbers in order, skipping dates and digits inside words (`A1c`).
fn numbers(text: &str) -> Vec<f64> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | ':' | '/' | '='))
        .map(|w| w.trim_end_matches(['.', '%']).trim_start_matches(['+', '~']))
        .filter(|w| !is_date(w))
        .filter_map(|w| w.parse::<f64>().ok())
        .collect()
}

fn dates(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | '['))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| is_date(w))
        .map(str::to_owned)
        .collect()
}

/// `YYYY-MM-DD`.
fn is_date(w: &str) -> bool {
    let b = w.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn yes_no(a: &str) -> Option<bool> {
    let lower = a.to_lowercase();
    lower.split(|c: char| !c.is_ascii_alphabetic()).find_map(|w| match w {
        "yes" => Some(true),
        "no" | "never" | "not" => Some(false),
        _ => None,
    })
}

fn words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_owned)
        .collect()
}

/// Share of `gold`'s words found in `text`.
fn overlap(text: &str, gold: &str) -> f64 {
    let have = words(text);
    let want = words(gold);
    if want.is_empty() {
        return 0.0;
    }
    want.iter().filter(|w| have.contains(w)).count() as f64 / want.len() as f64
}

/// A trend (`4.3 -> 62.8`) by its two numbers; other text by word overlap.
fn text_matches(a: &str, gold: &str) -> bool {
    if let Some((from, to)) = gold.split_once(" -> ") {
        let ns = numbers(a);
        let has = |s: &str| s.parse::<f64>().is_ok_and(|v| ns.iter().any(|x| close(*x, v)));
        return has(from) && has(to);
    }
    overlap(a, gold) >= 0.6
}

/// A list answer's items as its citations delimit them: each item ends with its tag
/// (`Penicillin V; reaction: Hives [1]; Aspirin [2].` is two items, whatever punctuation the
/// records' renderings hold). None when the answer cites nothing.
fn items(answer: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let (mut start, mut at) = (0, 0);
    while let Some(open) = answer[at..].find('[').map(|o| at + o) {
        let Some(close) = answer[open..].find(']').map(|c| open + c) else { break };
        let inner = &answer[open + 1..close];
        if !inner.is_empty() && inner.bytes().all(|c| c.is_ascii_digit()) {
            let item = answer[start..open].trim_start_matches([';', ',', '.', ' ']).trim();
            let item = item.strip_prefix("and ").unwrap_or(item);
            if !item.is_empty() {
                out.push(item.to_owned());
            }
            start = close + 1;
        }
        at = close + 1;
    }
    (!out.is_empty()).then_some(out)
}

/// Items split at commas, semicolons, lines and "and", for answers without tags.
fn plain_items(a: &str) -> Vec<String> {
    a.split([',', ';', '\n'])
        .flat_map(|s| s.split(" and "))
        .map(str::trim)
        .filter(|s| !words(s).is_empty())
        .map(str::to_owned)
        .collect()
}

/// F1 of the answer's items against the gold set.
fn set_f1(items: &[String], gold: &[String]) -> f64 {
    if gold.is_empty() || items.is_empty() {
        return if gold.is_empty() && items.is_empty() { 1.0 } else { 0.0 };
    }
    let a = items.join("; ");
    let found = gold.iter().filter(|g| overlap(&a, g) >= 0.6).count();
    let right =
        items.iter().filter(|i| gold.iter().any(|g| overlap(i, g) >= 0.6 || overlap(g, i) >= 0.6)).count();
    let (p, r) = (right as f64 / items.len() as f64, found as f64 / gold.len() as f64);
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f64, u: &str) -> Gold {
        Gold::Number { value: v, unit: Some(u.into()) }
    }

    #[test]
    fn numbers_need_the_value_and_the_unit() {
        assert_eq!(score(&num(22.55973565783006, "mmol/L"), "22.56 mmol/L on 2019-01-02 [1].", true), 1.0);
        assert_eq!(score(&num(22.56, "mmol/L"), "22.56 on 2019-01-02 [1].", true), 0.0);
        assert_eq!(score(&num(6.2, "%"), "Hemoglobin A1c was 6.4 % [2].", true), 0.0);
        assert_eq!(score(&num(20.0, "{score}"), "The maximum was 20 [3].", true), 1.0);
        assert_eq!(score(&num(6.2, "%"), "6.2 %", false), 0.0);
    }

    #[test]
    fn dates_counts_and_yes_no() {
        let d = Gold::Date { value: "1948-01-25".into() };
        assert_eq!(score(&d, "Diagnosed on 1948-01-25 [4].", true), 1.0);
        assert_eq!(score(&d, "On 1949-01-25.", true), 0.0);
        assert_eq!(score(&Gold::Count { value: 4 }, "4 encounters in 2014 [1][2].", true), 1.0);
        assert_eq!(score(&Gold::Count { value: 4 }, "There were 3 [1].", true), 0.0);
        assert_eq!(score(&Gold::YesNo { value: true }, "Yes, on 2001-02-03 [1].", true), 1.0);
        assert_eq!(score(&Gold::YesNo { value: false }, "No record of it.", true), 1.0);
        assert_eq!(score(&Gold::YesNo { value: false }, "The record does not contain it.", false), 1.0);
        assert_eq!(score(&Gold::YesNo { value: true }, "The record does not contain it.", false), 0.0);
        assert_eq!(score(&Gold::NotInRecord, "6.2 %", true), 0.0);
        assert_eq!(score(&Gold::NotInRecord, "The record does not contain it.", false), 1.0);
    }

    #[test]
    fn sets_score_f1_and_text_overlap() {
        let g = Gold::Set { values: vec!["Aspirin".into(), "Lisinopril".into()] };
        assert_eq!(score(&g, "Aspirin [1] and Lisinopril [2].", true), 1.0);
        let half = score(&g, "Aspirin [1] and penicillin [3].", true);
        assert!((half - 0.5).abs() < 1e-9, "{half}");
        // Items are what their tags delimit, whatever punctuation a rendering holds.
        let allergy = Gold::Set { values: vec!["Penicillin V".into()] };
        assert_eq!(
            score(&allergy, "Allergies: Penicillin V criticality high; reaction: Hives [active] [1].", true),
            1.0
        );
        let two_thirds = score(&allergy, "Penicillin V [1]; latex [2].", true);
        assert!((two_thirds - 2.0 / 3.0).abs() < 1e-9, "{two_thirds}");
        let t = Gold::Text { value: "4.3 -> 62.8".into() };
        assert_eq!(score(&t, "From 4.3 kg to 62.8 kg.", true), 1.0);
        assert_eq!(score(&t, "From 4.3 kg.", true), 0.0);
        assert!(supports(&num(6.2, "%"), "1984-07-17 Observation Hemoglobin A1c = 6.2 % (ref 4.0-5.6)"));
        assert!(!supports(&num(6.2, "%"), "1984-07-17 Observation Hemoglobin A1c = 6.1 %"));
    }
}
