//! What a condition was treated with: for a question asking it ("what was he prescribed for
//! his strep throat?"), every medication order and statement of the patient whose reason is that
//! condition, as a computed fact citing each. Each rendering says "for ...", but a small model
//! given them picks some, misses others and cites an order given for something else; a reason
//! is a code (`Record::reasons`), and comparing codes needs no model.

use super::facts::scope_text;
use super::lookup::Field;
use super::question::{Analysis, AskedConcept, TimeWindow};
use super::summary::{self, Computed, Summary, Treated, Treatments};
use super::{IndexError, RecordIndex};
use crate::fhir::concept::Concept;

/// The records that name what a medication is for.
const TYPES: [&str; 2] = ["MedicationRequest", "MedicationStatement"];

/// Medication records of one patient read at most (Synthea's busiest patients have hundreds).
const MAX_RECORDS: usize = 5_000;

/// The medications the condition the question names was the reason for, when the question asks
/// that; `None` when it does not, or when the patient's records predate `Record::reasons` (their
/// reasons are in their renderings only, so no list drawn from them could be trusted complete).
pub fn fact(
    index: &RecordIndex,
    patient: &str,
    a: &Analysis,
    window: &TimeWindow,
) -> Result<Option<Summary>, IndexError> {
    if !a.asks_treatment {
        return Ok(None);
    }
    let Some(condition) = a.concepts.iter().find(|c| c.types.iter().any(|t| t == "Condition")) else {
        return Ok(None);
    };
    let meds = index.lookup(patient, index.clauses().any_of(Field::Type, &TYPES), MAX_RECORDS)?;
    if meds.iter().any(|f| f.record.reasons.is_empty() && f.record.text.contains(" for ")) {
        return Ok(None);
    }
    let mut items: Vec<Treated> = meds
        .iter()
        .filter(|f| window.admits(f.record.date))
        .filter_map(|f| {
            let reason = f.record.reasons.iter().find(|r| names(condition, r))?;
            Some(Treated {
                rref: f.record.rref.to_string(),
                day: summary::day(&f.record),
                drug: summary::label(&f.record),
                reason: reason.label(),
                status: f.record.status.clone(),
            })
        })
        .collect();
    // Latest first; undated last.
    items.sort_by(|x, y| y.day.cmp(&x.day).then_with(|| x.rref.cmp(&y.rref)));
    let scope = scope_text(window);
    let text = match items.as_slice() {
        [] => format!(
            "No medication record of the patient gives {} as its reason{}.",
            condition.name,
            scope.as_deref().map(|s| format!(" {s}")).unwrap_or_default()
        ),
        _ => format!(
            "Medications given for {}: {}",
            condition.name,
            items
                .iter()
                .map(|t| format!("{} on {} [{}]", t.drug, t.day, t.rref))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    Ok(Some(Summary {
        text,
        primary: items.first().map_or_else(|| format!("Patient/{patient}"), |t| t.rref.clone()),
        refs: items.iter().map(|t| t.rref.clone()).collect(),
        computed: Computed::Treatments(Box::new(Treatments { asked: condition.name.clone(), items, scope })),
    }))
}

/// Whether a medication's reason is the condition: a code in common, or, for a reason without
/// codes, its label containing the condition's name or the question's words for it.
fn names(condition: &AskedConcept, reason: &Concept) -> bool {
    if reason.codings.iter().any(|k| condition.codes.contains(&k.code)) {
        return true;
    }
    let label = reason.label().to_lowercase();
    reason.codings.is_empty()
        && [&condition.name, &condition.phrase].iter().any(|n| !n.is_empty() && label.contains(n.as_str()))
}

#[cfg(test)]
mod tests {
    use super::names;
    use crate::fhir::concept::{Coding, Concept};
    use crate::retrieval::question::AskedConcept;

    fn strep() -> AskedConcept {
        AskedConcept {
            name: "strep throat".into(),
            phrase: "strep throat".into(),
            codes: vec!["43878008".into()],
            types: vec!["Condition".into()],
        }
    }

    fn coded(code: &str, display: &str) -> Concept {
        Concept {
            text: None,
            codings: vec![Coding { system: None, code: code.into(), display: Some(display.into()) }],
        }
    }

    #[test]
    fn a_reason_names_the_condition_by_code_or_an_uncoded_label() {
        assert!(names(&strep(), &coded("43878008", "Streptococcal sore throat (disorder)")));
        assert!(!names(&strep(), &coded("195662009", "Acute viral pharyngitis (disorder)")));
        // A coded reason is judged by its code alone, whatever its label says.
        assert!(!names(&strep(), &coded("195662009", "not strep throat")));
        let uncoded = |t: &str| Concept { text: Some(t.into()), codings: Vec::new() };
        assert!(names(&strep(), &uncoded("Strep throat, recurrent")));
        assert!(!names(&strep(), &uncoded("Sore throat")));
    }
}
