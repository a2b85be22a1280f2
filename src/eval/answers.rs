//! `ehrqa eval answers`: the whole ask pipeline over a question set, scored per question kind:
//! answer accuracy, citation precision and recall, abstention, invalid citations, latency; and,
//! for comparison, the accuracy of the computed facts alone on the kinds they cover.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use super::grounded;
use super::questions::{Gold, Kind, Question};
use super::score::{score, supports};
use crate::answer::{self, Answer, AnswerError, AskOptions, Method};
use crate::ingest::Progress;
use crate::llm::Generator;
use crate::retrieval::context::ItemKind;
use crate::retrieval::Context;
use crate::tokens::TokenCounter;

/// Totals for one question kind (or all).
#[derive(Debug, Clone, Default, Serialize)]
pub struct AnswerScore {
    pub questions: usize,
    /// Mean answer score (0..1; sets by F1).
    pub accuracy: f64,
    /// Cited references that are gold evidence or state the gold value, over all cited.
    pub citation_precision: Option<f64>,
    /// Gold evidence cited, mean over answered questions that have gold evidence.
    pub citation_recall: Option<f64>,
    /// Answers marked not answerable.
    pub abstained: usize,
    /// Invalid citations over all citations the model made.
    pub invalid_citation_rate: Option<f64>,
    pub latency_ms_mean: f64,
    /// Accuracy of the computed facts alone, where a fact covers the question.
    pub facts_accuracy: Option<f64>,
    pub facts_covered: usize,
    /// Answers stated from the computed facts (`method: computed`).
    pub computed: usize,
    /// Sentences the grounding check took out of the model's answers.
    pub removed_sentences: usize,
    /// Values in returned answers that no cited record states (`eval::grounded`): 0 is the goal.
    pub unheld_values: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct KindAnswers {
    pub kind: Kind,
    #[serde(flatten)]
    pub score: AnswerScore,
}

/// One question's outcome (the JSON report lists them all).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: String,
    pub kind: Kind,
    pub score: f64,
    pub answer: String,
    pub answerable: bool,
    pub cited: usize,
    pub invalid: usize,
    pub latency_ms: f64,
    /// The facts' score where a fact covers the question.
    pub facts_score: Option<f64>,
    pub method: Method,
    /// Sentences taken out as ungrounded.
    pub removed: usize,
    /// Values of the returned answer that no cited record states.
    pub unheld: Vec<String>,
    #[serde(skip)]
    cited_good: usize,
    #[serde(skip)]
    gold_recall: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnswersReport {
    pub model: String,
    pub budget: usize,
    pub overall: AnswerScore,
    /// Correct abstention: unanswerable questions answered "not in the record".
    pub correct_abstention: Option<f64>,
    /// Answerable questions answered "not in the record".
    pub false_abstention: Option<f64>,
    /// The kinds whose questions have a computed intent (latest, first, highest, lowest,
    /// count, change, ever, date of), together.
    pub computed_kinds: AnswerScore,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub kinds: Vec<KindAnswers>,
    pub outcomes: Vec<Outcome>,
}

/// Runs every question through `prepare` and `answer` (one at a time: one model).
pub async fn evaluate(
    ws: &crate::ingest::Workspace,
    counter: &dyn TokenCounter,
    generator: &dyn Generator,
    questions: &[Question],
    opts: AskOptions,
    progress: &dyn Progress,
) -> Result<AnswersReport, AnswerError> {
    progress.start(questions.len() as u64, "answering");
    let mut outcomes = Vec::with_capacity(questions.len());
    for q in questions {
        let started = Instant::now();
        let mut prep = tokio::task::block_in_place(|| {
            answer::prepare(&ws.index, counter, &q.patient, &q.question, opts)
        })?;
        answer::attach_images(&mut prep, &ws.store).await?;
        let facts_score = facts_score(q, &prep.ctx);
        let sources = prep.ctx.sources.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let drain = crate::llm::generator::drain(rx);
        let a = answer::answer(prep, generator, tx).await?;
        let _ = drain.await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        outcomes.push(outcome(q, &a, latency_ms, facts_score, |r| sources.get(r).map(|s| s.text.clone())));
        progress.advance(1);
    }
    progress.finish();
    Ok(report(generator.model_name(), opts.budget.get(), outcomes))
}

fn outcome(
    q: &Question,
    a: &Answer,
    latency_ms: f64,
    facts_score: Option<f64>,
    source_text: impl Fn(&str) -> Option<String>,
) -> Outcome {
    let cited_good = a
        .citations
        .iter()
        .filter(|c| {
            q.evidence.contains(&c.rref) || source_text(&c.rref).is_some_and(|t| supports(&q.answer, &t))
        })
        .count();
    let gold_recall = (!q.evidence.is_empty() && a.answerable).then(|| {
        let hit = q.evidence.iter().filter(|e| a.citations.iter().any(|c| &c.rref == *e)).count();
        hit as f64 / q.evidence.len() as f64
    });
    Outcome {
        id: q.id.clone(),
        kind: q.kind,
        score: score(&q.answer, &a.answer, a.answerable),
        answer: a.answer.clone(),
        answerable: a.answerable,
        cited: a.citations.len(),
        invalid: a.invalid_citations.len(),
        latency_ms,
        facts_score,
        method: a.method,
        removed: a.ungrounded.len(),
        unheld: grounded::unheld(a, &q.question),
        cited_good,
        gold_recall,
    }
}

/// The computed facts scored as if they were the answer, reading the part the question asks
/// for (`latest ...`, `highest ...`). None where no fact covers the kind.
fn facts_score(q: &Question, ctx: &Context) -> Option<f64> {
    let facts: Vec<&str> =
        ctx.items.iter().filter(|i| i.kind == ItemKind::Fact).map(|i| i.text.as_str()).collect();
    let absent = facts.iter().any(|f| f.starts_with("Computed: No records of"));
    let part = |key: &str| -> Option<String> {
        facts.iter().find_map(|f| f.split("; ").find_map(|s| s.strip_prefix(key)).map(str::to_owned))
    };
    let text = match q.kind {
        Kind::Unanswerable | Kind::EverHadNo | Kind::EverHadYes => {
            return (!facts.is_empty()).then(|| {
                let says_no = absent;
                f64::from(u8::from(
                    says_no == matches!(q.answer, Gold::NotInRecord | Gold::YesNo { value: false }),
                ))
            });
        }
        Kind::LatestValue | Kind::LastProcedure | Kind::ImmunizationDate => part("latest ")?,
        Kind::Highest => part("highest ")?,
        Kind::Lowest => part("lowest ")?,
        Kind::FirstDiagnosis => part("first ").or_else(|| part("latest "))?,
        Kind::EncounterCount => facts.iter().find_map(|f| f.split_once(": ").map(|(_, r)| r.to_owned()))?,
        _ => return None,
    };
    Some(score(&q.answer, &text, true))
}

fn report(model: &str, budget: usize, outcomes: Vec<Outcome>) -> AnswersReport {
    let mut by_kind: BTreeMap<Kind, Vec<&Outcome>> = BTreeMap::new();
    for o in &outcomes {
        by_kind.entry(o.kind).or_default().push(o);
    }
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let unanswerable: Vec<&Outcome> = all.iter().copied().filter(|o| o.kind == Kind::Unanswerable).collect();
    let answerable: Vec<&Outcome> =
        all.iter().copied().filter(|o| !matches!(o.kind, Kind::Unanswerable | Kind::EverHadNo)).collect();
    let share = |os: &[&Outcome], f: &dyn Fn(&Outcome) -> bool| {
        (!os.is_empty()).then(|| os.iter().filter(|o| f(o)).count() as f64 / os.len() as f64)
    };
    let mut lat: Vec<f64> = outcomes.iter().map(|o| o.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    AnswersReport {
        model: model.to_owned(),
        budget,
        overall: aggregate(&all),
        correct_abstention: share(&unanswerable, &|o| !o.answerable),
        false_abstention: share(&answerable, &|o| !o.answerable),
        computed_kinds: aggregate(
            &all.iter().copied().filter(|o| o.kind.computed_intent()).collect::<Vec<_>>(),
        ),
        latency_ms_p50: pct(0.5),
        latency_ms_p90: pct(0.9),
        kinds: by_kind.into_iter().map(|(kind, os)| KindAnswers { kind, score: aggregate(&os) }).collect(),
        outcomes,
    }
}

fn aggregate(os: &[&Outcome]) -> AnswerScore {
    let n = os.len();
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let cited: usize = os.iter().map(|o| o.cited).sum();
    let invalid: usize = os.iter().map(|o| o.invalid).sum();
    let facts: Vec<f64> = os.iter().filter_map(|o| o.facts_score).collect();
    AnswerScore {
        questions: n,
        accuracy: mean(os.iter().map(|o| o.score).collect()).unwrap_or(0.0),
        citation_precision: (cited > 0)
            .then(|| os.iter().map(|o| o.cited_good).sum::<usize>() as f64 / cited as f64),
        citation_recall: mean(os.iter().filter_map(|o| o.gold_recall).collect()),
        abstained: os.iter().filter(|o| !o.answerable).count(),
        invalid_citation_rate: (cited + invalid > 0).then(|| invalid as f64 / (cited + invalid) as f64),
        latency_ms_mean: mean(os.iter().map(|o| o.latency_ms).collect()).unwrap_or(0.0),
        facts_covered: facts.len(),
        facts_accuracy: mean(facts),
        computed: os.iter().filter(|o| o.method == Method::Computed).count(),
        removed_sentences: os.iter().map(|o| o.removed).sum(),
        unheld_values: os.iter().map(|o| o.unheld.len()).sum(),
    }
}
