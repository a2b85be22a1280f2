//! Question analysis: what a question asks for, derived once and used by ranking, facts and the
//! evaluation. Resource types and clinical concepts come from the vocabulary; time windows and
//! the intent (latest, first, how many, highest, trend...) from the wording.

mod text;
mod time;
mod vocabulary;

use serde::Serialize;

pub use text::{is_stopword, label_overlap, words};
pub use time::{Anchor, TimeWindow, DAY};
pub use vocabulary::{VocabConcept, Vocabulary};

/// What the question wants done with the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// "how many", "how often"
    Count,
    Highest,
    Lowest,
    /// "how has it changed", "trend", "over time"
    Trend,
    /// "first", "earliest", "when was she diagnosed"
    First,
    /// "latest", "last", "most recent", "current"
    Latest,
    /// "has he ever had", "does she have"
    Exists,
    /// "what medications", "list", "which"
    List,
    /// Anything else: look the thing up.
    Lookup,
}

/// A concept the question names, with what it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AskedConcept {
    pub name: String,
    /// The words of the question that named it.
    pub phrase: String,
    pub codes: Vec<String>,
    pub types: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub concepts: Vec<AskedConcept>,
    /// Union of the concepts' resource types.
    pub types: Vec<String>,
    #[serde(skip)]
    pub time: TimeWindow,
    pub intent: Intent,
    /// Content words for full-text ranking (concept synonyms included).
    pub keywords: Vec<String>,
    /// "Why did he come in on ...?", "what was the chief complaint at her visit ...?": asks why
    /// the patient came, which the note of that visit states.
    pub asks_reason: bool,
    /// "What was he prescribed for his strep throat?", "what is she taking for diabetes?",
    /// "how was his sinusitis treated?": asks which medications a condition was the reason for.
    pub asks_treatment: bool,
    /// "Is her kidney function normal?", "is his A1c controlled?": asks a quality of what it
    /// names (words of the concept's own name, as in "low blood oxygen", do not count). Its
    /// absence does not answer "no", and its presence does not answer "yes".
    pub asks_quality: bool,
}

impl Analysis {
    /// Every code of every concept asked about.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.concepts.iter().flat_map(|c| c.codes.iter().map(String::as_str))
    }
}

/// Analyses a question. `today` (UTC seconds) anchors "last year", "past 6 months".
pub fn analyse(question: &str, today: i64, vocab: &Vocabulary) -> Analysis {
    let ws = words(question);
    let (time, time_words) = time::parse(&ws, today);
    // Words naming a time ("at his last visit") name no concept.
    let mut matches = vocab.find(&ws);
    matches.retain(|m| !(m.start..m.end).any(|i| time_words.contains(&i)));
    // A concept's own words do not set the intent: "initial patient assessment" is a procedure
    // and "white count" a lab, not "first" and "how many".
    let named: Vec<usize> =
        matches.iter().filter(|m| m.end - m.start > 1).flat_map(|m| m.start..m.end).collect();
    let intent = intent(&ws, &[time_words.as_slice(), named.as_slice()].concat());
    let mut concepts: Vec<AskedConcept> = Vec::new();
    for m in &matches {
        let phrase = ws[m.start..m.end].join(" ");
        for &i in &m.concepts {
            let c = vocab.concept(i);
            if concepts.iter().any(|a| a.name == c.name) {
                continue;
            }
            concepts.push(AskedConcept {
                name: c.name.clone(),
                phrase: phrase.clone(),
                codes: c.codes.clone(),
                types: c.types.clone(),
            });
        }
    }
    let mut types: Vec<String> = concepts.iter().flat_map(|c| c.types.iter().cloned()).collect();
    types.sort();
    types.dedup();
    let mut keywords: Vec<String> = ws
        .iter()
        .enumerate()
        .filter(|(i, w)| !time_words.contains(i) && !is_stopword(w) && !is_intent_word(w))
        .map(|(_, w)| w.clone())
        .collect();
    for c in &concepts {
        keywords.extend(words(&c.name).into_iter().filter(|w| !is_stopword(w)));
    }
    keywords.sort();
    keywords.dedup();
    let asks_reason = asks_reason(&ws);
    let asks_treatment = asks_treatment(&ws);
    let named: Vec<String> = concepts.iter().flat_map(|c| words(&c.phrase)).collect();
    let asks_quality = ws.iter().any(|w| QUALITY.contains(&w.as_str()) && !named.contains(w));
    Analysis { concepts, types, time, intent, keywords, asks_reason, asks_treatment, asks_quality }
}

/// "What does he take every day?", "what is she on at the moment?": asks which medications the
/// patient takes now, naming no drug and no other concept.
pub fn asks_what_is_taken(question: &str, a: &Analysis) -> bool {
    let q = words(question);
    let on = ["is", "he", "she", "they", "patient"];
    let is_on = q.windows(2).any(|w| on.contains(&w[0].as_str()) && w[1] == "on") && any(&q, &["what"]);
    (any(&q, &["take", "takes", "taking"]) || is_on) && a.concepts.iter().all(|c| c.codes.is_empty())
}

/// Words asking about a quality of the thing named.
const QUALITY: [&str; 18] = [
    "normal",
    "abnormal",
    "high",
    "low",
    "elevated",
    "raised",
    "ok",
    "okay",
    "fine",
    "controlled",
    "uncontrolled",
    "stable",
    "good",
    "bad",
    "positive",
    "negative",
    "within",
    "range",
];

/// Words that ask which medications were given for something: a word for medicines or for
/// taking, giving or prescribing them, and `for`. Not a yes/no question: "was she ever treated
/// for sinus trouble?" and "did he take anything for it?" ask whether, which the record's
/// conditions answer, and "treated" alone is as often a procedure ("fluoride treatment").
fn asks_treatment(ws: &[String]) -> bool {
    let medicine = any(
        ws,
        &[
            "medication",
            "medications",
            "medicine",
            "medicines",
            "med",
            "meds",
            "drug",
            "drugs",
            "prescribed",
            "prescription",
            "prescriptions",
            "taking",
            "take",
            "takes",
            "took",
            "given",
            "gave",
        ],
    );
    medicine && any(ws, &["for"]) && !starts_yes_no(ws) && !any(ws, &["ever"])
}

/// Words that ask why the patient came: `why`, `reason`, `complaint`, `came in`, `brought`,
/// `present with`, `wrong with`, `going on`, `address`, `problem` (of a visit).
fn asks_reason(ws: &[String]) -> bool {
    any(ws, &["why", "reason", "complaint", "complaining", "brought", "presenting", "address", "addressed"])
        || has(ws, &["come", "in"])
        || has(ws, &["came", "in"])
        || has(ws, &["present", "with"])
        || has(ws, &["presented", "with"])
        || has(ws, &["wrong", "with"])
        || has(ws, &["going", "on"])
        || has(ws, &["the", "problem"])
}

fn has(ws: &[String], phrase: &[&str]) -> bool {
    ws.windows(phrase.len()).any(|w| w.iter().zip(phrase).all(|(a, b)| a == b))
}

fn any(ws: &[String], words: &[&str]) -> bool {
    ws.iter().any(|w| words.contains(&w.as_str()))
}

fn is_intent_word(w: &str) -> bool {
    matches!(
        w,
        "highest"
            | "lowest"
            | "maximum"
            | "minimum"
            | "max"
            | "min"
            | "peak"
            | "trend"
            | "changed"
            | "change"
            | "first"
            | "earliest"
            | "initial"
            | "newest"
            | "often"
            | "number"
            | "count"
            | "ever"
    )
}

/// Words that name an intent other than counting.
const INTENT_WORDS: [&str; 14] = [
    "highest", "maximum", "max", "peak", "lowest", "minimum", "min", "trend", "first", "earliest", "latest",
    "last", "recent", "current",
];

/// The intent, read from the words outside `skip` (time words and concept phrases).
fn intent(ws: &[String], skip: &[usize]) -> Intent {
    let free: Vec<String> =
        ws.iter().enumerate().filter(|(i, _)| !skip.contains(i)).map(|(_, w)| w.clone()).collect();
    let ws = &free;
    // "count" alone is often the thing measured ("white count", "what was her blood count on
    // ..."): it asks how many only when nothing else says what to do.
    let counted = has(ws, &["how", "many"]) || has(ws, &["how", "often"]) || has(ws, &["number", "of"]);
    let valued = any(ws, &["what", "was", "is", "value", "level", "result"]);
    if counted || (any(ws, &["count"]) && !valued && !any(ws, &INTENT_WORDS)) {
        Intent::Count
    } else if any(ws, &["highest", "maximum", "max", "peak", "largest", "worst"]) || has(ws, &["how", "high"])
    {
        Intent::Highest
    } else if any(ws, &["lowest", "minimum", "min", "smallest"])
        || has(ws, &["how", "low"])
        || any(ws, &["least"]) && !has(ws, &["at", "least"])
    {
        Intent::Lowest
    } else if any(
        ws,
        &[
            "trend",
            "trending",
            "changed",
            "change",
            "changes",
            "trajectory",
            "improving",
            "improved",
            "worsening",
            "rising",
            "falling",
            "increasing",
            "decreasing",
        ],
    ) || has(ws, &["over", "time"])
        || has(ws, &["over", "the", "years"])
        || has(ws, &["going", "up"])
        || has(ws, &["going", "down"])
        || has(ws, &["getting", "better"])
        || has(ws, &["getting", "worse"])
    {
        Intent::Trend
    } else if any(
        ws,
        &[
            "first",
            "earliest",
            "initial",
            "initially",
            "onset",
            "diagnosed",
            "diagnosis",
            "began",
            "start",
            "started",
        ],
    ) && !asks_whether_diagnosed(ws)
        || asks_since_when(ws)
    {
        Intent::First
    } else if any(
        ws,
        &["latest", "last", "recent", "recently", "current", "currently", "now", "newest", "today"],
    ) || has(ws, &["up", "to", "date"])
        || has(ws, &["how", "long", "ago"])
    {
        Intent::Latest
    } else if any(ws, &["ever", "any", "hx"]) || has(ws, &["history", "of"]) || starts_yes_no(ws) {
        Intent::Exists
    } else if any(ws, &["list", "which", "all", "active"]) {
        Intent::List
    } else {
        Intent::Lookup
    }
}

/// "Has he been diagnosed with a concussion?", "did his asthma start ...?": a yes/no question
/// whose only word of a first time is the diagnosis or start itself asks whether, not when
/// ("when was he diagnosed", "has he had it since he was first diagnosed" still ask when).
fn asks_whether_diagnosed(ws: &[String]) -> bool {
    starts_yes_no(ws) && !any(ws, &["first", "earliest", "initial", "initially", "onset", "when"])
}

/// "Since when has she had ...?", "how long has he had ...?": the onset is the answer.
fn asks_since_when(ws: &[String]) -> bool {
    has(ws, &["since", "when"]) || has(ws, &["how", "long", "has"]) || has(ws, &["how", "long", "have"])
}

/// "has she had", "does he have", "is she on", "did he get": a yes/no question.
fn starts_yes_no(ws: &[String]) -> bool {
    matches!(ws.first().map(String::as_str), Some("has" | "have" | "does" | "do" | "is" | "did" | "was"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(q: &str) -> Analysis {
        let today = crate::fhir::date::FhirDate::parse("2026-11-01").unwrap().timestamp();
        analyse(q, today, Vocabulary::embedded())
    }

    #[test]
    fn maps_abbreviations_and_lay_terms_to_codes_and_types() {
        assert!(a("What was her latest A1c?").codes().any(|c| c == "4548-4"));
        assert!(a("latest HbA1c").codes().any(|c| c == "4548-4"));
        assert!(a("What was his last BP?").codes().any(|c| c == "8480-6" || c == "85354-9"));
        assert!(a("how is her blood sugar").codes().any(|c| c == "2339-0" || c == "2345-7"));
        assert!(a("has she had all her shots").types.contains(&"Immunization".to_owned()));
        assert!(a("how is his kidney function").codes().any(|c| c == "33914-3" || c == "2160-0"));
        // A swab for strep is the throat culture, not the strep throat it looks for.
        let swab = a("When did he last have a strep swab?");
        assert!(swab.codes().any(|c| c == "117015009") && !swab.codes().any(|c| c == "43878008"));
    }

    #[test]
    fn reacting_to_something_is_an_allergy_not_a_record_of_it() {
        for q in ["Does he react to any medications?", "Has she had an adverse reaction to a drug?"] {
            assert!(a(q).types.contains(&"AllergyIntolerance".to_owned()), "{q}");
        }
    }

    #[test]
    fn reads_questions_about_why_the_patient_came() {
        for q in [
            "Why did he come in on 1939-05-02?",
            "What was the chief complaint at her visit on 2012-08-31?",
            "What brought her in on Aug 12 1968?",
            "What did he present with on 2020-05-24?",
            "What was wrong with him on 10/25/1983?",
            "What was the problem on Jul 31 1955?",
        ] {
            assert!(a(q).asks_reason, "{q}");
        }
        assert!(!a("What problems does he have?").asks_reason);
        assert!(!a("What was her latest A1c?").asks_reason);
    }

    #[test]
    fn reads_questions_about_what_a_condition_was_treated_with() {
        for q in [
            "What medications was he prescribed for strep throat?",
            "What is she taking for her diabetes?",
            "Which drugs were given for the bronchitis?",
            "What meds for hypertension?",
            "What was he given for his anemia?",
        ] {
            assert!(a(q).asks_treatment, "{q}");
        }
        for q in [
            "What does he take every day?",
            "What medications is he on?",
            "Has he had strep throat?",
            "Was she ever treated for sinus trouble?",
            "Did he take anything for his strep throat?",
            "When was his last fluoride treatment?",
        ] {
            assert!(!a(q).asks_treatment, "{q}");
        }
    }

    #[test]
    fn a_yes_no_question_about_a_diagnosis_asks_whether() {
        for q in [
            "Has he been diagnosed with a concussion?",
            "Was she diagnosed with a strep infection?",
            "Hx of a cracked rib?",
            "Hx of strep?",
        ] {
            assert_eq!(a(q).intent, Intent::Exists, "{q}");
        }
        for q in [
            "When was he diagnosed with a concussion?",
            "Was she first diagnosed with asthma in 2010?",
            "Since when has she had a urinary tract infection?",
            "How long has he had a fracture?",
            "How long have you had asthma?",
        ] {
            assert_eq!(a(q).intent, Intent::First, "{q}");
        }
        assert_eq!(a("How long ago was his last visit?").intent, Intent::Latest);
    }

    #[test]
    fn reads_questions_about_a_quality() {
        assert!(a("Is his A1c controlled?").asks_quality);
        assert!(a("Is her kidney function normal?").asks_quality);
        assert!(!a("Has he had an A1c?").asks_quality);
        // The concept's own words.
        assert!(!a("Does he have low blood oxygen?").asks_quality);
    }

    #[test]
    fn least_asks_the_lowest_but_at_least_does_not() {
        assert_eq!(a("Least body temperature recorded?").intent, Intent::Lowest);
        assert_eq!(a("What was his least triglycerides?").intent, Intent::Lowest);
        assert_eq!(a("Has he had at least one A1c?").intent, Intent::Exists);
    }

    #[test]
    fn reads_the_intent() {
        assert_eq!(a("What was her latest A1c?").intent, Intent::Latest);
        assert_eq!(a("When was she first diagnosed with diabetes?").intent, Intent::First);
        assert_eq!(a("How many encounters did he have in 2019?").intent, Intent::Count);
        assert_eq!(a("What is the maximum white blood cell count in her record?").intent, Intent::Highest);
        assert_eq!(a("What was the white count on 2019-03-02?").intent, Intent::Lookup);
        assert_eq!(a("Encounter count?").intent, Intent::Count);
        assert_eq!(a("highest glucose ever").intent, Intent::Highest);
        assert_eq!(a("How has her weight changed over time?").intent, Intent::Trend);
        assert_eq!(a("Has he ever had a colonoscopy?").intent, Intent::Exists);
        assert_eq!(a("What was the glucose in the last 6 months").intent, Intent::Lookup);
    }
}
