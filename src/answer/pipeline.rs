//! The ask pipeline, in two steps so the blocking half can run off the async executor:
//! `prepare` (retrieval, tagging, prompt; synchronous) and `answer` (generation, citation
//! checking; asynchronous).

use std::time::Instant;

use tokio::sync::mpsc;

use super::citations::{self, Checked};
use super::computed;
use super::grounding::{Evidence, Ungrounded};
use super::images::{caption, IMAGE_TOKENS};
use super::prompt::{self, Built, PromptStyle, NOT_IN_RECORD};
use super::response::{Answer, Citation, Method, Timings, Usage};
use super::tags::Tagged;
use super::{abstain, phrasing, AnswerError};
use crate::fhir::date::FhirDate;
use crate::llm::sampling::Sampling;
use crate::llm::{GenerationRequest, Generator, ImageInput, Prompt};
use crate::retrieval::context::ItemKind;
use crate::retrieval::question::Intent;
use crate::retrieval::{assemble, Context, ContextOptions, RecordIndex};
use crate::tokens::{TokenBudget, TokenCounter};

#[derive(Debug, Clone, Copy)]
pub struct AskOptions {
    /// Tokens of evidence in the prompt.
    pub budget: TokenBudget,
    /// "Today" in UTC seconds.
    pub today: i64,
    pub style: PromptStyle,
    pub max_tokens: usize,
    /// Images of cited reports to show the model (0 unless it sees images); each takes
    /// `IMAGE_TOKENS` of the budget.
    pub image_slots: usize,
    /// Answer computed questions from the computed facts (`false`: every question goes to the
    /// model, for evaluating the model alone).
    pub computed: bool,
}

/// Everything up to generation.
pub struct Prepared {
    pub ctx: Context,
    pub tagged: Tagged,
    pub built: Built,
    /// Set when retrieval already shows the record cannot answer.
    pub abstain: Option<String>,
    /// The answer stated from the computed facts, when the question asks for what they compute
    /// (full references, before checking).
    pub computed: Option<String>,
    /// What each record of the context holds (grounding).
    pub evidence: Evidence,
    /// The question, on one line.
    pub question: String,
    pub retrieval_ms: f64,
    pub(super) max_tokens: usize,
    /// How many images may go with the prompt, and those attached (`attach_images`), each with
    /// the reference it shows.
    pub image_slots: usize,
    pub images: Vec<(String, ImageInput)>,
}

impl Prepared {
    /// Whether the answer is known without a model: retrieval showed the record cannot answer,
    /// or the computed facts state the answer (which a model would only reword).
    pub fn answers_without_model(&self) -> bool {
        self.abstain.is_some() || self.computed.is_some()
    }
}

/// Retrieval and prompt. Short tags take fewer tokens than the references the budget was
/// counted with, so when the tagged context leaves a fifth of the budget unused, the context is
/// assembled once more with a budget scaled up by that ratio, and kept if it still fits.
#[tracing::instrument(skip_all, fields(budget = opts.budget.get()))]
pub fn prepare(
    index: &RecordIndex,
    counter: &dyn TokenCounter,
    patient: &str,
    question: &str,
    opts: AskOptions,
) -> Result<Prepared, AnswerError> {
    let started = Instant::now();
    let images = opts.image_slots * IMAGE_TOKENS;
    let budget = opts.budget.get().saturating_sub(images).max(TokenBudget::MIN);
    let assemble_at = |b: usize| -> Result<(Context, Tagged, usize), AnswerError> {
        let b = TokenBudget::new(b).unwrap_or(opts.budget);
        let ctx =
            assemble(index, counter, patient, question, ContextOptions { budget: b, today: opts.today })?;
        let tagged = Tagged::new(&ctx);
        let tokens = counter.count(&tagged.text);
        Ok((ctx, tagged, tokens))
    };
    let (mut ctx, mut tagged, tokens) = assemble_at(budget)?;
    if tokens * 5 < budget * 4 && budget < TokenBudget::MAX {
        let scaled = (budget * budget / tokens.max(1)).min(TokenBudget::MAX);
        let (c, t, n) = assemble_at(scaled)?;
        if n <= budget {
            (ctx, tagged) = (c, t);
        }
    }
    let today = FhirDate::from_timestamp(opts.today).day_string();
    let built = prompt::build(opts.style, &tagged, question, &today);
    let computed = if opts.computed { computed::compose(&ctx, question, opts.today) } else { None };
    Ok(Prepared {
        abstain: abstain::before(&ctx, question),
        computed,
        evidence: Evidence::of(&ctx),
        question: question.split_whitespace().collect::<Vec<_>>().join(" "),
        ctx,
        tagged,
        built,
        retrieval_ms: started.elapsed().as_secs_f64() * 1000.0,
        max_tokens: opts.max_tokens,
        image_slots: opts.image_slots,
        images: Vec::new(),
    })
}

/// Generation and checking. Text pieces go to `sink` as the model produces them (raw, with the
/// prompt's tags); the returned answer is the checked one. A computed answer is sent whole.
pub async fn answer(
    prep: Prepared,
    generator: &dyn Generator,
    sink: mpsc::Sender<String>,
) -> Result<Answer, AnswerError> {
    let mut out = Answer {
        answer: String::new(),
        answerable: false,
        method: Method::Computed,
        citations: Vec::new(),
        invalid_citations: Vec::new(),
        ungrounded: Vec::new(),
        model: generator.model_name().to_owned(),
        usage: Usage::default(),
        timings: Timings { retrieval_ms: prep.retrieval_ms, ..Timings::default() },
        patient: prep.ctx.patient.clone(),
        notice: Method::Computed.notice().to_owned(),
    };
    if let Some(text) = &prep.abstain {
        out.answer.clone_from(text);
        return Ok(out);
    }
    if let Some(stated) = computed_answer(&prep, generator, &mut out).await? {
        let _ = sink.send(stated.text.clone()).await;
        out.answerable = true;
        fill(&mut out, stated, &prep.ctx);
        log(&out);
        return Ok(out);
    }
    out.method = Method::Model;
    out.notice = Method::Model.notice().to_owned();
    let g = generator.generate(request(&prep), sink).await?;
    out.usage = Usage { prompt_tokens: g.prompt_tokens, completion_tokens: g.completion_tokens };
    out.timings.load_ms = g.load_ms;
    out.timings.prefill_ms = g.prefill_ms;
    out.timings.decode_ms = g.decode_ms;
    let checked = citations::check(&g.text, &prep.tagged, &prep.evidence);
    out.invalid_citations.clone_from(&checked.invalid);
    out.ungrounded.clone_from(&checked.ungrounded);
    // Nothing grounded left: what the model said is not in the record it was given.
    let nothing_grounded = !checked.ungrounded.is_empty() && checked.cited.is_empty();
    let uncited = uncited(&checked, prep.ctx.intent);
    if let Some(sentence) = &uncited {
        out.ungrounded.push(Ungrounded { sentence: sentence.clone(), values: Vec::new() });
    }
    if checked.text.is_empty() && checked.ungrounded.is_empty() {
        out.answer = "No answer was produced.".to_owned();
    } else if uncited.is_some() {
        // Not "not in the record": the record may hold the answer; nothing checked it.
        out.answer = UNCITED.to_owned();
    } else if nothing_grounded || abstain::after(&checked.text, prep.ctx.intent) {
        out.answer = NOT_IN_RECORD.to_owned();
    } else {
        out.answerable = true;
        fill(&mut out, checked, &prep.ctx);
    }
    log(&out);
    Ok(out)
}

/// Said instead of a model answer that cites no record.
pub const UNCITED: &str =
    "The model's answer cited no record, so it is not given; the record may still hold the answer.";

/// The answer's text when it cites no record and is more than a refusal or a "no" to whether
/// something happened (absence has nothing to cite). The model answered "What happened at his
/// last visit?" with "Patient was diagnosed with asthma.", citing nothing; the last visit was
/// for dialysis. What cites nothing cannot be checked, so it is not given as an answer.
fn uncited(checked: &Checked, intent: Intent) -> Option<String> {
    let text = checked.text.trim();
    let says_no = intent == Intent::Exists && text.to_lowercase().starts_with("no");
    (checked.cited.is_empty() && !text.is_empty() && !says_no && !abstain::after(text, intent))
        .then(|| text.to_owned())
}

fn log(out: &Answer) {
    tracing::info!(
        answerable = out.answerable,
        method = ?out.method,
        citations = out.citations.len(),
        invalid = out.invalid_citations.len(),
        ungrounded = out.ungrounded.len(),
        "answered"
    );
}

/// The computed answer, checked like any other; for a chat model, phrased by the model when
/// its phrasing keeps every value and citation of the facts' own sentence.
async fn computed_answer(
    prep: &Prepared,
    generator: &dyn Generator,
    out: &mut Answer,
) -> Result<Option<Checked>, AnswerError> {
    let Some(text) = &prep.computed else { return Ok(None) };
    let checked = citations::check_computed(text, &prep.tagged);
    // Every record a computed sentence names is in the context (a statement of absence names
    // none); one that is not means the facts and the context disagree.
    if !checked.invalid.is_empty() || checked.text.is_empty() {
        tracing::warn!("a computed answer did not check; the model answers instead");
        return Ok(None);
    }
    let Some(req) = phrasing::request(prep, &checked.text) else { return Ok(Some(checked)) };
    let (tx, rx) = mpsc::channel(256);
    let drain = crate::llm::generator::drain(rx);
    let g = generator.generate(req, tx).await?;
    let _ = drain.await;
    out.usage = Usage { prompt_tokens: g.prompt_tokens, completion_tokens: g.completion_tokens };
    out.timings.load_ms = g.load_ms;
    out.timings.prefill_ms = g.prefill_ms;
    out.timings.decode_ms = g.decode_ms;
    Ok(Some(match phrasing::keeps(&checked.text, &g.text) {
        true => Checked { text: g.text.trim().to_owned(), ..checked },
        false => checked,
    }))
}

/// The model's request: the prompt (with the images' caption for a chat model) and images.
fn request(prep: &Prepared) -> GenerationRequest {
    let mut prompt = prep.built.prompt.clone();
    if let (Some(line), Prompt::Chat(messages)) = (caption(prep), &mut prompt) {
        if let Some(last) = messages.last_mut() {
            last.content = format!("{line}\n{}", last.content);
        }
    }
    GenerationRequest {
        prompt,
        max_tokens: prep.max_tokens,
        sampling: Sampling::default(),
        stop: prep.built.stop.clone(),
        images: prep.images.iter().map(|(_, i)| i.clone()).collect(),
    }
}

/// Citations from the context's sources. A reference without a source cannot have come from
/// the context: it is reported as invalid, never returned.
fn fill(out: &mut Answer, checked: Checked, ctx: &Context) {
    out.answer = checked.text;
    for rref in checked.cited {
        match ctx.sources.get(&rref) {
            Some(s) => out.citations.push(Citation {
                rtype: s.rtype.clone(),
                date: s.date.clone(),
                text: s.text.clone(),
                excerpt: note_excerpt(ctx, &rref),
                rref,
            }),
            None => out.invalid_citations.push(rref),
        }
    }
}

/// The passage of a note the context showed, without its reference, date and label.
fn note_excerpt(ctx: &Context, rref: &str) -> Option<String> {
    let item = ctx.items.iter().find(|i| i.kind == ItemKind::Note && i.rref == rref)?;
    let (_, passage) = item.text.split_once(": ")?;
    Some(passage.to_owned())
}
