//! The values a text states, read the same way from an answer's sentence and from a record, so
//! that grounding compares meanings rather than spellings: `6.20` is `6.2`, `March 2, 2019` and
//! `03/02/2019` are `2019-03-02`, `mg/dL` is `mg/dl`, `mm[Hg]` is `mmHg`.

use std::sync::OnceLock;

use regex::Regex;

/// One value a text states.
#[derive(Debug, Clone, PartialEq)]
pub enum Stated {
    /// A number as written, with the unit written right after it (`6.2 %`, `128/82 mm[Hg]`
    /// gives two numbers with the unit).
    Number { text: String, value: f64, decimals: u32, unit: Option<String> },
    /// `YYYY-MM-DD`.
    Day(String),
    /// `YYYY-MM` ("March 2019").
    Month(String),
    /// A year on its own ("in 2019"); a four-digit integer from 1850 to 2100 without a unit.
    Year(i32),
}

impl Stated {
    /// How the value was written, for reports.
    pub fn text(&self) -> String {
        match self {
            Stated::Number { text, unit, .. } => match unit {
                Some(u) => format!("{text} {u}"),
                None => text.clone(),
            },
            Stated::Day(d) | Stated::Month(d) => d.clone(),
            Stated::Year(y) => y.to_string(),
        }
    }

    /// Whether `self` (said in an answer) is what `held` (read from a record) states: numbers
    /// equal to the precision written (6.2 holds for 6.2 and 6.1997, not 6.25) with the same
    /// unit when both have one, dates equal to the precision written.
    pub fn held_by(&self, held: &Stated) -> bool {
        match (self, held) {
            (Stated::Number { value, decimals, unit, .. }, Stated::Number { value: v, unit: u, .. }) => {
                let tolerance = 0.5 * 10f64.powi(-(*decimals as i32)) + 1e-9;
                let units_agree = match (unit, u) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                (value.abs() - v.abs()).abs() <= tolerance && units_agree
            }
            (Stated::Day(a), Stated::Day(b)) => a == b,
            (Stated::Month(m), Stated::Day(d) | Stated::Month(d)) => d.starts_with(m.as_str()),
            (Stated::Year(y), Stated::Day(d) | Stated::Month(d)) => d.starts_with(&format!("{y:04}-")),
            (Stated::Year(y), Stated::Year(z)) => y == z,
            (Stated::Year(y), Stated::Number { value, .. }) => (*y as f64 - value).abs() < 1e-9,
            _ => false,
        }
    }
}

const MONTH: &str = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";

struct Patterns {
    iso: Regex,
    iso_month: Regex,
    month_day_year: Regex,
    day_month_year: Regex,
    month_year: Regex,
    us: Regex,
    number: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: &str| Regex::new(s).expect("a valid pattern (tested)");
        Patterns {
            iso: re(r"\b(\d{4})-(\d{2})-(\d{2})(?:T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?"),
            iso_month: re(r"\b(\d{4})-(\d{2})\b"),
            month_day_year: re(&format!(r"(?i)\b{MONTH}\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")),
            day_month_year: re(&format!(
                r"(?i)\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}\.?,?\s+(\d{{4}})\b"
            )),
            month_year: re(&format!(r"(?i)\b{MONTH}\.?,?\s+(?:of\s+)?(\d{{4}})\b")),
            us: re(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"),
            number: re(r"\d+(?:\.\d+)?"),
        }
    })
}

fn month_number(name: &str) -> u32 {
    const NAMES: [&str; 12] =
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let lower = name.to_ascii_lowercase();
    NAMES.iter().position(|n| lower.starts_with(n)).map_or(0, |i| i as u32 + 1)
}

fn day(y: &str, m: u32, d: &str) -> Option<Stated> {
    let d: u32 = d.parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| Stated::Day(format!("{y}-{m:02}-{d:02}")))
}

/// Every value `text` states, dates first (their digits are not read again as numbers).
pub fn read(text: &str) -> Vec<Stated> {
    let p = patterns();
    let mut out = Vec::new();
    let mut rest = text.to_owned();
    let mut blank = |rest: &mut String, re: &Regex, f: &mut dyn FnMut(&regex::Captures) -> Option<Stated>| {
        let mut found = Vec::new();
        for c in re.captures_iter(rest) {
            if let Some(v) = f(&c) {
                found.push((c.get(0).expect("whole match").range(), v));
            }
        }
        for (range, v) in found {
            rest.replace_range(range.clone(), &" ".repeat(range.len()));
            out.push(v);
        }
    };
    blank(&mut rest, &p.iso, &mut |c| {
        let m: u32 = c[2].parse().ok()?;
        day(&c[1], m, &c[3])
    });
    blank(&mut rest, &p.month_day_year, &mut |c| day(&c[3], month_number(&c[1]), &c[2]));
    blank(&mut rest, &p.day_month_year, &mut |c| day(&c[3], month_number(&c[2]), &c[1]));
    blank(&mut rest, &p.us, &mut |c| day(&c[3], c[1].parse().ok()?, &c[2]));
    blank(&mut rest, &p.month_year, &mut |c| {
        Some(Stated::Month(format!("{}-{:02}", &c[2], month_number(&c[1]))))
    });
    blank(&mut rest, &p.iso_month, &mut |c| {
        let m: u32 = c[2].parse().ok()?;
        (1..=12).contains(&m).then(|| Stated::Month(format!("{}-{m:02}", &c[1])))
    });
    out.extend(numbers(&rest));
    out
}

/// Numbers with their units. A number glued to letters (`1st`, `B12`, `x2`) is a word, not a
/// value; `128/82 mm[Hg]` is two numbers sharing the unit.
fn numbers(text: &str) -> Vec<Stated> {
    let bytes = text.as_bytes();
    let matches: Vec<_> = patterns().number.find_iter(text).collect();
    let mut out = Vec::new();
    let mut group: Vec<(String, u32)> = Vec::new();
    for (k, m) in matches.iter().enumerate() {
        let before = m.start().checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') {
            continue;
        }
        let after = bytes.get(m.end()).copied();
        if after.is_some_and(|b| b.is_ascii_alphabetic()) {
            continue;
        }
        let s = m.as_str();
        let decimals = s.split_once('.').map_or(0, |(_, f)| f.len() as u32);
        group.push((s.to_owned(), decimals));
        // `128/82`: the next number shares this one's unit.
        let joined = after == Some(b'/') && matches.get(k + 1).is_some_and(|n| n.start() == m.end() + 1);
        if joined {
            continue;
        }
        let unit = unit_after(&text[m.end()..]);
        for (s, decimals) in group.drain(..) {
            let value: f64 = s.parse().unwrap_or(f64::NAN);
            let is_year =
                unit.is_none() && decimals == 0 && s.len() == 4 && (1850.0..=2100.0).contains(&value);
            out.push(if is_year {
                Stated::Year(value as i32)
            } else {
                Stated::Number { text: s, value, decimals, unit: unit.clone() }
            });
        }
    }
    out
}

/// Units read after a number, in one spelling (lower case, no brackets or braces). Not `in`:
/// "15.4 in that year" is a number and a preposition far more often than inches.
const UNITS: [&str; 43] = [
    "%", "mg", "g", "kg", "lb", "lbs", "oz", "cm", "mm", "m", "mmhg", "bpm", "ml", "l", "dl", "meq", "mmol",
    "umol", "iu", "u", "units", "unit", "fl", "pg", "mcg", "ug", "ng", "cel", "c", "°c", "°f", "degf",
    "degc", "score", "ratio", "s", "sec", "min", "h", "hr", "hours", "days", "weeks",
];

/// The unit written right after a number: `%`, anything with a slash (`mg/dL`, `/min`), or a
/// known unit word.
fn unit_after(rest: &str) -> Option<String> {
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let token: String =
        rest.chars().take_while(|c| !c.is_whitespace() && !matches!(c, ',' | ';' | '(' | ')')).collect();
    let token = token.trim_end_matches(['.', ':', '!', '?']);
    if token.is_empty() {
        return None;
    }
    let unit = normalise_unit(token);
    let unit_like = unit.starts_with('%') || unit.contains('/') || UNITS.contains(&unit.as_str());
    unit_like.then_some(unit)
}

/// One spelling per unit: lower case, without UCUM's brackets and braces, `µ` as `u`.
pub fn normalise_unit(u: &str) -> String {
    let mut s: String = u
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '{' | '}'))
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'µ' || c == 'μ' { 'u' } else { c })
        .collect();
    if s == "lbs" {
        s = "lb".into();
    }
    if s.ends_with("m^2") {
        s = s.replace("m^2", "m2");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> Stated {
        read(s).into_iter().find(|v| matches!(v, Stated::Number { .. })).expect("a number")
    }

    #[test]
    fn reads_dates_in_the_ways_people_write_them() {
        let want = Stated::Day("2019-03-02".into());
        for s in ["on 2019-03-02.", "on March 2, 2019", "on Mar 2nd 2019", "on 2 March 2019", "on 03/02/2019"]
        {
            assert_eq!(read(s), vec![want.clone()], "{s}");
        }
        assert_eq!(read("in March 2019"), vec![Stated::Month("2019-03".into())]);
        assert_eq!(read("in 2019"), vec![Stated::Year(2019)]);
        assert_eq!(read("2019-03-02T10:00:00Z"), vec![want]);
    }

    #[test]
    fn reads_numbers_with_units() {
        assert_eq!(
            num("A1c 6.20 % [2]"),
            Stated::Number { text: "6.20".into(), value: 6.2, decimals: 2, unit: Some("%".into()) }
        );
        assert!(matches!(num("glucose 98 mg/dL."), Stated::Number { unit: Some(u), .. } if u == "mg/dl"));
        let bp = read("128/82 mm[Hg]");
        assert_eq!(bp.len(), 2);
        assert!(bp.iter().all(|v| matches!(v, Stated::Number { unit: Some(u), .. } if u == "mmhg")));
        // Numbers glued to words are words.
        assert!(read("vitamin B12 and the 1st visit").is_empty());
        assert!(matches!(num("It was 15.4 in that year"), Stated::Number { unit: None, .. }));
    }

    #[test]
    fn compares_to_the_precision_written() {
        let held = num("6.2 %");
        assert!(num("6.20 %").held_by(&held));
        assert!(num("6.2").held_by(&num("6.1997 %")));
        assert!(!num("6.4 %").held_by(&held));
        assert!(!num("6.2 mg/dL").held_by(&held));
        assert!(Stated::Year(2019).held_by(&Stated::Day("2019-03-02".into())));
        assert!(!Stated::Day("2019-03-03".into()).held_by(&Stated::Day("2019-03-02".into())));
    }
}
