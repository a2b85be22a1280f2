//! "How old is he?", "date of birth?": the age, computed from the birth date the Patient record
//! states (and its date of death), citing that record. Sent to retrieval, the question named no
//! concept, and the answer was "Yes: Patient, recorded on 2015-10-28."

use crate::fhir::date::FhirDate;
use crate::retrieval::question::{words, Analysis};
use crate::retrieval::Context;

/// The age sentence, when the question asks the patient's age or birth date and nothing else.
pub fn sentence(ctx: &Context, a: &Analysis, question: &str, today: i64) -> Option<String> {
    // The vocabulary's "demographics" (age, date of birth...) is the only concept it may name.
    let only_demographics = a.concepts.iter().all(|c| c.types.iter().all(|t| t == "Patient"));
    if !only_demographics || !asks_age(&words(question)) {
        return None;
    }
    let rref = format!("Patient/{}", ctx.patient);
    let patient = ctx.sources.get(&rref)?;
    let born = FhirDate::parse(patient.date.as_deref()?)?;
    let died =
        patient.text.split(", died ").nth(1).and_then(|rest| FhirDate::parse(rest.split([',', ';']).next()?));
    Some(match died {
        Some(d) => format!(
            "Born on {} and died on {} [{rref}], at the age of {}.",
            born.day_string(),
            d.day_string(),
            born.years_until(&d)
        ),
        None if patient.text.contains(", deceased") => {
            format!(
                "Born on {} [{rref}]; the record says the patient has died, without a date.",
                born.day_string()
            )
        }
        None => {
            let now = FhirDate::from_timestamp(today);
            format!(
                "Born on {} [{rref}]: {} years old on {}.",
                born.day_string(),
                born.years_until(&now),
                now.day_string()
            )
        }
    })
}

/// "How old is she?", "what is his age?", "date of birth?", "DOB", "when was he born?"; not the
/// age at some event ("how old was he when he broke his clavicle?", "age at diagnosis").
fn asks_age(ws: &[String]) -> bool {
    let has = |w: &str| ws.iter().any(|x| x == w);
    let pair = |a: &str, b: &str| ws.windows(2).any(|p| p[0] == a && p[1] == b);
    let at_event = ["when", "at", "after", "before", "during", "since"].into_iter().any(has) && !has("born");
    let asks = pair("how", "old")
        || has("age")
        || has("born")
        || has("dob")
        || has("birthday")
        || pair("date", "of") && has("birth");
    asks && !at_event
}

#[cfg(test)]
mod tests {
    use super::asks_age;
    use crate::retrieval::question::words;

    #[test]
    fn reads_questions_about_age() {
        for q in ["How old is he?", "What is her age?", "Date of birth?", "DOB?", "When was he born?"] {
            assert!(asks_age(&words(q)), "{q}");
        }
        for q in [
            "How long has he had asthma?",
            "What was his last A1c?",
            "Old records of his visits?",
            "How old was he when he broke his clavicle?",
            "Age at diagnosis of diabetes?",
        ] {
            assert!(!asks_age(&words(q)), "{q}");
        }
    }
}
