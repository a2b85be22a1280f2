//! The normalised record: one per stored resource, the shape everything downstream reads.

use serde::{Deserialize, Serialize};

use super::concept::Concept;
use super::date::FhirDate;
use super::reference::ResourceRef;
use super::value::{Component, ReferenceRange, Value};

/// What ehrqa understood of one FHIR resource. The raw resource is stored beside it and stays the
/// source of truth: a record can always be rebuilt from it by a newer normaliser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "ref")]
    pub rref: ResourceRef,
    /// The patient whose compartment this resource belongs to (its own id for a Patient).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The clinically meaningful date (see `normalise::dates`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<FhirDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The main concept: `code`, `vaccineCode`, the medication, the encounter type...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<Concept>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub categories: Vec<Concept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub components: Vec<Component>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_range: Option<ReferenceRange>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub interpretation: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<ResourceRef>,
    /// Who an encounter was with: its first participant's name (the reference's `display`,
    /// else the name of the Practitioner it names in the same input). Read by
    /// `retrieval::clinician`; encounters written before it existed have none.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub performer: Option<String>,
    /// Why a medication was ordered or taken, or what an encounter was for: its `reasonCode`s,
    /// else (for a medication) the concept of the Condition its `reasonReference` names in the
    /// same input (a concept of the reference's `display` alone when the target is elsewhere).
    /// Read by `retrieval::treatment` and `retrieval::visit`; records written before it existed
    /// have none, even where their rendering says "for ...".
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reasons: Vec<Concept>,
    /// Decoded clinical note text (text attachments), indexed beside the rendering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The compact one-line rendering used in search results and model contexts.
    pub text: String,
    /// What could not be normalised (the raw resource still has it).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub issues: Vec<String>,
}

impl Record {
    /// A record of `rref` of which nothing is understood yet: the normaliser fills it in.
    pub fn empty(rref: ResourceRef) -> Self {
        Self {
            rref,
            patient: None,
            date: None,
            status: None,
            code: None,
            categories: Vec::new(),
            value: None,
            components: Vec::new(),
            reference_range: None,
            interpretation: Vec::new(),
            encounter: None,
            performer: None,
            reasons: Vec::new(),
            note: None,
            text: String::new(),
            issues: Vec::new(),
        }
    }
}

/// The measured part of a record, read without the rest (its rendering, note, issues): what
/// trend series need, parsed from a stored record's JSON at a fraction of the cost of a `Record`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Measured {
    #[serde(rename = "ref")]
    pub rref: ResourceRef,
    pub date: Option<FhirDate>,
    pub code: Option<Concept>,
    #[serde(default)]
    pub categories: Vec<Concept>,
    pub value: Option<Value>,
    #[serde(default)]
    pub components: Vec<Component>,
    pub reference_range: Option<ReferenceRange>,
}

impl Record {
    /// Every code of the record (main concept, value and components), for exact-code matching.
    pub fn all_codes(&self) -> impl Iterator<Item = &str> {
        let value_concept = match &self.value {
            Some(Value::Concept { concept }) => Some(concept),
            _ => None,
        };
        self.code
            .iter()
            .chain(value_concept)
            .chain(self.components.iter().map(|c| &c.code))
            .flat_map(|c| c.codings.iter().map(|c| c.code.as_str()))
    }
}
