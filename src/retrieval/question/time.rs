//! Time in questions: "in 2019", "on 2019-03-02", "on 3/2/2019", "in March 2019", "on the 2nd of
//! March 2019", "last 6 months", "last year", "since 2015", "before 2010", "since her diagnosis".

use crate::fhir::date::FhirDate;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A window in UTC seconds (inclusive), or an anchor resolved later against the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// A time named by a record rather than a date (`retrieval::rank` resolves it).
    pub anchor: Option<Anchor>,
}

/// Times a question names by what happened then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// "since her diagnosis": from the first onset of the conditions asked about.
    SinceDiagnosis,
    /// "at his last visit", "during her most recent appointment": the day of the latest
    /// encounter.
    LastVisit,
    /// "before the surgery", "prior to his operation": until the day of the latest surgery.
    BeforeSurgery,
    /// "after the surgery", "since her operation": from the day after the latest surgery.
    AfterSurgery,
}

impl TimeWindow {
    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.anchor.is_none()
    }

    pub fn contains(&self, ts: i64) -> bool {
        self.from.is_none_or(|f| ts >= f) && self.to.is_none_or(|t| ts <= t)
    }

    /// Whether a record of that date answers within the window: any record when no time was
    /// named, else a dated one inside it.
    pub fn admits(&self, date: Option<FhirDate>) -> bool {
        self.is_open() || date.is_some_and(|d| self.contains(d.timestamp()))
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(w: &str) -> Option<u8> {
    let abbreviation = (3..=4).contains(&w.len());
    MONTHS.iter().position(|m| *m == w || abbreviation && m.starts_with(w)).map(|i| i as u8 + 1)
}

fn year(w: &str) -> Option<i32> {
    (w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .then(|| w.parse().ok())
        .flatten()
        .filter(|y| (1900..=2100).contains(y))
}

fn start_of(y: i32, m: u8, d: u8) -> i64 {
    FhirDate { year: y, month: Some(m), day: Some(d), seconds: None, offset: 0 }.timestamp()
}

fn end_of_year(y: i32) -> i64 {
    start_of(y + 1, 1, 1) - 1
}

fn end_of_month(y: i32, m: u8) -> i64 {
    if m == 12 {
        end_of_year(y)
    } else {
        start_of(y, m + 1, 1) - 1
    }
}

fn unit_days(w: &str) -> Option<i64> {
    Some(match w.trim_end_matches('s') {
        "day" => 1,
        "week" => 7,
        "month" => 30,
        "year" => 365,
        _ => return None,
    })
}

fn number(w: &str) -> Option<i64> {
    w.parse().ok().or(match w {
        "one" | "a" => Some(1),
        "two" => Some(2),
        "three" => Some(3),
        "four" => Some(4),
        "five" => Some(5),
        "six" => Some(6),
        "twelve" => Some(12),
        _ => None,
    })
}

/// A day of the month as written: `2`, `2nd`, `21st`, `03`.
fn day_of_month(w: &str) -> Option<u8> {
    let digits = ["st", "nd", "rd", "th"].iter().find_map(|s| w.strip_suffix(s)).unwrap_or(w);
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

/// `3/2/2019` (split into `3`, `2`, `2019` by `text::words`): month first, as in the US, unless
/// the first number cannot be a month (`21/3/2019`).
fn numeric_date(a: &str, b: &str, y: &str) -> Option<(i32, u8, u8)> {
    let short = |w: &str| w.len() <= 2 && w.bytes().all(|c| c.is_ascii_digit());
    if !(short(a) && short(b)) {
        return None;
    }
    let (a, b): (u8, u8) = (a.parse().ok()?, b.parse().ok()?);
    let (m, d) = if a > 12 { (b, a) } else { (a, b) };
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((year(y)?, m, d))
}

/// Words naming a visit or a surgery.
const VISITS: [&str; 6] = ["visit", "appointment", "encounter", "checkup", "consultation", "exam"];
const SURGERIES: [&str; 3] = ["surgery", "operation", "op"];

/// A record-anchored time starting at word `i`, with how many words it takes: "at|during|on
/// (his|her|the) (last|latest|most recent|previous) visit", "before|prior to|after|since|following
/// (the|his|her) surgery".
fn anchor_at(words: &[String], i: usize) -> Option<(Anchor, usize)> {
    let w = |k: usize| words.get(k).map(String::as_str).unwrap_or("");
    let owner = |k: usize| usize::from(matches!(w(k), "his" | "her" | "their" | "the" | "my" | "this"));
    match w(i) {
        "at" | "during" | "on" | "from" | "in" => {
            let mut k = i + 1;
            k += owner(k);
            k += match (w(k), w(k + 1)) {
                ("most", "recent") => 2,
                ("last" | "latest" | "recent" | "previous", _) => 1,
                _ => return None,
            };
            let visit = VISITS.iter().any(|v| w(k).trim_end_matches('s') == *v);
            visit.then_some((Anchor::LastVisit, k + 1 - i))
        }
        "before" | "after" | "since" | "following" | "prior" => {
            let to = usize::from(w(i) == "prior" && w(i + 1) == "to");
            if w(i) == "prior" && to == 0 {
                return None;
            }
            let k = i + 1 + to + owner(i + 1 + to);
            let anchor =
                if matches!(w(i), "before" | "prior") { Anchor::BeforeSurgery } else { Anchor::AfterSurgery };
            SURGERIES.contains(&w(k)).then_some((anchor, k + 1 - i))
        }
        _ => None,
    }
}

/// Reads the time constraint of a question (`words` from `text::words`), relative to `today`.
/// Returns the window and the word positions it consumed.
pub fn parse(words: &[String], today: i64) -> (TimeWindow, Vec<usize>) {
    let mut win = TimeWindow::default();
    let mut used = Vec::new();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    for i in 0..words.len() {
        if used.contains(&i) {
            continue;
        }
        // ISO date: that day.
        if let Some(d) = FhirDate::parse(w(i)).filter(|d| d.day.is_some() && w(i).len() == 10) {
            let s = d.timestamp();
            win.from = Some(s);
            win.to = Some(s + DAY - 1);
            used.push(i);
            continue;
        }
        // "3/2/2019": that day.
        if let Some((y, m, d)) = numeric_date(w(i), w(i + 1), w(i + 2)) {
            let s = start_of(y, m, d);
            win.from = Some(s);
            win.to = Some(s + DAY - 1);
            used.extend([i, i + 1, i + 2]);
            continue;
        }
        // "last|past N units", "last|past unit", "in the last year".
        if matches!(w(i), "last" | "past" | "previous") {
            if let (Some(n), Some(u)) = (number(w(i + 1)), unit_days(w(i + 2))) {
                win.from = Some(today - n * u * DAY);
                used.extend([i, i + 1, i + 2]);
                continue;
            }
            if let Some(u) = unit_days(w(i + 1)) {
                let rolling = i >= 1 && w(i - 1) == "the";
                if u == 365 && !rolling && w(i) == "last" {
                    // "last year": the previous calendar year.
                    let y = FhirDate::from_timestamp(today).year - 1;
                    win.from = Some(start_of(y, 1, 1));
                    win.to = Some(end_of_year(y));
                } else {
                    win.from = Some(today - u * DAY);
                }
                used.extend([i, i + 1]);
                continue;
            }
        }
        if w(i) == "this" && w(i + 1) == "year" {
            let y = FhirDate::from_timestamp(today).year;
            win.from = Some(start_of(y, 1, 1));
            used.extend([i, i + 1]);
            continue;
        }
        if w(i) == "since"
            && matches!(w(i + 1), "her" | "his" | "their" | "the" | "diagnosis")
            && words[i + 1..].iter().take(4).any(|x| x.starts_with("diagnos"))
        {
            win.anchor = Some(Anchor::SinceDiagnosis);
            used.push(i);
            continue;
        }
        if let Some((anchor, n)) = anchor_at(words, i) {
            win.anchor = Some(anchor);
            used.extend(i..i + n);
            continue;
        }
        // Month names: "March 2019", "March 2, 2019", "March 2nd 2019", "2 March 2019",
        // "the 2nd of March 2019".
        if let Some(m) = month(w(i)) {
            let (day, y_at) = match day_of_month(w(i + 1)) {
                Some(d) if year(w(i + 2)).is_some() => (Some(d), i + 2),
                _ => (None, i + 1),
            };
            let day_before = match w(i.wrapping_sub(1)) {
                "of" => day_of_month(w(i.wrapping_sub(2))),
                before => day_of_month(before),
            };
            if let Some(y) = year(w(y_at)) {
                let d = day.or(day_before);
                let (from, to) = match d {
                    Some(d) => (start_of(y, m, d), start_of(y, m, d) + DAY - 1),
                    None => (start_of(y, m, 1), end_of_month(y, m)),
                };
                win.from = Some(from);
                win.to = Some(to);
                used.extend(i..=y_at);
                continue;
            }
        }
        if let Some(y) = year(w(i)) {
            match (i.checked_sub(1).map(w), w(i + 1)) {
                (Some("since" | "after" | "from"), _) => win.from = Some(start_of(y, 1, 1)),
                (Some("before" | "until"), _) => win.to = Some(start_of(y, 1, 1) - 1),
                _ => {
                    win.from = Some(start_of(y, 1, 1));
                    win.to = Some(end_of_year(y));
                }
            }
            used.push(i);
        }
    }
    (win, used)
}

#[cfg(test)]
mod tests {
    use super::super::text::words;
    use super::*;

    fn window(q: &str) -> TimeWindow {
        let today = FhirDate::parse("2026-11-01").unwrap().timestamp();
        parse(&words(q), today).0
    }

    fn day(s: &str) -> i64 {
        FhirDate::parse(s).unwrap().timestamp()
    }

    #[test]
    fn reads_years_days_months_and_relative_periods() {
        assert_eq!(window("encounters in 2019").from, Some(day("2019-01-01")));
        assert_eq!(window("encounters in 2019").to, Some(day("2020-01-01") - 1));
        assert_eq!(window("bp on 2019-03-02").to, Some(day("2019-03-03") - 1));
        assert_eq!(window("glucose in March 2019").to, Some(day("2019-04-01") - 1));
        assert_eq!(window("glucose on March 2, 2019").from, Some(day("2019-03-02")));
        assert_eq!(window("weight in the last 6 months").from, Some(day("2026-11-01") - 180 * DAY));
        assert_eq!(window("visits last year").from, Some(day("2025-01-01")));
        assert_eq!(window("visits in the last year").to, None);
        assert_eq!(window("a1c since 2015").to, None);
        assert_eq!(window("a1c before 2010").to, Some(day("2010-01-01") - 1));
        assert_eq!(
            window("how has her a1c changed since her diagnosis").anchor,
            Some(Anchor::SinceDiagnosis)
        );
        assert!(window("latest a1c").is_open());
    }

    #[test]
    fn reads_times_named_by_records() {
        for (q, anchor) in [
            ("what was his blood pressure at his last visit", Anchor::LastVisit),
            ("weight during her most recent appointment", Anchor::LastVisit),
            ("bp at the latest encounter", Anchor::LastVisit),
            ("what was her hemoglobin before the surgery", Anchor::BeforeSurgery),
            ("a1c prior to his operation", Anchor::BeforeSurgery),
            ("pain score after the surgery", Anchor::AfterSurgery),
            ("weight since her operation", Anchor::AfterSurgery),
        ] {
            let (win, used) = parse(&words(q), 0);
            assert_eq!(win.anchor, Some(anchor), "{q}");
            assert!(!win.is_open() && !used.is_empty(), "{q}");
        }
        for q in ["when was his last visit", "visits last year", "what happened before 2010", "latest a1c"] {
            assert_eq!(window(q).anchor, None, "{q}");
        }
    }

    #[test]
    fn reads_days_as_people_write_them() {
        for q in [
            "glucose on 3/2/2019",
            "glucose on 03/02/2019",
            "glucose on March 2nd, 2019",
            "glucose on 2nd March 2019",
            "glucose on the 2nd of March 2019",
            "glucose on Mar 2 2019",
        ] {
            assert_eq!(window(q).from, Some(day("2019-03-02")), "{q}");
            assert_eq!(window(q).to, Some(day("2019-03-03") - 1), "{q}");
        }
        assert_eq!(window("seen on 21/3/2019").from, Some(day("2019-03-21")));
        assert_eq!(window("visits in the 1st half of 2019").to, Some(day("2020-01-01") - 1));
    }
}
