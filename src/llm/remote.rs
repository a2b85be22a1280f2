//! The remote backend: any OpenAI-compatible server (vLLM, TGI, llama.cpp's server, Ollama)
//! through `/v1/chat/completions` (or `/v1/completions` for raw prompts), streamed as
//! Server-Sent Events, with a bearer key, timeouts, and retries before the first token.
//!
//! The event stream is parsed by `eventsource-stream` (UTF-8 decoded across network chunks, one
//! space after the colon stripped, as the SSE spec says); retries follow the shared
//! [`RetryPolicy`](crate::retry::RetryPolicy), as the FHIR sync client's do.

use std::fmt::Display;
use std::time::{Duration, Instant};

use eventsource_stream::{EventStream, EventStreamError};
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::generator::{BoxFuture, Finish, Generation, GenerationRequest, Generator, Prompt};
use super::segment;
use super::stop::StopMatcher;
use super::LlmError;
use crate::retry::{self, Failure, RetryPolicy};

/// How to reach the server.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Base URL, with or without the trailing `/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Longest wait for the next piece of the stream.
    pub read_timeout: Duration,
    /// Attempts before the first token (connection errors, timeouts, 429 and 5xx are retried,
    /// after the server's `Retry-After` when it sends one).
    pub attempts: u32,
    /// Whether the served model follows chat instructions (servers apply its template); a
    /// base model is prompted completion-style through `/v1/completions`.
    pub instruction_tuned: bool,
    /// Whether the served model takes images (MedGemma does; set by `--llm-vision`).
    pub vision: bool,
}

impl RemoteConfig {
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').trim_end_matches("/v1").to_owned(),
            model: model.to_owned(),
            api_key: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(300),
            attempts: 3,
            instruction_tuned: true,
            vision: false,
        }
    }
}

pub struct RemoteGenerator {
    cfg: RemoteConfig,
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl RemoteGenerator {
    pub fn new(cfg: RemoteConfig) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .redirect(crate::outgoing::same_origin_redirects())
            .build()
            .map_err(|e| LlmError::Remote(e.to_string()))?;
        let retry = RetryPolicy::default().with_attempts(cfg.attempts);
        Ok(Self { cfg, client, retry })
    }

    /// The URL and JSON body a generation sends (public so that tests can see what leaves the
    /// process). The server tokenizes the prompt, so untrusted text goes neutralised: message
    /// contents, and the untrusted segments of a completion prompt (`segment`).
    pub fn body(&self, req: &GenerationRequest) -> (String, Json) {
        let mut body = json!({
            "model": self.cfg.model,
            "max_tokens": req.max_tokens,
            "temperature": req.sampling.temperature,
            "top_p": req.sampling.top_p,
            "seed": req.sampling.seed,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if !req.stop.is_empty() {
            body["stop"] = json!(req.stop);
        }
        let path = match &req.prompt {
            Prompt::Chat(messages) => {
                let messages: Vec<Json> = messages
                    .iter()
                    .map(|m| json!({"role": m.role, "content": segment::neutralise(&m.content)}))
                    .collect();
                body["messages"] = Json::Array(messages);
                with_images(&mut body["messages"], &req.images);
                "/v1/chat/completions"
            }
            Prompt::Raw(text) => {
                // The completions endpoint takes no images: `generate` checks before sending.
                body["prompt"] = json!(text);
                "/v1/completions"
            }
            Prompt::Completion(parts) => {
                body["prompt"] = json!(segment::to_text(parts));
                "/v1/completions"
            }
        };
        (format!("{}{path}", self.cfg.base_url), body)
    }

    /// Sends the request, retrying what is worth retrying. Only the request is retried: a stream
    /// that breaks after it began is not replayed.
    async fn send(&self, url: &str, body: &Json) -> Result<reqwest::Response, LlmError> {
        self.retry
            .run(url, || self.send_once(url, body))
            .await
            .map_err(|last| LlmError::Remote(format!("{url}: {last}")))
    }

    /// One attempt; a refusal keeps the start of the server's explanation.
    async fn send_once(&self, url: &str, body: &Json) -> Result<reqwest::Response, Failure<String>> {
        let mut rb = self.client.post(url).json(body);
        if let Some(key) = &self.cfg.api_key {
            rb = rb.bearer_auth(key);
        }
        let r = rb.send().await.map_err(|e| Failure::new(e.to_string(), retry::error_verdict(&e)))?;
        let status = r.status();
        if status.is_success() {
            return Ok(r);
        }
        let verdict = retry::status_verdict(status, r.headers());
        let text: String = r.text().await.unwrap_or_default().chars().take(300).collect();
        Err(Failure::new(format!("{status}: {}", text.trim()), verdict))
    }
}

impl Generator for RemoteGenerator {
    fn model_name(&self) -> &str {
        &self.cfg.model
    }

    fn instruction_tuned(&self) -> bool {
        self.cfg.instruction_tuned
    }

    fn sees_images(&self) -> bool {
        self.cfg.vision
    }

    fn generate(
        &self,
        req: GenerationRequest,
        sink: mpsc::Sender<String>,
    ) -> BoxFuture<'_, Result<Generation, LlmError>> {
        Box::pin(async move {
            let started = Instant::now();
            let (url, body) = self.body(&req);
            let resp = self.send(&url, &body).await?;
            let mut events = std::pin::pin!(sse_data(body_chunks(resp)));
            let mut g = Generation {
                text: String::new(),
                prompt_tokens: 0,
                completion_tokens: 0,
                cached_tokens: 0,
                load_ms: 0.0,
                prefill_ms: 0.0,
                decode_ms: 0.0,
                finish: Finish::Length,
            };
            let mut first: Option<Instant> = None;
            let mut pieces = 0;
            // Servers honour `stop`, but not all of them the same way: cut here as well.
            let mut text = StopMatcher::new(&req.stop);
            while let Some(data) = events.next().await.transpose()? {
                if data.trim() == "[DONE]" {
                    break;
                }
                let event = read_event(&data)?;
                read_usage(&event, &mut g);
                let choice = &event["choices"][0];
                let piece =
                    choice["delta"]["content"].as_str().or_else(|| choice["text"].as_str()).unwrap_or("");
                if !piece.is_empty() {
                    first.get_or_insert_with(Instant::now);
                    pieces += 1;
                    let shown = text.push(piece);
                    if !shown.is_empty() && sink.send(shown).await.is_err() {
                        g.finish = Finish::Cancelled;
                        break;
                    }
                    if text.stopped() {
                        g.finish = Finish::Stop;
                        break;
                    }
                }
                match choice["finish_reason"].as_str() {
                    Some("stop") => g.finish = Finish::Stop,
                    Some("length") => g.finish = Finish::Length,
                    _ => {}
                }
            }
            let rest = text.finish();
            if !rest.is_empty() && g.finish != Finish::Cancelled {
                let _ = sink.send(rest).await;
            }
            g.text = text.text().to_owned();
            if g.completion_tokens == 0 {
                g.completion_tokens = pieces;
            }
            let first = first.unwrap_or_else(Instant::now);
            g.prefill_ms = (first - started).as_secs_f64() * 1000.0;
            g.decode_ms = first.elapsed().as_secs_f64() * 1000.0;
            Ok(g)
        })
    }
}

/// Images go into the last user message as `image_url` parts with base64 data URLs, before the
/// text (as vLLM, llama.cpp's server and Ollama take them).
fn with_images(messages: &mut Json, images: &[super::ImageInput]) {
    use base64::Engine;
    if images.is_empty() {
        return;
    }
    let Some(last) = messages.as_array_mut().and_then(|m| m.iter_mut().rev().find(|m| m["role"] == "user"))
    else {
        return;
    };
    let mut parts: Vec<Json> = images
        .iter()
        .map(|i| {
            let data = base64::engine::general_purpose::STANDARD.encode(&i.bytes);
            json!({"type": "image_url", "image_url": {"url": format!("data:{};base64,{data}", i.mime)}})
        })
        .collect();
    parts.push(json!({"type": "text", "text": last["content"].clone()}));
    last["content"] = Json::Array(parts);
}

fn read_usage(event: &Json, g: &mut Generation) {
    if let Some(u) = event.get("usage").filter(|u| u.is_object()) {
        g.prompt_tokens = u["prompt_tokens"].as_u64().unwrap_or(0) as usize;
        g.completion_tokens = u["completion_tokens"].as_u64().unwrap_or(0) as usize;
    }
}

/// One event's JSON; a server's error event ends the generation with its message.
fn read_event(data: &str) -> Result<Json, LlmError> {
    let event: Json = serde_json::from_str(data)
        .map_err(|e| LlmError::Remote(format!("unreadable stream event ({e}): {data:.120}")))?;
    match event.get("error") {
        Some(err) => Err(LlmError::Remote(err.to_string())),
        None => Ok(event),
    }
}

/// A response body as the stream of its network chunks.
fn body_chunks(
    resp: reqwest::Response,
) -> impl Stream<Item = Result<impl AsRef<[u8]>, reqwest::Error>> + Send {
    futures_util::stream::try_unfold(resp, |mut r| async move { Ok(r.chunk().await?.map(|b| (b, r))) })
}

/// The `data` of each Server-Sent Event in a byte stream. `eventsource-stream` keeps a character
/// split across chunks whole and strips exactly one space after `data:` (a second one belongs to
/// the value); comments and events without data are skipped.
fn sse_data<S, B, E>(bytes: S) -> impl Stream<Item = Result<String, LlmError>>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Display,
{
    EventStream::new(bytes).map(|event| match event {
        Ok(event) => Ok(event.data),
        Err(EventStreamError::Transport(e)) => Err(LlmError::Remote(e.to_string())),
        Err(e) => Err(LlmError::Remote(format!("unreadable event stream: {e}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_travel_as_data_urls_before_the_text() {
        use crate::llm::chat::Message;
        let g = RemoteGenerator::new(RemoteConfig::new("http://127.0.0.1:1", "m")).unwrap();
        let req = crate::llm::GenerationRequest {
            prompt: Prompt::Chat(vec![Message::system("S"), Message::user("What does the report say?")]),
            max_tokens: 8,
            sampling: Default::default(),
            stop: Vec::new(),
            images: vec![crate::llm::ImageInput { bytes: vec![1, 2, 3], mime: "image/png".into() }],
        };
        let (url, body) = g.body(&req);
        assert!(url.ends_with("/v1/chat/completions"));
        let content = &body["messages"][1]["content"];
        assert_eq!(content[0]["image_url"]["url"], "data:image/png;base64,AQID");
        assert_eq!(content[1]["text"], "What does the report say?");
        assert_eq!(body["messages"][0]["content"], "S");
    }

    /// The data payloads of a stream delivered in these chunks.
    fn data_of(chunks: &[&[u8]]) -> Vec<String> {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = chunks.iter().map(|c| Ok(c.to_vec())).collect();
        // Every chunk is ready at once, so the stream never waits.
        let events = sse_data(futures_util::stream::iter(chunks)).collect::<Vec<_>>();
        futures_util::FutureExt::now_or_never(events).unwrap().into_iter().map(|d| d.unwrap()).collect()
    }

    #[test]
    fn splits_server_sent_events_across_chunks() {
        assert_eq!(
            data_of(&[b"data: {\"a\":", b"1}\n\ndata: [DONE]\r\n\r\n: comment\n\n"]),
            vec!["{\"a\":1}".to_owned(), "[DONE]".to_owned()]
        );
        assert_eq!(RemoteConfig::new("http://127.0.0.1:8080/v1/", "m").base_url, "http://127.0.0.1:8080");
    }

    #[test]
    fn keeps_characters_split_across_chunks_and_all_but_one_leading_space() {
        // "é" is C3 A9 and "≥" E2 89 A5: each arrives in two chunks.
        let got = data_of(&[
            b"data: caf\xC3",
            b"\xA9 \xE2\x89",
            b"\xA5 1\n",
            b"data:  two\n\n",
            b"data:x\r",
            b"\n\r\n",
        ]);
        assert_eq!(got, vec!["café ≥ 1\n two".to_owned(), "x".to_owned()]);
    }
}
