//! Conversations: questions about one patient asked one after another, each read against the
//! turns before it (`resolve`). While a follow-up is about the same thing (same concepts, no
//! time window of its own), the context of the turn that opened the topic is kept and the
//! prompt grows turn by turn (`history`): the previous turn's prompt and answer are a prefix of
//! the next one's, so the local engine keeps their keys and values and prefills only the new
//! turn. A follow-up about something else gets a fresh context, and its question carries what
//! it inherits. Conversations live in memory, bounded (`store`).
//!
//! Like `answer`, a turn has a blocking half (`Conversation::prepare`: resolution, retrieval,
//! prompt) and an asynchronous one (`Conversation::answer`: generation, checking, and the turn
//! recorded). A turn whose generation failed or was cancelled is not recorded.

pub mod history;
pub mod resolve;
pub mod store;

use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::mpsc;

pub use history::Exchange;
pub use resolve::{Answered, Resolved, Topic};
pub use store::{Conversations, StoreLimits};

use crate::answer::{self, Answer, AnswerError, AskOptions, Citation, Evidence, Method, Prepared, Tagged};
use crate::llm::generator::BoxFuture;
use crate::llm::{Finish, Generation, GenerationRequest, Generator, LlmError, Prompt};
use crate::retrieval::{Context, RecordIndex};
use crate::tokens::TokenCounter;

/// The context a run of turns shares, and what was said on it.
struct Base {
    ctx: Context,
    tagged: Tagged,
    evidence: Evidence,
    abstain: Option<String>,
    /// The prompt of the turn that opened it.
    first: Prompt,
    exchanges: Vec<Exchange>,
}

pub struct Conversation {
    pub id: String,
    pub patient: String,
    turns: usize,
    topic: Option<Topic>,
    base: Option<Base>,
}

/// A turn ready for generation.
pub struct TurnPlan {
    pub prep: Prepared,
    pub resolved: Resolved,
    /// The prompt `prepare` built for the question alone (a new context's first prompt).
    fresh: Prompt,
    kept: bool,
}

impl TurnPlan {
    /// Whether the turn answers on the previous turn's context.
    pub fn context_kept(&self) -> bool {
        self.kept
    }
}

/// An answer within a conversation: the answer contract, with the conversation, the turn, and
/// what the question was resolved to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TurnAnswer {
    pub conversation_id: String,
    /// 1 for the first question.
    pub turn: usize,
    /// The question as the model read it, with what it refers to in the conversation.
    pub resolved_question: String,
    /// Whether the previous turn's context was kept (the prompt then extends the previous one).
    pub context_kept: bool,
    /// Prompt tokens the model had cached from the turns before and did not prefill again.
    pub cached_tokens: usize,
    #[serde(flatten)]
    pub answer: Answer,
}

impl Conversation {
    pub fn new(id: &str, patient: &str) -> Self {
        Self { id: id.to_owned(), patient: patient.to_owned(), turns: 0, topic: None, base: None }
    }

    /// Turns answered so far.
    pub fn turns(&self) -> usize {
        self.turns
    }

    /// The value the last turn answered with, as "the one before" counts back from it.
    pub fn last_answered(&self) -> Option<&Answered> {
        self.topic.as_ref()?.answered.as_ref()
    }

    /// Resolution, retrieval and the prompt (blocking: run it off the async executor).
    pub fn prepare(
        &self,
        index: &RecordIndex,
        counter: &dyn TokenCounter,
        question: &str,
        opts: AskOptions,
    ) -> Result<TurnPlan, AnswerError> {
        let sources = self.base.as_ref().map(|b| &b.ctx.sources);
        let resolved = resolve::resolve(self.topic.as_ref(), sources, question, opts.today);
        let mut prep = answer::prepare(index, counter, &self.patient, &resolved.retrieval, opts)?;
        let fresh = prep.built.prompt.clone();
        // A question the computed facts answer is answered from its own context (the facts are
        // computed for the resolved question), unless it counts back from the last answer,
        // which only the conversation knows.
        let keep = resolved.keep_context && (prep.computed.is_none() || resolved.refers_back);
        let base = self.base.as_ref().filter(|_| keep);
        let kept = base.is_some();
        if let Some(base) = base {
            prep.ctx = base.ctx.clone();
            prep.tagged = base.tagged.clone();
            prep.evidence = base.evidence.clone();
            prep.abstain = base.abstain.clone();
            prep.computed = None;
            prep.built.prompt = history::continued(&base.first, &base.exchanges, &resolved.shown);
        }
        Ok(TurnPlan { prep, resolved, fresh, kept })
    }

    /// Generation and checking as for a single question; the turn is then recorded, unless
    /// generation was cancelled (the asker went away before seeing it).
    pub async fn answer(
        &mut self,
        plan: TurnPlan,
        generator: &dyn Generator,
        sink: mpsc::Sender<String>,
    ) -> Result<TurnAnswer, AnswerError> {
        let TurnPlan { prep, resolved, fresh, kept } = plan;
        let opened = (!kept).then(|| Base {
            ctx: prep.ctx.clone(),
            tagged: prep.tagged.clone(),
            evidence: prep.evidence.clone(),
            abstain: prep.abstain.clone(),
            first: fresh,
            exchanges: Vec::new(),
        });
        let recorder = Recorder { inner: generator, last: Mutex::new(None) };
        let answer = answer::answer(prep, &recorder, sink).await?;
        let generation = recorder.last.into_inner().unwrap_or_else(|e| e.into_inner());
        let turn = TurnAnswer {
            conversation_id: self.id.clone(),
            turn: self.turns + 1,
            resolved_question: resolved.shown.clone(),
            context_kept: kept,
            cached_tokens: generation.as_ref().map_or(0, |g| g.cached_tokens),
            answer,
        };
        if generation.as_ref().is_some_and(|g| g.finish == Finish::Cancelled) {
            return Ok(turn);
        }
        if opened.is_some() {
            self.base = opened;
        }
        let base = self.base.as_mut().expect("a base was just opened or kept");
        // What the model wrote (tags and all) is what it reads back next turn; an answer stated
        // without it (computed, or an abstention) is the checked text with the prompt's tags.
        let said = match generation {
            Some(g) if turn.answer.method == Method::Model => g.text,
            _ => retag(&turn.answer.answer, &turn.answer.citations, &base.tagged),
        };
        base.exchanges.push(Exchange { question: resolved.shown.clone(), answer: said });
        let cited: Vec<(String, Option<String>)> =
            turn.answer.citations.iter().map(|c| (c.rref.clone(), c.date.clone())).collect();
        let answered = resolved
            .before
            .clone()
            .or_else(|| resolve::answered(&cited, &base.ctx.sources, &resolved.concepts, resolved.intent));
        self.topic = Some(Topic { concepts: resolved.concepts, intent: resolved.intent, answered });
        self.turns += 1;
        Ok(turn)
    }
}

/// A checked answer's text with its citations `[1]`.. (numbered in the order of `citations`)
/// written back as the prompt's tags, as the model would have written them.
fn retag(text: &str, citations: &[Citation], tagged: &Tagged) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find(']').filter(|&c| c > 0 && after[..c].bytes().all(|b| b.is_ascii_digit()));
        match close.and_then(|c| {
            let n: usize = after[..c].parse().ok()?;
            let tag = tagged.tag_of(&citations.get(n.checked_sub(1)?)?.rref)?;
            Some((c, tag))
        }) {
            Some((c, tag)) => {
                out.push_str(&format!("[{tag}]"));
                rest = &after[c + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A generator that passes everything through and keeps the last generation (its raw text
/// and cache use, which the answer contract does not carry).
struct Recorder<'a> {
    inner: &'a dyn Generator,
    last: Mutex<Option<Generation>>,
}

impl Generator for Recorder<'_> {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn instruction_tuned(&self) -> bool {
        self.inner.instruction_tuned()
    }

    fn sees_images(&self) -> bool {
        self.inner.sees_images()
    }

    fn generate(
        &self,
        req: GenerationRequest,
        sink: mpsc::Sender<String>,
    ) -> BoxFuture<'_, Result<Generation, LlmError>> {
        Box::pin(async move {
            let g = self.inner.generate(req, sink).await?;
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(g.clone());
            Ok(g)
        })
    }
}
