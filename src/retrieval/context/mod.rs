//! Context assembly: the evidence for one question about one patient, packed into a token
//! budget, every item tagged with the resource it comes from.
//!
//! Layout, always in this order so the model reads it the same way every time: the patient
//! header (demographics, allergies, active medications and problems), computed facts, the
//! evidence (records and series summaries, by date), then note excerpts (by date). Items are
//! *chosen* by priority (header, facts, then ranked evidence) and *shown* by section and date.

mod assemble;
mod header;
pub(crate) mod notes;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

pub use assemble::{assemble, ContextOptions};

/// Where an item is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Patient,
    Facts,
    Evidence,
    Notes,
}

impl Section {
    pub const ALL: [Section; 4] = [Section::Patient, Section::Facts, Section::Evidence, Section::Notes];

    pub fn title(self) -> &'static str {
        match self {
            Section::Patient => "## Patient",
            Section::Facts => "## Computed from the record",
            Section::Evidence => "## Records",
            Section::Notes => "## Note excerpts",
        }
    }
}

/// What an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Header,
    Fact,
    Record,
    Summary,
    Note,
}

/// One item of a context (a JSON contract: `ehrqa context --format json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContextItem {
    /// The resource the item is about (for facts and summaries, the main one).
    #[serde(rename = "ref")]
    pub rref: String,
    pub kind: ItemKind,
    /// Tokens of the item's line in the context (`tokens::context_line`).
    pub tokens: usize,
    pub text: String,
    /// For facts and summaries: every record they were built from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
    #[serde(skip)]
    pub section: Section,
    /// For ordering within a section.
    #[serde(skip)]
    pub ts: Option<i64>,
    /// Position in the priority order (0 first): what goes first when the budget is short.
    #[serde(skip)]
    pub rank: usize,
}

impl ContextItem {
    /// Every reference the item carries.
    pub fn all_refs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.rref.as_str()).chain(self.refs.iter().map(String::as_str))
    }
}

/// An assembled context (a JSON contract: `ehrqa context --format json`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Context {
    pub patient: String,
    pub budget: usize,
    /// The real token count of `text`, the context as the model sees it.
    pub tokens: usize,
    pub items: Vec<ContextItem>,
    #[serde(skip)]
    pub text: String,
    /// Every reference in the context, with what a citation of it shows.
    #[serde(skip)]
    pub sources: BTreeMap<String, Source>,
    /// What the question asks for.
    #[serde(skip)]
    pub intent: crate::retrieval::question::Intent,
    /// The concepts the question names when the record has none of them (in the question's
    /// period): nothing to answer from, whatever the rest of the context holds.
    #[serde(skip)]
    pub absent: Vec<String>,
    /// The computed facts the context shows, as data (`answer::computed` states them).
    #[serde(skip)]
    pub facts: Vec<crate::retrieval::summary::Computed>,
    /// The kinds of header line (`Allergy`, `Active medication`, `Active problem`) of which the
    /// budget left some out: a list read from the header is then incomplete.
    #[serde(skip)]
    pub header_cut: BTreeSet<String>,
}

/// What a citation of a resource shows without another lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The resource type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Its clinically meaningful date, `YYYY-MM-DD` (or coarser, as recorded).
    pub date: Option<String>,
    /// Its one-line rendering.
    pub text: String,
}

impl Source {
    pub fn of(r: &crate::fhir::Record) -> Self {
        Self { rtype: r.rref.rtype().to_owned(), date: r.date.map(|d| d.to_string()), text: r.text.clone() }
    }
}

impl Context {
    /// Every resource reference present in the context.
    pub fn refs(&self) -> BTreeSet<&str> {
        self.items.iter().flat_map(ContextItem::all_refs).collect()
    }
}

/// The context text: each section's title, then its items, one per line. Every line but the
/// first is `tokens::context_line`, so the text's token count is the sum of its lines' counts.
fn render(items: &[ContextItem]) -> String {
    let mut out = String::new();
    let mut current = None;
    let push = |line: &str, out: &mut String| {
        if out.is_empty() {
            out.push_str(line);
            out.push(' ');
        } else {
            out.push_str(&crate::tokens::context_line(line));
        }
    };
    for item in items {
        if current != Some(item.section) {
            push(item.section.title(), &mut out);
            current = Some(item.section);
        }
        push(&item.text, &mut out);
    }
    out
}
