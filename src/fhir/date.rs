//! FHIR dates and date-times at whatever precision the source gave.
//!
//! FHIR allows `2019`, `2019-03`, `2019-03-02` and full date-times with an offset. We keep the
//! precision (a year-only onset must not be rendered as January 1st) and derive a UTC timestamp of
//! the start of the period for sorting, range filters and the index's date field.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A FHIR `date`, `dateTime` or `instant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FhirDate {
    pub year: i32,
    pub month: Option<u8>,
    pub day: Option<u8>,
    /// Seconds since midnight, local to the source's offset, when a time was given.
    pub seconds: Option<u32>,
    /// Offset from UTC in seconds (0 when absent or `Z`).
    pub offset: i32,
}

impl FhirDate {
    /// Parses the FHIR date/dateTime/instant forms; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (date_part, time_part) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut fields = date_part.split('-');
        let year = parse_num(fields.next()?, 4)?;
        let month = match fields.next() {
            Some(m) => Some(parse_num(m, 2)?),
            None => None,
        };
        let day = match fields.next() {
            Some(d) => Some(parse_num(d, 2)?),
            None => None,
        };
        if fields.next().is_some() || day.is_some() && month.is_none() {
            return None;
        }
        let month = month.map(|m| m as u8);
        let day = day.map(|d| d as u8);
        if month.is_some_and(|m| !(1..=12).contains(&m)) {
            return None;
        }
        if let (Some(m), Some(d)) = (month, day) {
            if d == 0 || d > days_in_month(year, m) {
                return None;
            }
        }
        let (seconds, offset) = match time_part {
            Some(t) if day.is_some() => parse_time(t)?,
            Some(_) => return None,
            None => (None, 0),
        };
        Some(Self { year, month, day, seconds, offset })
    }

    /// The calendar day `YYYY-MM-DD` (or the shorter form the precision allows), as written in
    /// renderings and citations. Uses the source's local date, which is what a clinician reads.
    /// Whole years from this date to `end` (an age), counting a birthday reached on `end`.
    pub fn years_until(&self, end: &FhirDate) -> i32 {
        let years = end.year - self.year;
        if (end.month, end.day) < (self.month, self.day) {
            years - 1
        } else {
            years
        }
    }

    pub fn day_string(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{m:02}-{d:02}", self.year),
            (Some(m), None) => format!("{:04}-{m:02}", self.year),
            _ => format!("{:04}", self.year),
        }
    }

    /// The UTC calendar day of a Unix timestamp.
    pub fn from_timestamp(ts: i64) -> Self {
        let (year, month, day) = civil_from_days(ts.div_euclid(86_400));
        Self { year, month: Some(month), day: Some(day), seconds: None, offset: 0 }
    }

    /// Seconds since the Unix epoch (UTC) of the start of this date's period.
    pub fn timestamp(&self) -> i64 {
        let days = days_from_civil(self.year, self.month.unwrap_or(1), self.day.unwrap_or(1));
        days * 86_400 + i64::from(self.seconds.unwrap_or(0)) - i64::from(self.offset)
    }

    /// `YYYY-MM-DDThh:mm:ssZ` of a Unix timestamp (a FHIR instant).
    pub fn instant_string(ts: i64) -> String {
        let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
        let s = ts.rem_euclid(86_400);
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", s / 3600, s % 3600 / 60, s % 60)
    }

    /// The last second of this date's period (the year, month or day it names; a date-time is
    /// its own end), for inclusive upper bounds.
    pub fn end_timestamp(&self) -> i64 {
        let next = match (self.month, self.day, self.seconds) {
            (_, _, Some(_)) => return self.timestamp(),
            (Some(_), Some(_), None) => return self.timestamp() + 86_399,
            (Some(12), None, _) => days_from_civil(self.year + 1, 1, 1),
            (Some(m), None, _) => days_from_civil(self.year, m + 1, 1),
            (None, _, _) => days_from_civil(self.year + 1, 1, 1),
        };
        next * 86_400 - 1 - i64::from(self.offset)
    }
}

impl fmt::Display for FhirDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.day_string())
    }
}

fn parse_num(s: &str, width: usize) -> Option<i32> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// `hh:mm:ss[.fff][Z|+hh:mm|-hh:mm]` -> (seconds since midnight, offset seconds).
fn parse_time(t: &str) -> Option<(Option<u32>, i32)> {
    let (clock, offset) = split_offset(t)?;
    let mut parts = clock.split(':');
    let h = parse_num(parts.next()?, 2)?;
    let m = parse_num(parts.next()?, 2)?;
    let sec = parts.next().unwrap_or("00");
    let whole = sec.split('.').next()?;
    let s = parse_num(whole, 2)?;
    if h > 24 || m > 59 || s > 60 {
        return None;
    }
    Some((Some((h * 3600 + m * 60 + s) as u32), offset))
}

fn split_offset(t: &str) -> Option<(&str, i32)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, 0));
    }
    match t.rfind(['+', '-']) {
        Some(pos) => {
            let (clock, off) = t.split_at(pos);
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let (oh, om) = off[1..].split_once(':')?;
            let secs = parse_num(oh, 2)? * 3600 + parse_num(om, 2)? * 60;
            Some((clock, sign * secs))
        }
        None => Some((t, 0)),
    }
}

fn is_leap(y: i32) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((yoe + era * 400 + i64::from(m <= 2)) as i32, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_precision() {
        assert_eq!(FhirDate::parse("2019").unwrap().day_string(), "2019");
        assert_eq!(FhirDate::parse("2019-03").unwrap().day_string(), "2019-03");
        assert_eq!(FhirDate::parse("2019-03-02").unwrap().day_string(), "2019-03-02");
    }

    #[test]
    fn date_times_with_offsets_become_utc_timestamps() {
        let d = FhirDate::parse("2018-07-21T19:09:16.356211+00:00").unwrap();
        assert_eq!(d.day_string(), "2018-07-21");
        assert_eq!(d.timestamp(), 1_532_200_156);
        let shifted = FhirDate::parse("2018-07-21T21:09:16+02:00").unwrap();
        assert_eq!(shifted.timestamp(), 1_532_200_156);
        assert_eq!(FhirDate::parse("1970-01-01T00:00:00Z").unwrap().timestamp(), 0);
        assert_eq!(FhirDate::parse("1969-12-31").unwrap().timestamp(), -86_400);
    }

    #[test]
    fn timestamps_round_trip_to_days() {
        for s in ["1970-01-01", "2019-03-02", "2020-02-29", "1938-05-17", "2026-12-31"] {
            let d = FhirDate::parse(s).unwrap();
            assert_eq!(FhirDate::from_timestamp(d.timestamp() + 3600).day_string(), s);
        }
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in ["", "19", "2019-13", "2019-02-30", "2019-3-2", "yesterday", "2019T10:00"] {
            assert!(FhirDate::parse(bad).is_none(), "{bad}");
        }
        assert!(FhirDate::parse("2020-02-29").is_some());
    }
}
