//! Abstention: saying plainly that the record does not hold the answer, rather than guessing.
//! Decided before the model runs when retrieval found nothing of what was asked about, and after
//! it when the model says it cannot find the answer.

use crate::retrieval::question::{analyse, words, Intent, Vocabulary};
use crate::retrieval::summary::Computed;
use crate::retrieval::Context;

/// Before generation: the question names concepts the record has none of. For "has she ever
/// had..." and "how many..." that absence *is* the answer (no, zero), so the model answers from
/// the computed fact that says so; anything else has nothing to answer from.
pub fn before(ctx: &Context, question: &str) -> Option<String> {
    let answered_by_absence = match ctx.intent {
        Intent::Count => true,
        Intent::Exists => absence_says_no(question),
        _ => false,
    };
    if ctx.absent.is_empty() || answered_by_absence {
        return None;
    }
    // "... blood pressure at the last visit on 1984-10-26": the record may hold it at other times.
    let scope = ctx.facts.iter().find_map(|f| match f {
        Computed::Absent { scope: Some(s), .. } => Some(s.split(" [").next().unwrap_or(s).to_owned()),
        _ => None,
    });
    let scope = scope.map(|s| format!(" {s}")).unwrap_or_default();
    Some(format!("The record does not contain {}{scope}.", ctx.absent.join(" or ")))
}

/// Words asking whether something happened or was found: "has she had", "any history of",
/// "was he ever treated for", "does he have", "is there".
const HAPPENED: [&str; 24] = [
    "had",
    "have",
    "has",
    "having",
    "ever",
    "any",
    "history",
    "hx",
    "diagnosed",
    "treated",
    "done",
    "checked",
    "tested",
    "measured",
    "taken",
    "received",
    "given",
    "got",
    "gotten",
    "undergone",
    "underwent",
    "been",
    "known",
    "there",
];

/// Whether "the record has none" answers a yes/no question "no": it asks whether something
/// happened or was found ("has she had a colonoscopy?", "any history of asthma?"). "Is her
/// kidney function normal?" and "does she smoke?" are not answered "No" by a record without
/// those results: that would read as "abnormal" and "she does not smoke".
fn absence_says_no(question: &str) -> bool {
    let ws = words(question);
    let happened = ws.iter().any(|w| HAPPENED.contains(&w.as_str()));
    happened && !analyse(question, 0, Vocabulary::embedded()).asks_quality
}

/// Phrases with which models say the record does not hold the answer.
const NOT_FOUND: [&str; 12] = [
    "does not contain",
    "doesn't contain",
    "not in the record",
    "not in the patient's record",
    "no information",
    "not documented",
    "not mentioned",
    "cannot find",
    "can't find",
    "unable to find",
    "not available in",
    "not provided in",
];

/// After generation: the model says it cannot answer. For a yes/no existence question, "there
/// is no record of X" is the answer "no", not an abstention.
pub fn after(answer: &str, intent: Intent) -> bool {
    let a = answer.to_lowercase();
    let says = NOT_FOUND.iter().any(|p| a.contains(p));
    says && !(intent == Intent::Exists && (a.starts_with("no") || a.contains("no record")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_answers_no_only_to_whether_something_happened() {
        for q in [
            "Has she ever had asthma?",
            "Any DVT?",
            "Hx of shingles?",
            "Does he have ADHD?",
            "Have we checked his PSA?",
            "Is there a history of PCOS?",
            "Was she ever treated for celiac disease?",
        ] {
            assert!(absence_says_no(q), "{q}");
        }
        for q in [
            "Does she smoke?",
            "Is her kidney function normal?",
            "Has his blood pressure been high?",
            "Is he diabetic?",
        ] {
            assert!(!absence_says_no(q), "{q}");
        }
    }

    #[test]
    fn reads_refusals() {
        assert!(after("The record does not contain this information.", Intent::Latest));
        assert!(after("I cannot find an A1c result in the record.", Intent::Lookup));
        assert!(!after("6.2 % on 2019-03-02 [1].", Intent::Latest));
        // "No" to an existence question is an answer.
        assert!(!after("No, the record does not contain a diagnosis of asthma.", Intent::Exists));
        assert!(after("The record does not contain this information.", Intent::Exists));
    }
}
