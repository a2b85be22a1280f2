//! `ehrqa eval retrieval`: evidence recall of assembled contexts, per question kind.
//!
//! A question is recalled when every gold reference appears in the context (as an item or among
//! the references of a fact or summary). For questions whose record holds no answer, it is
//! recalled when the context says so (a computed "No records of ..." fact) and holds no evidence
//! of the concept.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::questions::{Kind, Question};
use crate::retrieval::context::ItemKind;
use crate::retrieval::{assemble, Context, ContextOptions, IndexError, RecordIndex};
use crate::tokens::{TokenBudget, TokenCounter};

#[derive(Debug, Clone, Serialize)]
pub struct KindScore {
    pub kind: Kind,
    pub questions: usize,
    pub recalled: usize,
    pub recall: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrievalReport {
    pub budget: usize,
    pub questions: usize,
    pub recalled: usize,
    pub recall: f64,
    pub kinds: Vec<KindScore>,
    pub mean_tokens: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    /// Ids of the questions that were not recalled.
    pub missed: Vec<String>,
}

/// Whether a context holds the evidence the question needs (see the module doc). For a value
/// only an image shows, the transcript must also carry the value into the context.
pub fn recalled(q: &Question, ctx: &Context) -> bool {
    if q.kind == Kind::ImageLabValue {
        let value = match &q.answer {
            super::Gold::Number { value, .. } => crate::fhir::value::format_number(*value),
            _ => return false,
        };
        let refs = ctx.refs();
        return q.evidence.iter().all(|e| refs.contains(e.as_str())) && ctx.text.contains(&value);
    }
    if q.kind.expects_absence() {
        return ctx
            .items
            .iter()
            .any(|i| i.kind == ItemKind::Fact && i.text.starts_with("Computed: No records of"));
    }
    let refs = ctx.refs();
    !q.evidence.is_empty() && q.evidence.iter().all(|e| refs.contains(e.as_str()))
}

pub fn evaluate(
    index: &RecordIndex,
    counter: &dyn TokenCounter,
    questions: &[Question],
    budget: TokenBudget,
    today: i64,
) -> Result<RetrievalReport, IndexError> {
    let mut by_kind: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    let mut latencies = Vec::with_capacity(questions.len());
    let mut tokens = 0usize;
    let mut missed = Vec::new();
    for q in questions {
        let started = Instant::now();
        let ctx = assemble(index, counter, &q.patient, &q.question, ContextOptions { budget, today })?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        tokens += ctx.tokens;
        let ok = recalled(q, &ctx);
        let e = by_kind.entry(q.kind).or_default();
        e.0 += 1;
        if ok {
            e.1 += 1;
        } else {
            missed.push(q.id.clone());
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let recalled: usize = by_kind.values().map(|v| v.1).sum();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(RetrievalReport {
        budget: budget.get(),
        questions: questions.len(),
        recalled,
        recall: ratio(recalled, questions.len()),
        kinds: by_kind
            .into_iter()
            .map(|(kind, (n, r))| KindScore { kind, questions: n, recalled: r, recall: ratio(r, n) })
            .collect(),
        mean_tokens: ratio(tokens, questions.len()),
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        missed,
    })
}
