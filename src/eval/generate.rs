//! An EHRQA-style question generator over a patient's records: questions of many kinds, each
//! phrased several ways with the abbreviations and lay terms of the vocabulary, with the gold
//! answer and the gold evidence computed from the structured data.

use std::collections::BTreeMap;

use super::questions::{Gold, Kind, Question};
use super::rng::Rng;
use crate::fhir::date::FhirDate;
use crate::fhir::Record;
use crate::retrieval::question::{words, Vocabulary};
use crate::retrieval::summary::{label, value_of};

/// What the generator knows about one patient.
pub struct PatientRecords {
    pub id: String,
    pub gender: Option<String>,
    /// Oldest first.
    pub records: Vec<Record>,
}

struct Ctx<'a> {
    p: &'a PatientRecords,
    vocab: &'a Vocabulary,
    rng: &'a mut Rng,
    /// Codes present anywhere in the patient's record.
    codes: std::collections::HashSet<&'a str>,
}

impl Ctx<'_> {
    fn sub(&self) -> &'static str {
        match self.p.gender.as_deref() {
            Some("male") => "he",
            Some("female") => "she",
            _ => "they",
        }
    }

    fn pos(&self) -> &'static str {
        match self.p.gender.as_deref() {
            Some("male") => "his",
            Some("female") => "her",
            _ => "their",
        }
    }

    /// Fills `{sub}`, `{pos}`, `{term}` and `{date}` in a randomly chosen template.
    fn phrase(&mut self, templates: &[&str], term: &str, date: &str) -> String {
        let t = templates[self.rng.below(templates.len())];
        let q = t
            .replace("{sub}", self.sub())
            .replace("{pos}", self.pos())
            .replace("{term}", term)
            .replace("{date}", date);
        let mut c = q.chars();
        c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
    }

    /// A term people use for `code` that the question analysis maps back to it.
    fn term(&mut self, code: &str) -> Option<String> {
        let mut terms: Vec<&str> = self
            .vocab
            .with_code(code)
            .flat_map(|c| c.terms.iter().map(String::as_str))
            .filter(|t| words(t).len() <= 5 && t.len() <= 48 && maps_back(self.vocab, t, code))
            .collect();
        terms.dedup();
        terms.truncate(6);
        self.rng.pick(&terms).map(|t| (*t).to_owned())
    }

    fn date_text(&mut self, d: FhirDate) -> String {
        if self.rng.below(2) == 0 {
            return d.day_string();
        }
        const M: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        match (d.month, d.day) {
            (Some(m), Some(day)) => format!("{} {day}, {}", M[m as usize - 1], d.year),
            _ => d.day_string(),
        }
    }
}

/// True when analysing `term` alone finds a concept with `code`.
fn maps_back(vocab: &Vocabulary, term: &str, code: &str) -> bool {
    let w = words(term);
    let found = vocab.find(&w);
    found.len() == 1
        && found[0].start == 0
        && found[0].end == w.len()
        && found[0].concepts.iter().any(|&i| vocab.concept(i).codes.iter().any(|c| c == code))
}

/// Every code the term names (a term can name several concepts: "sinus infection" is viral,
/// bacterial and chronic sinusitis).
fn codes_named(vocab: &Vocabulary, term: &str) -> Vec<String> {
    vocab
        .find(&words(term))
        .iter()
        .flat_map(|m| m.concepts.iter())
        .flat_map(|&i| vocab.concept(i).codes.clone())
        .collect()
}

/// Whether the term also names another code the patient has ("bp" names the systolic and the
/// diastolic; "dental care" several procedures): its latest, highest or trend is then not one
/// series' and the gold would be a guess.
fn names_others(vocab: &Vocabulary, term: &str, code: &str, recs: &[Record]) -> bool {
    let named = codes_named(vocab, term);
    recs.iter().filter_map(code_of).any(|c| c != code && named.iter().any(|n| n == c))
}

fn code_of(r: &Record) -> Option<&str> {
    r.code.as_ref()?.codings.first().map(|c| c.code.as_str())
}

fn day(r: &Record) -> Option<String> {
    r.date.map(|d| d.day_string())
}

/// Records grouped by main code, per type, oldest first.
fn series<'a>(recs: &'a [Record], rtype: &str) -> BTreeMap<&'a str, Vec<&'a Record>> {
    let mut out: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in recs.iter().filter(|r| r.rref.rtype() == rtype && r.date.is_some()) {
        if let Some(c) = code_of(r) {
            out.entry(c).or_default().push(r);
        }
    }
    out
}

fn question(p: &PatientRecords, kind: Kind, text: String, answer: Gold, evidence: Vec<&Record>) -> Question {
    Question {
        id: String::new(),
        patient: p.id.clone(),
        kind,
        question: text,
        answer,
        evidence: evidence.iter().map(|r| r.rref.to_string()).collect(),
    }
}

/// Generates up to `per_kind` questions of each kind for one patient.
pub fn for_patient(p: &PatientRecords, vocab: &Vocabulary, rng: &mut Rng, per_kind: usize) -> Vec<Question> {
    let codes = p.records.iter().flat_map(|r| r.all_codes()).collect();
    let mut cx = Ctx { p, vocab, rng, codes };
    let mut out = Vec::new();
    for kind in Kind::ALL {
        for _ in 0..per_kind {
            if let Some(q) = one(&mut cx, kind) {
                if !out.iter().any(|o: &Question| o.question == q.question) {
                    out.push(q);
                }
            }
        }
    }
    out
}

fn one(cx: &mut Ctx<'_>, kind: Kind) -> Option<Question> {
    match kind {
        Kind::LatestValue | Kind::ValueOnDate | Kind::Highest | Kind::Lowest | Kind::Trend => {
            numeric(cx, kind)
        }
        Kind::FirstDiagnosis => first_diagnosis(cx),
        Kind::EverHadYes => ever_had_yes(cx),
        Kind::EverHadNo => absent(cx, Kind::EverHadNo),
        Kind::Unanswerable => absent(cx, Kind::Unanswerable),
        Kind::ActiveMedications => active_medications(cx),
        Kind::Allergies => allergies(cx),
        Kind::LastProcedure => latest_of(cx, "Procedure", Kind::LastProcedure),
        Kind::ImmunizationDate => latest_of(cx, "Immunization", Kind::ImmunizationDate),
        Kind::EncounterCount => encounter_count(cx),
        Kind::NoteContent => note_content(cx),
        // Only the image renderer knows values that exist nowhere in the structured data.
        Kind::ImageLabValue => None,
    }
}

fn numeric(cx: &mut Ctx<'_>, kind: Kind) -> Option<Question> {
    let p = cx.p;
    let all = series(&p.records, "Observation");
    let mut usable: Vec<(&str, Vec<&Record>)> = all
        .into_iter()
        .map(|(c, rs)| (c, rs.into_iter().filter(|r| value_of(r, &[]).is_some()).collect::<Vec<_>>()))
        .filter(|(_, rs)| rs.len() >= if kind == Kind::Trend { 4 } else { 2 })
        .collect();
    while !usable.is_empty() {
        let (code, rs) = usable.swap_remove(cx.rng.below(usable.len()));
        let Some(term) = cx.term(code) else { continue };
        if names_others(cx.vocab, &term, code, &p.records) {
            continue;
        }
        // A panel's value is the component the term names ("diastolic" of a blood pressure).
        let named = codes_named(cx.vocab, &term);
        let named: Vec<&str> = named.iter().map(String::as_str).collect();
        let value = |r: &Record| value_of(r, &named);
        let unit = |r: &Record| match &r.value {
            Some(crate::fhir::value::Value::Quantity(q)) => q.unit.clone(),
            _ => None,
        };
        let num = |r: &Record| Gold::Number { value: value(r).unwrap_or(0.0), unit: unit(r) };
        let ts = |r: &Record| r.date.map(|d| d.timestamp());
        match kind {
            Kind::LatestValue => {
                let last = rs[rs.len() - 1];
                if ts(rs[rs.len() - 2]) == ts(last) {
                    continue;
                }
                let q = cx.phrase(
                    &[
                        "What was {pos} most recent {term}?",
                        "What is {pos} latest {term}?",
                        "Latest {term} result?",
                        "What was the last {term} value for this patient?",
                    ],
                    &term,
                    "",
                );
                return Some(question(p, kind, q, num(last), vec![last]));
            }
            Kind::ValueOnDate => {
                let r = rs[cx.rng.below(rs.len())];
                if rs.iter().filter(|o| day(o) == day(r)).count() > 1 {
                    continue;
                }
                let d = cx.date_text(r.date?);
                let q = cx.phrase(
                    &[
                        "What was {pos} {term} on {date}?",
                        "{term} on {date}?",
                        "What {term} value was recorded on {date}?",
                    ],
                    &term,
                    &d,
                );
                return Some(question(p, kind, q, num(r), vec![r]));
            }
            Kind::Highest | Kind::Lowest => {
                let pick =
                    |a: &&&Record, b: &&&Record| value(a).unwrap_or(0.0).total_cmp(&value(b).unwrap_or(0.0));
                let ext = if kind == Kind::Highest { rs.iter().max_by(pick) } else { rs.iter().min_by(pick) };
                let ext = *ext?;
                let v = value(ext);
                if rs.iter().filter(|r| value(r) == v).count() > 1 {
                    continue;
                }
                let q = if kind == Kind::Highest {
                    cx.phrase(
                        &[
                            "What was {pos} highest {term} ever recorded?",
                            "Peak {term}?",
                            "What is the maximum {term} in {pos} record?",
                        ],
                        &term,
                        "",
                    )
                } else {
                    cx.phrase(
                        &[
                            "What was {pos} lowest {term}?",
                            "Lowest {term} on record?",
                            "What is the minimum {term} in {pos} record?",
                        ],
                        &term,
                        "",
                    )
                };
                return Some(question(p, kind, q, num(ext), vec![ext]));
            }
            _ => {
                let (first, last) = (rs[0], rs[rs.len() - 1]);
                // Two results of one code on the first or the last day (a systolic and a
                // diastolic under one code): the trend's ends are not defined.
                if [first, last].iter().any(|e| rs.iter().filter(|o| day(o) == day(e)).count() > 1) {
                    continue;
                }
                let q = cx.phrase(
                    &[
                        "How has {pos} {term} changed over time?",
                        "{term} trend?",
                        "Is {pos} {term} going up or down over time?",
                    ],
                    &term,
                    "",
                );
                let answer = Gold::Text {
                    value: format!("{} -> {}", value(first).unwrap_or(0.0), value(last).unwrap_or(0.0)),
                };
                return Some(question(p, kind, q, answer, vec![first, last]));
            }
        }
    }
    None
}

fn is_disorder(r: &Record) -> bool {
    r.code.as_ref().is_some_and(|c| c.label().ends_with("(disorder)"))
}

fn first_diagnosis(cx: &mut Ctx<'_>) -> Option<Question> {
    let p = cx.p;
    let mut conds: Vec<(&str, Vec<&Record>)> =
        series(&p.records, "Condition").into_iter().filter(|(_, rs)| is_disorder(rs[0])).collect();
    while !conds.is_empty() {
        let (code, rs) = conds.swap_remove(cx.rng.below(conds.len()));
        let Some(term) = cx.term(code) else { continue };
        if names_others(cx.vocab, &term, code, &p.records) {
            continue;
        }
        let first = rs[0];
        let q = cx.phrase(
            &[
                "When was {sub} first diagnosed with {term}?",
                "When did {pos} {term} start?",
                "Date of {pos} {term} diagnosis?",
            ],
            &term,
            "",
        );
        return Some(question(p, Kind::FirstDiagnosis, q, Gold::Date { value: day(first)? }, vec![first]));
    }
    None
}

fn ever_had_yes(cx: &mut Ctx<'_>) -> Option<Question> {
    let p = cx.p;
    let mut groups: Vec<(&str, Vec<&Record>)> = series(&p.records, "Condition")
        .into_iter()
        .filter(|(_, rs)| is_disorder(rs[0]))
        .chain(series(&p.records, "Procedure"))
        .collect();
    while !groups.is_empty() {
        let (code, rs) = groups.swap_remove(cx.rng.below(groups.len()));
        let Some(term) = cx.term(code) else { continue };
        if names_others(cx.vocab, &term, code, &p.records) {
            continue;
        }
        let q = cx.phrase(
            &["Has {sub} ever had {term}?", "Any history of {term}?", "Does {pos} record show {term}?"],
            &term,
            "",
        );
        // Every record of it says "yes".
        return Some(question(p, Kind::EverHadYes, q, Gold::YesNo { value: true }, rs));
    }
    None
}

/// A condition (EverHadNo) or a lab (Unanswerable) that other records have and this one lacks.
fn absent(cx: &mut Ctx<'_>, kind: Kind) -> Option<Question> {
    let want = if kind == Kind::EverHadNo { "Condition" } else { "Observation" };
    let pool: Vec<usize> = (0..cx.vocab.len())
        .filter(|&i| {
            let c = cx.vocab.concept(i);
            c.types.len() == 1
                && c.types[0] == want
                && !c.codes.is_empty()
                && !c.terms.is_empty()
                && !c.codes.iter().any(|k| cx.codes.contains(k.as_str()))
        })
        .collect();
    for _ in 0..20 {
        let c = cx.vocab.concept(*cx.rng.pick(&pool)?);
        let term = c.terms[cx.rng.below(c.terms.len().min(4))].clone();
        if words(&term).len() > 4 || !c.codes.iter().any(|k| maps_back(cx.vocab, &term, k)) {
            continue;
        }
        // The term must not also name something the patient does have.
        let w = words(&term);
        let other = cx
            .vocab
            .find(&w)
            .iter()
            .flat_map(|m| m.concepts.clone())
            .any(|i| cx.vocab.concept(i).codes.iter().any(|k| cx.codes.contains(k.as_str())));
        if other {
            continue;
        }
        let q = if kind == Kind::EverHadNo {
            cx.phrase(
                &[
                    "Has {sub} ever been diagnosed with {term}?",
                    "Does {sub} have {term}?",
                    "Any history of {term}?",
                ],
                &term,
                "",
            )
        } else {
            cx.phrase(
                &[
                    "What was {pos} most recent {term}?",
                    "What is {pos} {term} level?",
                    "Latest {term} result?",
                ],
                &term,
                "",
            )
        };
        let answer = if kind == Kind::EverHadNo { Gold::YesNo { value: false } } else { Gold::NotInRecord };
        return Some(question(cx.p, kind, q, answer, Vec::new()));
    }
    None
}

fn active_medications(cx: &mut Ctx<'_>) -> Option<Question> {
    let p = cx.p;
    let active: Vec<&Record> = p
        .records
        .iter()
        .filter(|r| matches!(r.rref.rtype(), "MedicationRequest" | "MedicationStatement"))
        .filter(|r| r.status.as_deref() == Some("active"))
        .collect();
    if active.is_empty() || active.len() > 15 {
        return None;
    }
    let q = cx.phrase(
        &[
            "What medications is {sub} currently taking?",
            "List {pos} active medications.",
            "What meds is {sub} on right now?",
        ],
        "",
        "",
    );
    let names = active.iter().map(|r| label(r)).collect();
    Some(question(p, Kind::ActiveMedications, q, Gold::Set { values: names }, active))
}

fn allergies(cx: &mut Ctx<'_>) -> Option<Question> {
    let p = cx.p;
    let all: Vec<&Record> = p.records.iter().filter(|r| r.rref.rtype() == "AllergyIntolerance").collect();
    if all.is_empty() {
        return None;
    }
    let q = cx.phrase(
        &["What is {sub} allergic to?", "Does {sub} have any allergies?", "List {pos} allergies."],
        "",
        "",
    );
    let names = all.iter().map(|r| label(r)).collect();
    Some(question(p, Kind::Allergies, q, Gold::Set { values: names }, all))
}

fn latest_of(cx: &mut Ctx<'_>, rtype: &str, kind: Kind) -> Option<Question> {
    let p = cx.p;
    let mut groups: Vec<(&str, Vec<&Record>)> = series(&p.records, rtype).into_iter().collect();
    while !groups.is_empty() {
        let (code, rs) = groups.swap_remove(cx.rng.below(groups.len()));
        let Some(term) = cx.term(code) else { continue };
        let last = rs[rs.len() - 1];
        if names_others(cx.vocab, &term, code, &p.records) {
            continue;
        }
        if rs.len() > 1 && day(rs[rs.len() - 2]) == day(last) {
            continue;
        }
        let q = if kind == Kind::LastProcedure {
            cx.phrase(
                &[
                    "When was {pos} last {term}?",
                    "Date of the most recent {term}?",
                    "When did {sub} last have a {term}?",
                ],
                &term,
                "",
            )
        } else {
            cx.phrase(
                &[
                    "When did {sub} last get the {term} vaccine?",
                    "When was {pos} most recent {term} shot?",
                    "Date of {pos} last {term} immunization?",
                ],
                &term,
                "",
            )
        };
        return Some(question(p, kind, q, Gold::Date { value: day(last)? }, vec![last]));
    }
    None
}

fn encounter_count(cx: &mut Ctx<'_>) -> Option<Question> {
    let p = cx.p;
    let mut by_year: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in p.records.iter().filter(|r| r.rref.rtype() == "Encounter") {
        if let Some(d) = r.date {
            by_year.entry(d.year).or_default().push(r);
        }
    }
    let years: Vec<i32> =
        by_year.iter().filter(|(_, rs)| (1..=25).contains(&rs.len())).map(|(y, _)| *y).collect();
    let year = *cx.rng.pick(&years)?;
    let rs = by_year.remove(&year)?;
    let q = cx.phrase(
        &[
            "How many visits did {sub} have in {date}?",
            "Number of encounters in {date}?",
            "How many appointments did {sub} have during {date}?",
        ],
        "",
        &year.to_string(),
    );
    Some(question(p, Kind::EncounterCount, q, Gold::Count { value: rs.len() }, rs))
}

/// The chief complaint recorded in a Synthea-style note, if any.
fn chief_complaint(note: &str) -> Option<String> {
    let mut lines = note.lines().skip_while(|l| !l.trim().eq_ignore_ascii_case("# Chief Complaint")).skip(1);
    let first = lines.next()?.trim().strip_prefix("- ")?.to_owned();
    Some(first)
}

fn note_content(cx: &mut Ctx<'_>) -> Option<Question> {
    let p = cx.p;
    let notes: Vec<(&Record, String)> = p
        .records
        .iter()
        .filter(|r| r.rref.rtype() == "DocumentReference")
        .filter_map(|r| Some((r, chief_complaint(r.note.as_deref()?)?)))
        .collect();
    // The only note of its day: another note of that day may give another reason.
    let all: Vec<&Record> = p.records.iter().filter(|r| r.rref.rtype() == "DocumentReference").collect();
    let unique: Vec<&(&Record, String)> =
        notes.iter().filter(|(r, _)| all.iter().filter(|o| day(o) == day(r)).count() == 1).collect();
    let (r, complaint) = *cx.rng.pick(&unique)?;
    let d = cx.date_text(r.date?);
    let q = cx.phrase(
        &[
            "What was the chief complaint at {pos} visit on {date}?",
            "Why did {sub} come in on {date}?",
            "What did the note from {date} give as the reason for the visit?",
        ],
        "",
        &d,
    );
    Some(question(p, Kind::NoteContent, q, Gold::Text { value: complaint.clone() }, vec![r]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_chief_complaint_of_a_synthea_note() {
        let note = "2018-07-21\n\n# Chief Complaint\n- medication review due (situation)\n\n# History";
        assert_eq!(chief_complaint(note).as_deref(), Some("medication review due (situation)"));
        assert_eq!(chief_complaint("# Chief Complaint\nNo complaints."), None);
    }
}
