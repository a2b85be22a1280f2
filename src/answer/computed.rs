//! Computed answers: when the question asks for something the record computes (the latest,
//! first, highest or lowest value, how many, the change, whether ever, the value on a day) and
//! the context's computed facts cover it, the answer states those facts with their citations
//! and no model chooses or copies a value. Each sentence leads with the value (`6.2 % on
//! 1984-07-17 [ref], the most recent ... result.`) and cites the records by their full
//! reference, which the citation checker maps to the answer's tags.

use super::{age, citation_grammar};
use crate::fhir::date::FhirDate;
use crate::retrieval::context::ItemKind;
use crate::retrieval::question::{
    analyse, asks_what_is_taken, is_stopword, label_overlap, words, Analysis, Anchor, Intent, Vocabulary,
};
use crate::retrieval::summary::{
    Computed, NumericStats, Point, SeriesStats, Treated, Treatments, VisitReason,
};
use crate::retrieval::{clinician, history, visit, visit_reason, Context};

/// What the question asks the record to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Latest,
    First,
    Highest,
    Lowest,
    Count,
    Change,
    Ever,
    /// The value on the day the question names.
    OnDay,
}

/// The computed answer to `question`, when the context's facts cover it.
pub fn compose(ctx: &Context, question: &str, today: i64) -> Option<String> {
    let a = analyse(question, today, Vocabulary::embedded());
    if let Some(age) = age::sentence(ctx, &a, question, today) {
        return Some(age);
    }
    // A fact that is a whole answer (why the patient came, what a condition was treated with, a
    // history, a visit, who the patient sees): the context holds at most one of each, in that
    // order.
    if let Some(whole) = ctx.facts.iter().find_map(|f| match f {
        Computed::Reason(rs) => Some(reason_sentence(rs)),
        Computed::Treatments(t) => Some(treatment_sentence(t)),
        Computed::History(h) => Some(history::text(h, safe)),
        Computed::Visit(v) => Some(visit::text(v, safe)),
        Computed::Clinician(c) => Some(clinician::text(c, safe)),
        _ => None,
    }) {
        return Some(whole);
    }
    if let Some(list) = header_list(ctx, &a, question) {
        return Some(list);
    }
    if let Some(panel) = panel_sentence(ctx) {
        return Some(panel);
    }
    // What a note says is read, not computed.
    if words(question).iter().any(|w| NOTE_WORDS.contains(&w.as_str())) {
        return None;
    }
    let ask = ask(ctx, &a, question)?;
    match ctx.facts.as_slice() {
        [] => None,
        [Computed::Absent { names, scope }] => absent(ask, names, scope.as_deref()),
        facts => {
            if let Some(total) = facts.iter().find_map(|f| match f {
                Computed::Total { names, count, first, latest, scope } if ask == Ask::Count => {
                    Some(count_sentence(
                        &format!("records of {}", safe(names)),
                        *count,
                        first,
                        latest,
                        scope.as_deref(),
                    ))
                }
                _ => None,
            }) {
                return Some(total);
            }
            let series: Vec<&SeriesStats> = facts
                .iter()
                .filter_map(|f| match f {
                    Computed::Series(s) => Some(s.as_ref()),
                    Computed::Absent { .. }
                    | Computed::Total { .. }
                    | Computed::Reason(_)
                    | Computed::Treatments(_)
                    | Computed::History(_)
                    | Computed::Visit(_)
                    | Computed::Clinician(_)
                    | Computed::Panel(_) => None,
                })
                .collect();
            // Notes are read, not counted: what a note says is the model's to answer.
            if series.iter().any(|s| NOTES.contains(&s.rtype.as_str())) {
                return None;
            }
            // A count needs every series the question's records form, not just those that fit.
            if ask == Ask::Count && series.iter().any(|s| s.series != series.len()) {
                return None;
            }
            let best = best(series, ask, question, &a)?;
            // "What was the MCHC in that report?": a report or result without a value of its own
            // does not answer a question about a value; the model reads its text.
            let measured = matches!(best.rtype.as_str(), "Observation" | "DiagnosticReport");
            if measured && best.latest.value.is_none() && ask != Ask::Ever && ask != Ask::Count {
                return None;
            }
            let stated = sentence(ask, best)?;
            // "Is his cholesterol high?": what the record says of the value it states.
            let rref = &best.latest.rref;
            match qualifier(ctx, rref).filter(|_| a.asks_quality && ask == Ask::Latest) {
                Some(q) => Some(format!("{stated} {q} [{rref}].")),
                None => Some(stated),
            }
        }
    }
}

/// An observation's own interpretation and reference range, as its rendering shows them
/// (`= 200.2 mg/dL (ref 0-200) [high]`): `Its record marks it high (reference range 0-200)`.
fn qualifier(ctx: &Context, rref: &str) -> Option<String> {
    if !rref.starts_with("Observation/") {
        return None;
    }
    let text = &ctx.sources.get(rref)?.text;
    let range = text.rsplit_once(" (ref ").and_then(|(_, r)| r.split_once(')')).map(|(r, _)| safe(r));
    let mut flags: Vec<String> = Vec::new();
    let mut rest = text.trim_end();
    while let Some((head, flag)) = rest.strip_suffix(']').and_then(|t| t.rsplit_once(" [")) {
        flags.insert(0, safe(flag));
        rest = head;
    }
    match (flags.is_empty(), range) {
        (false, Some(r)) => Some(format!("Its record marks it {} (reference range {r})", flags.join(", "))),
        (false, None) => Some(format!("Its record marks it {}", flags.join(", "))),
        (true, Some(r)) => Some(format!("Its record gives the reference range {r}")),
        (true, None) => None,
    }
}

/// `Medications whose records give strep throat (Streptococcal sore throat (disorder)) as their
/// reason: Penicillin V Potassium 500 MG Oral Tablet on 1977-05-20, active [ref]; ...`, or that
/// no medication record gives it.
fn treatment_sentence(t: &Treatments) -> String {
    let scope = t.scope.as_deref().map(|s| format!(" {}", safe(s))).unwrap_or_default();
    if t.items.is_empty() {
        return format!("No medication record gives {} as its reason{scope}.", safe(&t.asked));
    }
    let one = |x: &Treated| {
        let status = x.status.as_deref().map(|s| format!(", {}", safe(s))).unwrap_or_default();
        format!("{} on {}{status} [{}]", safe(&x.drug), x.day, x.rref)
    };
    // The records' own name for the reason, when they agree on one.
    let mut named: Vec<&str> = t.items.iter().map(|x| x.reason.as_str()).collect();
    named.dedup();
    let named = match named.as_slice() {
        [one] => format!(" ({})", safe(one)),
        _ => String::new(),
    };
    format!(
        "Medications whose records give {}{named} as their reason{scope}: {}.",
        safe(&t.asked),
        t.items.iter().map(one).collect::<Vec<_>>().join("; ")
    )
}

/// `The note of 1955-07-31 gives as the chief complaint: acute viral pharyngitis (disorder) [ref].`,
/// one sentence a note.
fn reason_sentence(reasons: &[VisitReason]) -> String {
    let one = |r: &VisitReason| {
        let lines = safe(&visit_reason::joined(&r.lines));
        format!(
            "The note of {} gives as the {}: {lines} [{}].",
            r.day,
            safe(&r.heading.to_lowercase()),
            r.rref
        )
    };
    reasons.iter().map(one).collect::<Vec<_>>().join(" ")
}

/// The types that say what a patient has had, done or been given.
const HISTORY: [&str; 6] = [
    "Condition",
    "Procedure",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
];

/// Words of questions about what a note or visit says.
const NOTE_WORDS: [&str; 8] = ["note", "notes", "reason", "why", "complaint", "say", "said", "says"];

/// Resource types whose records are read for their text.
const NOTES: [&str; 2] = ["DocumentReference", "Composition"];

/// The one series the question is about: those holding the codes the question names, then
/// those whose label shares the most words with the
/// question (`hib` picks "Hib (PRP-OMP)" among a patient's vaccines), then the one the intent
/// points at (the most recent for "latest", the earliest for "first", one with values for
/// values).
fn best<'a>(
    mut series: Vec<&'a SeriesStats>,
    ask: Ask,
    question: &str,
    a: &Analysis,
) -> Option<&'a SeriesStats> {
    // Words naming a whole kind ("visit" of "when was his last visit?") choose no series: the
    // latest visit is the latest of every kind of encounter, not the latest one named a visit.
    let kind_words: Vec<String> =
        a.concepts.iter().filter(|c| c.codes.is_empty()).flat_map(|c| words(&c.phrase)).collect();
    let asked: Vec<String> = words(question)
        .into_iter()
        .filter(|w| w.len() >= 2 && !is_stopword(w) && !kind_words.contains(w))
        .collect();
    let overlap = |s: &SeriesStats| label_overlap(&s.label, &asked);
    // Series holding the codes the question's concepts name come first.
    if series.iter().any(|s| s.coded) {
        series.retain(|s| s.coded);
    }
    let top = series.iter().map(|s| overlap(s)).max()?;
    series.retain(|s| overlap(s) == top);
    let valued = |s: &SeriesStats| s.latest.value.is_some();
    let pick = match ask {
        Ask::Latest | Ask::OnDay => {
            series.iter().max_by(|a, b| (valued(a), &a.latest.day).cmp(&(valued(b), &b.latest.day)))
        }
        Ask::First => {
            series.iter().min_by(|a, b| (!valued(a), &a.first.day).cmp(&(!valued(b), &b.first.day)))
        }
        Ask::Highest | Ask::Lowest | Ask::Change => {
            series.iter().find(|s| s.numeric.is_some()).or_else(|| series.iter().find(|s| valued(s)))
        }
        Ask::Count => series.first(),
        // "Has he had a dental x-ray?": the procedure, before the imaging study or result of the
        // same name.
        Ask::Ever => series.iter().min_by_key(|s| !HISTORY.contains(&s.rtype.as_str())),
    };
    pick.copied()
}

/// "What medications is he on?", "What is she allergic to?": the patient header's list, each
/// item citing its record. A question naming one thing ("is he allergic to penicillin?") is
/// answered from the facts about that thing instead.
fn header_list(ctx: &Context, a: &Analysis, question: &str) -> Option<String> {
    let q = words(question);
    let has = |w: &[&str]| q.iter().any(|x| w.contains(&x.as_str()));
    let about = |t: &[&str]| a.types.iter().any(|x| t.contains(&x.as_str()));
    let (prefix, title, none) = if asks_what_is_taken(question, a)
        || about(&["MedicationRequest", "MedicationStatement"])
            && has(&["current", "currently", "active", "now", "on", "list", "all", "moment", "daily"])
    {
        ("Active medication: ", "Active medications", "The record lists no active medications.")
    } else if about(&["AllergyIntolerance"])
        && a.concepts.iter().all(|c| c.codes.is_empty() || c.name == "allergies")
    {
        ("Allergy: ", "Allergies", "No: the record lists no allergies.")
    } else {
        return None;
    };
    let items: Vec<String> = ctx
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Header)
        .filter_map(|i| {
            let line = i.text.split_once("] ").map_or(i.text.as_str(), |(_, rest)| rest);
            let what = line.strip_prefix(prefix)?;
            Some(format!("{} [{}]", safe(without_date_and_type(what)), i.rref))
        })
        .collect();
    // A header the budget cut short cannot say the record lists none, nor that these are all.
    let cut = ctx.header_cut.contains(prefix.trim_end_matches(": "));
    if items.is_empty() {
        return (!cut).then(|| none.to_owned());
    }
    let more = if cut { " (the record lists more than this context holds)" } else { "" };
    let yes = if a.intent == Intent::Exists { "Yes: " } else { "" };
    Some(format!("{yes}{title}{more}: {}.", items.join("; ")))
}

/// "What were his last vitals?": the latest value of each measurement of the set, each cited.
/// It was answered with the latest body mass index alone.
fn panel_sentence(ctx: &Context) -> Option<String> {
    ctx.facts.iter().find_map(|f| match f {
        Computed::Panel(p) => Some(p.text(safe)),
        _ => None,
    })
}

/// `2019-03-02 MedicationRequest Metformin 500 MG` -> `Metformin 500 MG`.
fn without_date_and_type(rendering: &str) -> &str {
    let mut rest = rendering;
    if rest.get(..4).is_some_and(|y| y.bytes().all(|b| b.is_ascii_digit())) {
        rest = rest.split_once(' ').map_or(rest, |(_, r)| r);
    }
    match rest.split_once(' ') {
        Some((t, r)) if crate::fhir::resource_type::is_known(t) => r,
        _ => rest,
    }
}

fn ask(ctx: &Context, a: &Analysis, question: &str) -> Option<Ask> {
    let when = question.trim_start().to_lowercase().starts_with("when");
    let one_day = match (a.time.from, a.time.to) {
        (Some(f), Some(t)) => {
            FhirDate::from_timestamp(f).day_string() == FhirDate::from_timestamp(t).day_string()
        }
        _ => false,
    };
    debug_assert_eq!(a.intent, ctx.intent, "the context was assembled for this question");
    Some(match a.intent {
        Intent::Latest => Ask::Latest,
        Intent::First => Ask::First,
        Intent::Highest => Ask::Highest,
        Intent::Lowest => Ask::Lowest,
        Intent::Count => Ask::Count,
        Intent::Trend => Ask::Change,
        // "Is his A1c controlled?": not "Yes: ..., 5 results", but the latest, which its
        // record's range and interpretation qualify.
        Intent::Exists if a.asks_quality => Ask::Latest,
        Intent::Exists => Ask::Ever,
        // "At his last visit" is the day of the latest encounter.
        Intent::Lookup if one_day || a.time.anchor == Some(Anchor::LastVisit) => Ask::OnDay,
        // "What was her hemoglobin before the surgery?": the last value before it, and after
        // it the first.
        Intent::Lookup if a.time.anchor == Some(Anchor::BeforeSurgery) => Ask::Latest,
        Intent::Lookup if a.time.anchor == Some(Anchor::AfterSurgery) => Ask::First,
        // "When was his tetanus shot?": the date of the latest.
        Intent::Lookup if when => Ask::Latest,
        // "What is his weight?", "her cholesterol?": a measurement asked for at no particular
        // time is its latest value, which the answer says it is. The model, given the records,
        // answered "What is his weight?" with an X-ray.
        Intent::Lookup if measured(ctx) && !asks_over_many(question) => Ask::Latest,
        Intent::List | Intent::Lookup => return None,
    })
}

/// "What is his average blood pressure?", "her usual weight?": a value over many records,
/// which the latest is not.
fn asks_over_many(question: &str) -> bool {
    const OVER_MANY: [&str; 9] =
        ["average", "mean", "median", "typical", "usual", "all", "every", "each", "range"];
    words(question).iter().any(|w| OVER_MANY.contains(&w.as_str()))
}

/// Whether the facts hold a series of valued observations (a measurement, not an event).
fn measured(ctx: &Context) -> bool {
    ctx.facts
        .iter()
        .any(|f| matches!(f, Computed::Series(s) if s.rtype == "Observation" && s.latest.value.is_some()))
}

/// How many records, with the first and the latest cited (a count's records can be hundreds).
fn count_sentence(what: &str, count: usize, first: &Point, latest: &Point, scope: Option<&str>) -> String {
    let scope = scope.map(|x| format!(" {x}")).unwrap_or_default();
    if count == 1 {
        return format!("1 {what}{scope}, {}.", at(latest));
    }
    format!("{count} {what}{scope}, the first {} and the latest {}.", at(first), at(latest))
}

fn absent(ask: Ask, names: &[String], scope: Option<&str>) -> Option<String> {
    let what = safe(&names.join(" or "));
    let scope = scope.map(|s| format!(" {s}")).unwrap_or_default();
    match ask {
        Ask::Ever => Some(format!("No: the record has no {what}{scope}.")),
        Ask::Count => Some(format!("None: the record has no {what}{scope}.")),
        _ => None,
    }
}

/// Record text (labels, values) with any citation group it holds neutralised: only the
/// sentence's own references cite.
fn safe(text: &str) -> String {
    citation_grammar::neutralise(text).into_owned()
}

fn cite(p: &Point) -> String {
    format!("[{}]", p.rref)
}

/// `6.2 % on 1984-07-17 [ref]`, or `on 1984-07-17 [ref]` for a record without a value.
fn at(p: &Point) -> String {
    match &p.value {
        Some(v) => format!("{} on {} {}", safe(v), p.day, cite(p)),
        None => format!("on {} {}", p.day, cite(p)),
    }
}

fn noun(s: &SeriesStats) -> &'static str {
    match (s.rtype == "Observation", s.count == 1) {
        (true, true) => "result",
        (true, false) => "results",
        (false, true) => "record",
        (false, false) => "records",
    }
}

fn sentence(ask: Ask, s: &SeriesStats) -> Option<String> {
    let label = &safe(&s.label);
    let scope = s.scope.as_deref().map(|x| format!(" {x}")).unwrap_or_default();
    let numeric = s.numeric.as_ref();
    Some(match ask {
        Ask::Latest | Ask::OnDay => match &s.latest.value {
            Some(_) => format!("{}, the most recent {label} result{scope}.", at(&s.latest)),
            None => format!("Last recorded {}: {label}.", at(&s.latest)),
        },
        Ask::First => match &s.first.value {
            Some(_) => format!("{}, the first {label} result{scope}.", at(&s.first)),
            None => format!("First recorded {}: {label}.", at(&s.first)),
        },
        Ask::Highest | Ask::Lowest => extreme(ask, s, numeric)?,
        Ask::Count => {
            count_sentence(&format!("{label} {}", noun(s)), s.count, &s.first, &s.latest, s.scope.as_deref())
        }
        Ask::Change => {
            let n: &NumericStats = numeric?;
            format!(
                "{} to {}: a change of {} in {label} over {} {}{scope}.",
                at(&n.first),
                at(&n.latest),
                n.change,
                s.count,
                noun(s)
            )
        }
        Ask::Ever if s.count == 1 => format!("Yes: {label}, recorded {}.", at(&s.latest)),
        Ask::Ever => format!("Yes: {label}, {} {}, most recently {}.", s.count, noun(s), at(&s.latest)),
    })
}

/// The highest or lowest value; a series of one value states that value as the only one.
fn extreme(ask: Ask, s: &SeriesStats, numeric: Option<&NumericStats>) -> Option<String> {
    let label = &safe(&s.label);
    let scope = s.scope.as_deref().map(|x| format!(" {x}")).unwrap_or_default();
    match numeric {
        Some(n) => {
            let (p, word) = if ask == Ask::Highest { (&n.highest, "highest") } else { (&n.lowest, "lowest") };
            Some(format!("{}, the {word} of {} {label} {}{scope}.", at(p), s.count, noun(s)))
        }
        None if s.count == 1 && s.latest.value.is_some() => {
            Some(format!("{}, the only {label} result{scope}.", at(&s.latest)))
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(r: &str, day: &str, v: Option<&str>) -> Point {
        Point { rref: r.into(), day: day.into(), value: v.map(str::to_owned) }
    }

    fn a1c() -> SeriesStats {
        let first = point("Observation/a", "1980-01-02", Some("5.9 %"));
        let latest = point("Observation/b", "1984-07-17", Some("6.2 %"));
        SeriesStats {
            label: "Hemoglobin A1c".into(),
            coded: true,
            rtype: "Observation".into(),
            count: 2,
            series: 1,
            scope: None,
            numeric: Some(NumericStats {
                first: first.clone(),
                latest: latest.clone(),
                highest: latest.clone(),
                lowest: first.clone(),
                change: "+0.3 %".into(),
            }),
            first,
            latest,
        }
    }

    #[test]
    fn states_the_value_the_question_asks_for() {
        let s = a1c();
        assert_eq!(
            sentence(Ask::Latest, &s).unwrap(),
            "6.2 % on 1984-07-17 [Observation/b], the most recent Hemoglobin A1c result."
        );
        assert!(sentence(Ask::Lowest, &s).unwrap().starts_with("5.9 % on 1980-01-02 [Observation/a]"));
        assert_eq!(
            sentence(Ask::Count, &s).unwrap(),
            "2 Hemoglobin A1c results, the first 5.9 % on 1980-01-02 [Observation/a] and the latest 6.2 % \
             on 1984-07-17 [Observation/b]."
        );
        assert_eq!(
            sentence(Ask::Ever, &s).unwrap(),
            "Yes: Hemoglobin A1c, 2 results, most recently 6.2 % on 1984-07-17 [Observation/b]."
        );
        assert_eq!(absent(Ask::Ever, &["asthma".into()], None).unwrap(), "No: the record has no asthma.");
        assert_eq!(absent(Ask::Latest, &["asthma".into()], None), None);
    }
}
