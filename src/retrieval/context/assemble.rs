//! Packing: choose items by priority until the budget is spent, then show them by section and
//! date. Every line's token count is exact (`tokens::context_line`), so the budget holds without
//! tokenizing the assembled text again.

use std::collections::{BTreeSet, HashMap};

use super::{header, notes, render, Context, ContextItem, ItemKind, Section, Source};
use crate::fhir::Record;
use crate::retrieval::question::{analyse, asks_what_is_taken, words, Analysis, Intent, Vocabulary};
use crate::retrieval::rank::{rank, Candidate};
use crate::retrieval::summary::{self, label, series_key, Computed, Focus, SeriesKey};
use crate::retrieval::{clinician, facts, history, treatment, visit, visit_reason, IndexError, RecordIndex};
use crate::tokens::{context_line, TokenBudget, TokenCounter};

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
    // Every title is reserved, counted as a later line (the first costs no more than that).
    let titles: usize = Section::ALL.iter().map(|s| counter.count(&context_line(s.title()))).sum();
    let mut packer = Packer::new(budget, titles);
    let mut sources: HashMap<String, Source> = HashMap::new();
    let facts =
        facts::compute(&a, &ranked.concept_records, &ranked.window, ranked.anchor.as_ref(), &patient_ref);
    let reason = visit_reason::fact(&a, &ranked.candidates, &ranked.window);
    // A condition the record does not hold at all is answered as absent, not as untreated.
    let only_absent = matches!(facts.as_slice(), [only] if matches!(only.computed, Computed::Absent { .. }));
    let treated = if only_absent { None } else { treatment::fact(index, patient, &a, &ranked.window)? };
    // Who the patient sees is read from the encounters, even when the record holds no care team.
    let anchor = ranked.anchor.as_ref();
    let seen = clinician::fact(index, patient, &a, question, anchor)?;
    let answers_whom = seen.is_some();
    let listed = match seen {
        Some(c) => Some(c),
        None if only_absent => None,
        None => match history::fact(index, patient, &a, question, &ranked.window, history_groups(budget))? {
            Some(h) => Some(h),
            None => visit::fact(index, patient, &a, question, anchor, history_groups(budget))?,
        },
    };
    // A history or a visit cites records the ranking may not have drawn: the answer's citations
    // need them.
    for r in listed.iter().flat_map(|l| &l.cited) {
        sources.insert(r.rref.to_string(), Source::of(r));
    }
    // A question about medications or allergies is answered by the header: let it grow (a
    // history answers instead when the question asks for one).
    let header_types = ["MedicationRequest", "MedicationStatement", "AllergyIntolerance"];
    let about_header = listed.is_none()
        && (asks_what_is_taken(question, &a) || a.types.iter().any(|t| header_types.contains(&t.as_str())));
    let share = if about_header { HEADER_SHARE_WHEN_ASKED } else { HEADER_SHARE };
    let mut header_room = (budget as f32 * share) as usize;
    let mut header_cut = BTreeSet::new();
    for (item, record) in header::items(index, patient, counter, opts.today)? {
        if item.tokens <= header_room && packer.offer(item.clone()) {
            header_room -= item.tokens;
            sources.insert(item.rref.clone(), Source::of(&record));
        } else if let Some((_, line)) = item.text.split_once("] ") {
            // `[ref] Active medication: ...`: the line's kind (the demographics line has none).
            header_cut.extend(line.split_once(": ").map(|(kind, _)| kind.to_owned()));
        }
    }
    // A note saying why the patient came answers the question whatever concepts it names.
    let absent = if only_absent && reason.is_none() && !answers_whom {
        a.concepts.iter().map(|c| c.name.clone()).collect()
    } else {
        Vec::new()
    };
    let mut computed = Vec::new();
    for fact in reason.into_iter().chain(treated).chain(listed.map(|l| l.summary)).chain(facts) {
        let c = fact.computed.clone();
        if packer.offer(summary_item(fact, ItemKind::Fact, None, counter)) {
            computed.push(c);
        }
    }
    // Series the facts already summarise are not summarised again among the evidence.
    let covered: Vec<SeriesKey> = ranked.concept_records.iter().map(|f| series_key(&f.record)).collect();
    evidence(&ranked.candidates, &a, counter, &covered, &mut packer);
    let chosen = packer.into_reading_order();
    let tokens = total(&chosen, counter);
    let text = render(&chosen);
    let anchor = ranked.anchor.iter().map(|x| &x.found);
    let records = ranked.candidates.iter().map(|c| &c.found).chain(&ranked.concept_records).chain(anchor);
    for f in records {
        sources.entry(f.key()).or_insert_with(|| Source::of(&f.record));
    }
    let present: BTreeSet<&str> = chosen.iter().flat_map(ContextItem::all_refs).collect();
    let sources = sources.into_iter().filter(|(r, _)| present.contains(r.as_str())).collect();
    Ok(Context {
        patient: patient.to_owned(),
        budget,
        tokens,
        items: chosen,
        text,
        sources,
        intent: a.intent,
        absent,
        facts: computed,
        header_cut,
    })
}

/// Greedy packing by priority: each item offered is taken if it still fits.
struct Packer {
    budget: usize,
    used: usize,
    chosen: Vec<ContextItem>,
    /// Items offered since the last one that fitted.
    misses: usize,
}

impl Packer {
    /// Offers stop once the budget is this close to full, or this many in a row did not fit.
    const NEARLY_FULL: usize = 24;
    const MAX_MISSES: usize = 64;

    fn new(budget: usize, reserved: usize) -> Self {
        Self { budget, used: reserved, chosen: Vec::new(), misses: 0 }
    }

    fn offer(&mut self, item: ContextItem) -> bool {
        if self.used + item.tokens > self.budget {
            self.misses += 1;
            return false;
        }
        self.used += item.tokens;
        self.misses = 0;
        let rank = self.chosen.len();
        self.chosen.push(ContextItem { rank, ..item });
        true
    }

    /// Nothing more is worth building.
    fn is_full(&self) -> bool {
        self.budget.saturating_sub(self.used) < Self::NEARLY_FULL || self.misses > Self::MAX_MISSES
    }

    /// Section, then date, then reference (header and facts keep their priority order).
    fn into_reading_order(mut self) -> Vec<ContextItem> {
        self.chosen.sort_by(|a, b| {
            a.section.cmp(&b.section).then_with(|| match a.section {
                Section::Patient | Section::Facts => a.rank.cmp(&b.rank),
                _ => a.ts.cmp(&b.ts).then_with(|| a.rref.cmp(&b.rref)),
            })
        });
        self.chosen
    }
}

/// Kinds of record a history lists at most: about 50 tokens each, a third of the budget or
/// less, so the fact fits beside the header (at most 30%) at any budget.
fn history_groups(budget: usize) -> usize {
    (budget / 160).clamp(8, 200)
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

/// Evidence in rank order, built only while the budget has room: records (series capped, the
/// overflow summarised) and note excerpts.
fn evidence(
    cands: &[Candidate],
    a: &Analysis,
    counter: &dyn TokenCounter,
    covered: &[SeriesKey],
    packer: &mut Packer,
) {
    let budget = packer.budget;
    let cap = per_series(a, budget);
    let note_words = if budget >= 16_384 { 160 } else { 70 };
    let mut shown: HashMap<SeriesKey, usize> = HashMap::new();
    let mut overflow: Vec<SeriesKey> = Vec::new();
    let codes: Vec<&str> = a.codes().collect();
    for c in cands.iter().filter(|c| c.score > 0.0) {
        if packer.is_full() {
            break;
        }
        let r = &c.found.record;
        if let Some(note) = &r.note {
            packer.offer(note_item(r, note, a, counter, note_words));
            continue;
        }
        let key = series_key(r);
        let n = shown.entry(key.clone()).or_default();
        if *n < cap {
            *n += 1;
            packer.offer(record_item(r, c.found.tokens, counter));
        } else if !overflow.contains(&key) && !covered.contains(&key) {
            overflow.push(key.clone());
            // The summary takes the place where the series first overflowed.
            let members: Vec<&Record> = sorted_series(cands, &key);
            if let Some(s) = summary::summarise(&members, &codes, Focus::Latest, None) {
                let ts = members.last().and_then(|r| r.date).map(|d| d.timestamp());
                packer.offer(summary_item(s, ItemKind::Summary, ts, counter));
            }
        }
    }
}

/// A computed fact (in its own section) or a series summary (among the evidence).
fn summary_item(
    s: summary::Summary,
    kind: ItemKind,
    ts: Option<i64>,
    counter: &dyn TokenCounter,
) -> ContextItem {
    let (label, section) = match kind {
        ItemKind::Fact => ("Computed", Section::Facts),
        _ => ("Summary", Section::Evidence),
    };
    let text = format!("{label}: {}", s.text);
    ContextItem {
        rref: s.primary,
        kind,
        tokens: counter.count(&context_line(&text)),
        text,
        refs: s.refs,
        section,
        ts,
        rank: 0,
    }
}

fn sorted_series<'a>(cands: &'a [Candidate], key: &SeriesKey) -> Vec<&'a Record> {
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
    let text = format!("[{}] {}", r.rref, r.text);
    // Counted once at ingest when a tokenizer was configured then.
    let tokens = stored.map_or_else(|| counter.count(&context_line(&text)), |t| t as usize);
    ContextItem {
        rref: r.rref.to_string(),
        kind: ItemKind::Record,
        tokens,
        text,
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
        notes::excerpt(note, &a.keywords, &specific_words(a), words)
    );
    ContextItem {
        rref: r.rref.to_string(),
        kind: ItemKind::Note,
        tokens: counter.count(&context_line(&text)),
        text,
        refs: Vec::new(),
        section: Section::Notes,
        ts: r.date.map(|d| d.timestamp()),
        rank: 0,
    }
}

/// The exact token count of the rendered context: its lines' counts, plus the titles of the
/// sections present (the first line has no leading newline).
fn total(items: &[ContextItem], counter: &dyn TokenCounter) -> usize {
    let mut sections: Vec<Section> = items.iter().map(|i| i.section).collect();
    sections.dedup();
    let titles: usize = sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if i == 0 {
                counter.count(&format!("{} ", s.title()))
            } else {
                counter.count(&context_line(s.title()))
            }
        })
        .sum();
    titles + items.iter().map(|i| i.tokens).sum::<usize>()
}

/// The words of the question that named its coded concepts (`mchc`, not `report`).
fn specific_words(a: &Analysis) -> Vec<String> {
    a.concepts.iter().filter(|c| !c.codes.is_empty()).flat_map(|c| words(&c.phrase)).collect()
}
