//! The seam between answers and models: a `Generator` streams text for a prompt. The local
//! candle engine and the remote OpenAI-compatible backend implement it; nothing above this module
//! knows which one runs.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use tokio::sync::mpsc;

use super::chat::Message;
use super::sampling::Sampling;
use super::segment::Segment;
use super::LlmError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What to generate from.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A conversation, rendered with the model's chat template. Message contents are data:
    /// control-token strings in them stay text (`segment`).
    Chat(Vec<Message>),
    /// The operator's own text, tokenized as is with BOS, control tokens included (what
    /// comparisons with llama.cpp use). Never for text from a record or a client.
    Raw(String),
    /// A completion prompt with BOS: the template's text and untrusted text (record text, a
    /// question) kept apart, so only the template's control tokens are control tokens.
    Completion(Vec<Segment>),
}

#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub prompt: Prompt,
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends before the first of these strings (which is not part of the text).
    pub stop: Vec<String>,
    /// Images shown to the model with the last user turn (vision models only).
    pub images: Vec<ImageInput>,
}

/// An encoded image (PNG, JPEG, TIFF, WebP) and its media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInput {
    pub bytes: Vec<u8>,
    pub mime: String,
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// The model ended its turn (`<end_of_turn>` or EOS).
    Stop,
    /// `max_tokens` were generated.
    Length,
    /// The receiver of the stream went away.
    Cancelled,
}

/// A finished generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens whose keys and values were already cached (a conversation's shared
    /// prefix) and were not prefilled again; 0 when the backend does not say.
    pub cached_tokens: usize,
    /// Loading the model first (a lazily opened local model's first generation); else 0.
    pub load_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    pub finish: Finish,
}

/// Takes and drops every piece of a stream, for callers that want only the finished generation
/// (a dropped receiver would cancel it). Await the handle after the generation to finish.
pub fn drain(mut rx: mpsc::Receiver<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while rx.recv().await.is_some() {} })
}

pub trait Generator: Send + Sync {
    /// The model's name as reported in answers.
    fn model_name(&self) -> &str;

    /// Whether the model follows chat instructions (an instruction-tuned model), as its
    /// metadata says; a base model is prompted completion-style instead.
    fn instruction_tuned(&self) -> bool;

    /// Whether the model can be shown images (a vision tower, or a server said to have one).
    fn sees_images(&self) -> bool;

    /// Generates, sending text pieces to `sink` as they are produced. Dropping the receiver
    /// cancels the generation (it then ends with `Finish::Cancelled`).
    fn generate(
        &self,
        req: GenerationRequest,
        sink: mpsc::Sender<String>,
    ) -> BoxFuture<'_, Result<Generation, LlmError>>;
}
