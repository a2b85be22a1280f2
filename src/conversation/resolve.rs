//! Follow-up questions read against the turns before them. A follow-up that names no concept
//! ("when was it started?") inherits the previous turn's concepts; an elliptical one without an
//! intent word ("what about her potassium?", "and her weight?") inherits the previous intent,
//! while a whole question of its own ("what medications was he given for sinusitis?") does not; "the one before" means the value
//! recorded before the one last answered, found in the context the conversation keeps.
//!
//! Resolution only rewrites text: retrieval reads the question with what it inherits appended
//! (the concepts' own words, an intent word), so the question analysis stays the one place that
//! understands questions; the model reads the question with what it refers to in parentheses.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::retrieval::context::Source;
use crate::retrieval::question::{analyse, words, AskedConcept, Intent, Vocabulary};

/// What a turn was about, kept for the next one.
#[derive(Debug, Clone)]
pub struct Topic {
    pub concepts: Vec<AskedConcept>,
    pub intent: Intent,
    /// The value the turn answered with: what "the one before" counts back from.
    pub answered: Option<Answered>,
}

/// A record a turn answered with, and its date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Answered {
    #[serde(rename = "ref")]
    pub rref: String,
    pub date: String,
}

/// A question, resolved against the conversation so far.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What retrieval reads: the question, then in parentheses what it inherits.
    pub retrieval: String,
    /// What the model reads: the question, then in parentheses what it refers to.
    pub shown: String,
    pub concepts: Vec<AskedConcept>,
    pub intent: Intent,
    /// The previous turn's context serves this question too (same concepts, no time window of
    /// its own), so the prompt keeps its prefix and the model's cache of it.
    pub keep_context: bool,
    /// The question asks for the value before the one last answered ("the one before").
    pub refers_back: bool,
    /// For "the one before": the record before the one last answered, when the context has it.
    pub before: Option<Answered>,
}

/// Resolves `question` against the previous turn's topic and the context in use (`None` for a
/// conversation's first question). `today` anchors time words, as in retrieval.
pub fn resolve(
    prev: Option<&Topic>,
    sources: Option<&BTreeMap<String, Source>>,
    question: &str,
    today: i64,
) -> Resolved {
    let question = question.split_whitespace().collect::<Vec<_>>().join(" ");
    let a = analyse(&question, today, Vocabulary::embedded());
    let Some(prev) = prev else {
        return Resolved {
            retrieval: question.clone(),
            shown: question,
            concepts: a.concepts,
            intent: a.intent,
            keep_context: false,
            refers_back: false,
            before: None,
        };
    };
    let ws = words(&question);
    let one_before = a.time.is_open() && refers_back(&ws);
    let own_concepts = !a.concepts.is_empty();
    let concepts = if own_concepts { a.concepts.clone() } else { prev.concepts.clone() };
    let own_intent = a.intent != Intent::Lookup && !one_before;
    let inherits_intent = !own_intent && (!own_concepts || elliptical(&ws));
    let intent = if inherits_intent { prev.intent } else { a.intent };
    let keep_context = sources.is_some() && a.time.is_open() && names(&concepts) == names(&prev.concepts);

    let mut hints: Vec<String> = Vec::new();
    if !own_concepts {
        for c in &prev.concepts {
            if !hints.contains(&c.phrase) {
                hints.push(c.phrase.clone());
            }
        }
    }
    if inherits_intent {
        hints.extend(intent_word(intent).map(str::to_owned));
    }
    let retrieval =
        if hints.is_empty() { question.clone() } else { format!("{question} ({})", hints.join(", ")) };

    let mut shown = retrieval.clone();
    let mut before = None;
    if let (true, Some(answered), Some(sources)) = (one_before, &prev.answered, sources) {
        let label = sources.get(&answered.rref).map(|s| series(&s.text).to_owned());
        let what = label.clone().unwrap_or_else(|| concept_names(&concepts));
        before = label.and_then(|l| value_before(sources, &l, answered));
        shown = match &before {
            Some(b) => format!(
                "{question} (that is: the {what} result recorded before the one of {}, which is the one of {})",
                answered.date, b.date
            ),
            None => format!("{question} (that is: the {what} result recorded before the one of {})", answered.date),
        };
    }
    Resolved { retrieval, shown, concepts, intent, keep_context, refers_back: one_before, before }
}

/// A question that leans on the one before for what it asks: "what about ...", "how about ...",
/// "and ...", "same for ...", "also ...".
fn elliptical(ws: &[String]) -> bool {
    let starts = |p: &[&str]| ws.len() >= p.len() && ws.iter().zip(p).all(|(w, p)| w == p);
    [&["what", "about"][..], &["how", "about"], &["and"], &["same", "for"], &["also"]].into_iter().any(starts)
}

/// "and the one before?", "before that", "the previous one".
fn refers_back(ws: &[String]) -> bool {
    const PHRASES: &[&[&str]] = &[
        &["one", "before"],
        &["before", "that"],
        &["before", "this"],
        &["before", "it"],
        &["previous", "one"],
        &["prior", "one"],
        &["one", "prior"],
        &["previous", "value"],
        &["previous", "result"],
        &["value", "before"],
        &["result", "before"],
    ];
    PHRASES.iter().any(|p| ws.windows(p.len()).any(|w| w.iter().zip(p.iter()).all(|(a, b)| a == b)))
}

fn names(concepts: &[AskedConcept]) -> Vec<&str> {
    let mut n: Vec<&str> = concepts.iter().map(|c| c.name.as_str()).collect();
    n.sort_unstable();
    n
}

fn concept_names(concepts: &[AskedConcept]) -> String {
    concepts.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// A word the question analysis reads as `intent` (none for a plain lookup).
fn intent_word(intent: Intent) -> Option<&'static str> {
    Some(match intent {
        Intent::Count => "how many",
        Intent::Highest => "highest",
        Intent::Lowest => "lowest",
        Intent::Trend => "trend",
        Intent::First => "first",
        Intent::Latest => "latest",
        Intent::Exists => "ever",
        Intent::List => "list",
        Intent::Lookup => return None,
    })
}

/// The series a record's line belongs to: its text without the leading date and the value
/// (`1984-07-17 Observation Potassium in Blood = 4.5 mmol/L` -> `Observation Potassium in Blood`).
pub fn series(text: &str) -> &str {
    let text = text.trim();
    let text = match text.split_once(' ') {
        Some((first, rest)) if first.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => text,
    };
    text.split_once(" = ").map_or(text, |(name, _)| name).trim()
}

/// The latest record of the same series dated before `answered`.
fn value_before(sources: &BTreeMap<String, Source>, label: &str, answered: &Answered) -> Option<Answered> {
    sources
        .iter()
        .filter(|(r, s)| **r != answered.rref && series(&s.text) == label)
        .filter_map(|(r, s)| s.date.as_ref().filter(|d| d.as_str() < answered.date.as_str()).map(|d| (r, d)))
        .max_by(|a, b| a.1.cmp(b.1))
        .map(|(r, d)| Answered { rref: r.clone(), date: d.clone() })
}

/// The value a turn answered with: the latest (for "first", the earliest) dated record it cited
/// that belongs to what it asked about, or, when it cited none, that record among the context's.
pub fn answered(
    cited: &[(String, Option<String>)],
    sources: &BTreeMap<String, Source>,
    concepts: &[AskedConcept],
    intent: Intent,
) -> Option<Answered> {
    let about = |rref: &str| {
        sources.get(rref).is_some_and(|s| {
            let text = s.text.to_lowercase();
            concepts.iter().any(|c| {
                (c.types.is_empty() || c.types.contains(&s.rtype))
                    && (text.contains(&c.name.to_lowercase()) || text.contains(&c.phrase.to_lowercase()))
            })
        })
    };
    let pick = |dated: Vec<(String, String)>| {
        let best = if intent == Intent::First {
            dated.into_iter().min_by(|a, b| a.1.cmp(&b.1))
        } else {
            dated.into_iter().max_by(|a, b| a.1.cmp(&b.1))
        };
        best.map(|(rref, date)| Answered { rref, date })
    };
    let from_citations: Vec<(String, String)> = cited
        .iter()
        .filter(|(r, _)| about(r))
        .filter_map(|(r, d)| d.clone().map(|d| (r.clone(), d)))
        .collect();
    if !from_citations.is_empty() {
        return pick(from_citations);
    }
    pick(
        sources
            .iter()
            .filter(|(r, s)| s.text.contains(" = ") && about(r))
            .filter_map(|(r, s)| s.date.clone().map(|d| (r.clone(), d)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> i64 {
        crate::fhir::date::FhirDate::parse("2026-11-01").unwrap().timestamp()
    }

    fn topic(q: &str) -> Topic {
        let a = analyse(q, today(), Vocabulary::embedded());
        Topic { concepts: a.concepts, intent: a.intent, answered: None }
    }

    fn source(date: &str, text: &str) -> Source {
        Source { rtype: "Observation".into(), date: Some(date.into()), text: format!("{date} {text}") }
    }

    #[test]
    fn a_follow_up_without_a_concept_inherits_the_concepts_and_keeps_the_context() {
        let prev = topic("Is she on metformin?");
        let sources = BTreeMap::new();
        let r = resolve(Some(&prev), Some(&sources), "When was it started?", today());
        assert_eq!(names(&r.concepts), names(&prev.concepts));
        assert!(!r.concepts.is_empty());
        assert_eq!(r.intent, Intent::First);
        assert!(r.keep_context);
        let again = analyse(&r.retrieval, today(), Vocabulary::embedded());
        assert_eq!(names(&again.concepts), names(&prev.concepts), "{}", r.retrieval);
        assert_eq!(again.intent, Intent::First);
    }

    #[test]
    fn a_new_concept_without_an_intent_word_inherits_the_intent_and_a_new_context() {
        let prev = topic("What was her latest A1c?");
        let r = resolve(Some(&prev), Some(&BTreeMap::new()), "what about her potassium?", today());
        assert!(r.concepts.iter().any(|c| c.phrase == "potassium"), "{:?}", r.concepts);
        assert_eq!(r.intent, Intent::Latest);
        assert!(!r.keep_context);
        assert_eq!(analyse(&r.retrieval, today(), Vocabulary::embedded()).intent, Intent::Latest);
    }

    #[test]
    fn a_whole_question_of_its_own_keeps_its_own_intent() {
        let prev = topic("When was he diagnosed with sinusitis?");
        assert_eq!(prev.intent, Intent::First);
        let r = resolve(
            Some(&prev),
            Some(&BTreeMap::new()),
            "What medications was he given for sinusitis?",
            today(),
        );
        assert_eq!(r.intent, Intent::Lookup, "{}", r.retrieval);
        assert_eq!(r.retrieval, "What medications was he given for sinusitis?");
        let and = resolve(Some(&prev), Some(&BTreeMap::new()), "and his asthma?", today());
        assert_eq!(and.intent, Intent::First, "an elliptical one still inherits: {}", and.retrieval);
    }

    #[test]
    fn the_one_before_is_the_value_before_the_one_last_answered() {
        let mut prev = topic("What was his latest potassium?");
        let sources: BTreeMap<String, Source> = [
            ("Observation/a", source("1980-08-12", "Observation Potassium in Blood = 5 mmol/L")),
            ("Observation/b", source("1982-09-14", "Observation Potassium in Blood = 4.1 mmol/L")),
            ("Observation/c", source("1984-07-17", "Observation Potassium in Blood = 4.5 mmol/L")),
            ("Observation/d", source("1983-01-01", "Observation Sodium in Blood = 140 mmol/L")),
        ]
        .into_iter()
        .map(|(r, s)| (r.to_owned(), s))
        .collect();
        prev.answered = answered(&[], &sources, &prev.concepts, prev.intent);
        assert_eq!(prev.answered.as_ref().unwrap().rref, "Observation/c");
        let r = resolve(Some(&prev), Some(&sources), "and the one before?", today());
        assert!(r.keep_context);
        assert_eq!(r.intent, Intent::Latest);
        assert_eq!(r.before, Some(Answered { rref: "Observation/b".into(), date: "1982-09-14".into() }));
        assert!(r.shown.contains("1982-09-14"), "{}", r.shown);
        // Counting back again from there.
        prev.answered = r.before.clone();
        let r = resolve(Some(&prev), Some(&sources), "and before that?", today());
        assert_eq!(r.before.unwrap().rref, "Observation/a");
    }

    #[test]
    fn a_first_question_is_taken_as_it_is() {
        let r = resolve(None, None, "  What was her   latest A1c? ", today());
        assert_eq!(r.retrieval, "What was her latest A1c?");
        assert!(!r.keep_context);
    }
}
