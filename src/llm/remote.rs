//! The remote backend: any OpenAI-compatible server (vLLM, TGI, llama.cpp's server, Ollama)
//! through `/v1/chat/completions` (or `/v1/completions` for raw prompts), streamed as
//! Server-Sent Events, with a bearer key, timeouts, and retries before the first token.

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use tokio::sync::mpsc;

use super::generator::{BoxFuture, Finish, Generation, GenerationRequest, Generator, Prompt};
use super::stop::StopMatcher;
use super::LlmError;

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
    /// Attempts before the first token (connection errors, 429 and 5xx are retried).
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
}

impl RemoteGenerator {
    pub fn new(cfg: RemoteConfig) -> Result<Self, LlmError> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .build()
            .map_err(|e| LlmError::Remote(e.to_string()))?;
        Ok(Self { cfg, client })
    }

    fn body(&self, req: &GenerationRequest) -> (String, Json) {
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
                body["messages"] = serde_json::to_value(messages).expect("messages serialise");
                with_images(&mut body["messages"], &req.images);
                "/v1/chat/completions"
            }
            Prompt::Raw(text) => {
                // The completions endpoint takes no images: `generate` checks before sending.
                body["prompt"] = json!(text);
                "/v1/completions"
            }
        };
        (format!("{}{path}", self.cfg.base_url), body)
    }

    /// Sends the request, retrying what is worth retrying.
    async fn send(&self, url: &str, body: &Json) -> Result<reqwest::Response, LlmError> {
        let mut last = String::new();
        for attempt in 0..self.cfg.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << (attempt - 1))).await;
            }
            let mut rb = self.client.post(url).json(body);
            if let Some(key) = &self.cfg.api_key {
                rb = rb.bearer_auth(key);
            }
            match rb.send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => {
                    let status = r.status();
                    let text: String = r.text().await.unwrap_or_default().chars().take(300).collect();
                    last = format!("{status}: {}", text.trim());
                    if !(status.as_u16() == 429 || status.is_server_error()) {
                        break;
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tracing::debug!(attempt, "model server request failed: {last}");
        }
        Err(LlmError::Remote(format!("{url}: {last}")))
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
            let mut resp = self.send(&url, &body).await?;
            let mut events = SseBuffer::default();
            let mut g = Generation {
                text: String::new(),
                prompt_tokens: 0,
                completion_tokens: 0,
                prefill_ms: 0.0,
                decode_ms: 0.0,
                finish: Finish::Length,
            };
            let mut first: Option<Instant> = None;
            let mut pieces = 0;
            // Servers honour `stop`, but not all of them the same way: cut here as well.
            let mut text = StopMatcher::new(&req.stop);
            'stream: while let Some(bytes) =
                resp.chunk().await.map_err(|e| LlmError::Remote(e.to_string()))?
            {
                for data in events.push(&bytes) {
                    if data == "[DONE]" {
                        break 'stream;
                    }
                    let event: Json = serde_json::from_str(&data).map_err(|e| {
                        LlmError::Remote(format!("unreadable stream event ({e}): {data:.120}"))
                    })?;
                    if let Some(err) = event.get("error") {
                        return Err(LlmError::Remote(err.to_string()));
                    }
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
                            break 'stream;
                        }
                        if text.stopped() {
                            g.finish = Finish::Stop;
                            break 'stream;
                        }
                    }
                    match choice["finish_reason"].as_str() {
                        Some("stop") => g.finish = Finish::Stop,
                        Some("length") => g.finish = Finish::Length,
                        _ => {}
                    }
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

/// Splits a byte stream into SSE `data:` payloads.
#[derive(Default)]
struct SseBuffer {
    buf: String,
}

impl SseBuffer {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.push_str(&String::from_utf8_lossy(bytes));
        // Normalised once per chunk, over the whole buffer, so a CRLF split across chunks joins.
        self.buf = self.buf.replace("\r\n", "\n");
        let mut out = Vec::new();
        while let Some(end) = self.buf.find("\n\n") {
            let event: String = self.buf.drain(..end + 2).collect();
            let data: Vec<&str> =
                event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
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

    #[test]
    fn splits_server_sent_events_across_chunks() {
        let mut b = SseBuffer::default();
        assert!(b.push(b"data: {\"a\":").is_empty());
        assert_eq!(
            b.push(b"1}\n\ndata: [DONE]\r\n\r\n: comment\n\n"),
            vec!["{\"a\":1}".to_owned(), "[DONE]".to_owned()]
        );
        assert_eq!(RemoteConfig::new("http://127.0.0.1:8080/v1/", "m").base_url, "http://127.0.0.1:8080");
    }
}
