//! Packing: choose items by priority until the budget is spent, show them by section and date,
//! and check the real token count of the result.

use std::collections::HashMap;

use super::{header, notes, render, Context, ContextItem, ItemKind, Section};
use crate::fhir::Record;
use crate::retrieval::question::{analyse, Analysis, Intent, Vocabulary};
use crate::retrieval::rank::{rank, Candidate};
use crate::retrieval::summary::{self, label, Focus};
use crate::retrieval::{facts, IndexError, RecordIndex};
use crate::tokens::{TokenBudget, TokenCounter};

/// The header may take at most this share of the budget.
const HEADER_SHARE: f32 = 0.3;
const HEADER_SHARE_WHEN_ASKED: f32 = 0.8;

#[derive(Debug, Clone, Copy)]
pub struct ContextOptions {
    pub budget: TokenBudget,
    /// "Today" in UTC seconds: anchors relative dates in the question and the patient's age.
    pub today: i64,
}

/// Assembles the context for `question` about `patient`.
#[tracing::instrument(skip_all, fields(budget = opts.budget.get()))]
pub fn assemble(
    index: &RecordIndex,
    counter: &dyn TokenCounter,
    patient: &str,
    question: &str,
    opts: ContextOptions,
) -> Result<Context, IndexError> {
    let a = analyse(question, opts.today, Vocabulary::embedded());
    let budget = opts.budget.get();
    let ranked = rank(index, patient, &a)?;
    let patient_ref = format!("Patient/{patient}");
    let mut priority: Vec<ContextItem> = Vec::new();
    // A question about medications or allergies is answered by the header: let it grow.
    let about_header = a
        .types
        .iter()
        .any(|t| matches!(t.as_str(), "MedicationRequest" | "MedicationStatement" | "AllergyIntolerance"));
    let share = if about_header { HEADER_SHARE_WHEN_ASKED } else { HEADER_SHARE };
    let header_cap = (budget as f32 * share) as usize;
    let mut header_used = 0;
    for item in header::items(index, patient, counter, opts.today)? {
        if header_used + item.tokens + 1 <= header_cap {
            header_used += item.tokens + 1;
            priority.push(item);
        }
    }
    for fact in facts::compute(&a, &ranked.concept_records, &ranked.window, &patient_ref) {
        let text = format!("Computed: {}", fact.text);
        priority.push(ContextItem {
            rref: fact.primary,
            kind: ItemKind::Fact,
            tokens: counter.count(&text),
            text,
            refs: fact.refs,
            section: Section::Facts,
            ts: None,
            rank: 0,
        });
    }
    // Series the facts already summarise are not summarised again among the evidence.
    let covered: Vec<(String, String)> =
        ranked.concept_records.iter().map(|f| series_key(&f.record)).collect();
    priority.extend(evidence(&ranked.candidates, &a, counter, budget, &covered));
    let mut chosen = pack(priority, budget);
    let (text, tokens) = fit(&mut chosen, counter, budget);
    Ok(Context { patient: patient.to_owned(), budget, tokens, items: chosen, text })
}

/// How many records of one series are shown one by one before the series is summarised.
fn per_series(a: &Analysis, budget: usize) -> usize {
    let base = match a.intent {
        Intent::Trend => 8,
        Intent::Latest | Intent::First | Intent::Highest | Intent::Lowest => 3,
        _ => 5,
    };
    base.max(budget / 4096)
}

/// Evidence items in rank order: records (series capped, overflow summarised) and note excerpts.
fn evidence(
    cands: &[Candidate],
    a: &Analysis,
    counter: &dyn TokenCounter,
    budget: usize,
    covered: &[(String, String)],
) -> Vec<ContextItem> {
    let cap = per_series(a, budget);
    let note_words = if budget >= 16_384 { 160 } else { 70 };
    let mut shown: HashMap<(String, String), usize> = HashMap::new();
    let mut overflow: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for c in cands.iter().filter(|c| c.score > 0.0) {
        let r = &c.found.record;
        if let Some(note) = &r.note {
            out.push(note_item(r, note, a, counter, note_words));
            continue;
        }
        let key = series_key(r);
        let n = shown.entry(key.clone()).or_default();
        if *n < cap {
            *n += 1;
            out.push(record_item(r, c.found.tokens, counter));
        } else if !overflow.contains(&key) && !covered.contains(&key) {
            overflow.push(key.clone());
            // The summary takes the place where the series first overflowed.
            let members: Vec<&Record> = sorted_series(cands, &key);
            let codes: Vec<&str> = a.codes().collect();
            if let Some(s) = summary::summarise(&members, &codes, Focus::Latest, None) {
                let text = format!("Summary: {}", s.text);
                out.push(ContextItem {
                    rref: s.primary,
                    kind: ItemKind::Summary,
                    tokens: counter.count(&text),
                    text,
                    refs: s.refs,
                    section: Section::Evidence,
                    ts: members.last().and_then(|r| r.date).map(|d| d.timestamp()),
                    rank: 0,
                });
            }
        }
    }
    out
}

fn series_key(r: &Record) -> (String, String) {
    (r.rref.rtype().to_owned(), label(r))
}

fn sorted_series<'a>(cands: &'a [Candidate], key: &(String, String)) -> Vec<&'a Record> {
    let mut members: Vec<&Record> = cands
        .iter()
        .filter(|c| c.score > 0.0)
        .map(|c| &c.found.record)
        .filter(|r| r.note.is_none() && &series_key(r) == key)
        .collect();
    members.sort_by_key(|r| r.date.map(|d| d.timestamp()));
    members
}

fn record_item(r: &Record, stored: Option<u32>, counter: &dyn TokenCounter) -> ContextItem {
    let tag = format!("[{}] ", r.rref);
    let tokens = match stored {
        Some(t) => t as usize + counter.count(&tag),
        None => counter.count(&r.text) + counter.count(&tag),
    };
    ContextItem {
        rref: r.rref.to_string(),
        kind: ItemKind::Record,
        tokens,
        text: format!("{tag}{}", r.text),
        refs: Vec::new(),
        section: Section::Evidence,
        ts: r.date.map(|d| d.timestamp()),
        rank: 0,
    }
}

fn note_item(r: &Record, note: &str, a: &Analysis, counter: &dyn TokenCounter, words: usize) -> ContextItem {
    let date = r.date.map(|d| format!("{d} ")).unwrap_or_default();
    let text = format!(
        "[{}] {date}{} {}: {}",
        r.rref,
        r.rref.rtype(),
        label(r),
        notes::excerpt(note, &a.keywords, words)
    );
    ContextItem {
        rref: r.rref.to_string(),
        kind: ItemKind::Note,
        tokens: counter.count(&text),
        text,
        refs: Vec::new(),
        section: Section::Notes,
        ts: r.date.map(|d| d.timestamp()),
        rank: 0,
    }
}

/// Greedy choice by priority, then the reading order: section, then date, then reference.
fn pack(priority: Vec<ContextItem>, budget: usize) -> Vec<ContextItem> {
    // Section titles and the newline after each line.
    let mut used = 4 * 6;
    let mut chosen: Vec<(usize, ContextItem)> = Vec::new();
    for (rank, item) in priority.into_iter().enumerate() {
        if used + item.tokens + 1 <= budget {
            used += item.tokens + 1;
            chosen.push((rank, item));
        }
    }
    chosen.sort_by(|(ra, a), (rb, b)| {
        a.section.cmp(&b.section).then_with(|| match a.section {
            Section::Patient | Section::Facts => ra.cmp(rb),
            _ => a.ts.cmp(&b.ts).then_with(|| a.rref.cmp(&b.rref)),
        })
    });
    chosen.into_iter().map(|(rank, item)| ContextItem { rank, ..item }).collect()
}

/// Renders and counts for real; drops the least important evidence until the text fits.
fn fit(items: &mut Vec<ContextItem>, counter: &dyn TokenCounter, budget: usize) -> (String, usize) {
    loop {
        let text = render(items);
        let tokens = counter.count(&text);
        if tokens <= budget || items.is_empty() {
            return (text, tokens);
        }
        // The least important item goes (the header only when nothing else is left).
        let victim = items
            .iter()
            .enumerate()
            .max_by_key(|(_, i)| (i.section != Section::Patient, i.rank))
            .map_or(0, |(at, _)| at);
        items.remove(victim);
    }
}
