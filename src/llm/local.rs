//! The local engine: Gemma 3 in candle on its own thread, fed jobs through a channel, so a
//! generation never blocks an async executor and one model serves requests one at a time.
//! The thread keeps the cache between jobs: a prompt that starts with what the cache holds (a
//! conversation's follow-up: the previous prompt and answer, then a new turn) prefills only the
//! rest (`Gemma3::reuse`), and `Generation::cached_tokens` says how much was kept.

use std::path::Path;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use candle_core::Device;
use tokio::sync::{mpsc, oneshot};

use super::chat;
use super::gemma3::{self, preprocess, Gemma3, ImageSpan};
use super::generator::{BoxFuture, Finish, Generation, GenerationRequest, Generator};
use super::sampling::Sampler;
use super::stop::StopMatcher;
use super::{LlmError, Tokenizer};

struct Job {
    req: GenerationRequest,
    sink: mpsc::Sender<String>,
    done: oneshot::Sender<Result<Generation, LlmError>>,
    span: tracing::Span,
}

pub struct LocalGenerator {
    name: String,
    instruction_tuned: bool,
    sees_images: bool,
    jobs: std_mpsc::Sender<Job>,
}

impl LocalGenerator {
    /// Loads the model (GGUF file or safetensors directory) and its tokenizer, and starts the
    /// model thread.
    pub fn load(model: &Path, tokenizer: &Path, device: Device) -> Result<Self, LlmError> {
        Self::load_with(model, tokenizer, device, gemma3::Numerics::F32)
    }

    /// As `load`, choosing the arithmetic (`Numerics::Ggml`: llama.cpp's results, GGUF only).
    pub fn load_with(
        model: &Path,
        tokenizer: &Path,
        device: Device,
        numerics: gemma3::Numerics,
    ) -> Result<Self, LlmError> {
        // The checkpoint's self-description is read beside the load, not after it.
        let (loaded, instruction_tuned) = std::thread::scope(|s| {
            let it = s.spawn(|| gemma3::metadata::instruction_tuned(model));
            (load_parts(model, tokenizer, &device, numerics), it.join().expect("metadata thread panicked"))
        });
        let (net, tok) = loaded?;
        let sees_images = net.vision().is_some();
        Self::start(model, instruction_tuned, sees_images, move |jobs| serve(net, tok, jobs))
    }

    /// As `load_with`, but the weights and the tokenizer are loaded on the model thread when the
    /// first generation asks for them: a command that may answer without the model (a computed
    /// answer) never pays for loading it. Only what the answer pipeline asks before generating
    /// (is the model instruction-tuned, does it see images) is read now; a failure to load is
    /// every generation's answer.
    pub fn open_with(
        model: &Path,
        tokenizer: &Path,
        device: Device,
        numerics: gemma3::Numerics,
    ) -> Result<Self, LlmError> {
        for p in [model, tokenizer] {
            std::fs::metadata(p).map_err(|e| LlmError::Io(p.to_owned(), e))?;
        }
        let instruction_tuned = gemma3::metadata::instruction_tuned(model);
        let sees_images = model.is_dir() && gemma3::has_vision(model)?;
        let (model_path, tokenizer) = (model.to_owned(), tokenizer.to_owned());
        Self::start(model, instruction_tuned, sees_images, move |jobs| {
            serve_when_asked(|| load_parts(&model_path, &tokenizer, &device, numerics), jobs)
        })
    }

    fn start(
        model: &Path,
        instruction_tuned: bool,
        sees_images: bool,
        thread: impl FnOnce(std_mpsc::Receiver<Job>) + Send + 'static,
    ) -> Result<Self, LlmError> {
        let name =
            model.file_name().map_or_else(|| "gemma3".to_owned(), |n| n.to_string_lossy().into_owned());
        let (jobs, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ehrqa-model".into())
            .spawn(move || thread(rx))
            .map_err(|e| LlmError::Io(model.to_owned(), e))?;
        Ok(Self { name, instruction_tuned, sees_images, jobs })
    }
}

/// The weights and the tokenizer, the tokenizer loading on a second thread while the weights
/// are read.
fn load_parts(
    model: &Path,
    tokenizer: &Path,
    device: &Device,
    numerics: gemma3::Numerics,
) -> Result<(Gemma3, Tokenizer), LlmError> {
    let started = Instant::now();
    let (tok, net) = std::thread::scope(|s| {
        let tok = s.spawn(|| Tokenizer::from_file(tokenizer));
        let net = gemma3::load_with(model, device, numerics);
        (tok.join().expect("tokenizer thread panicked"), net)
    });
    let (tok, net) = (tok?, net?);
    tracing::info!(ms = started.elapsed().as_millis() as u64, "model loaded");
    Ok((net, tok))
}

impl Generator for LocalGenerator {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn instruction_tuned(&self) -> bool {
        self.instruction_tuned
    }

    fn sees_images(&self) -> bool {
        self.sees_images
    }

    fn generate(
        &self,
        req: GenerationRequest,
        sink: mpsc::Sender<String>,
    ) -> BoxFuture<'_, Result<Generation, LlmError>> {
        Box::pin(async move {
            let (done, result) = oneshot::channel();
            let job = Job { req, sink, done, span: tracing::Span::current() };
            self.jobs.send(job).map_err(|_| LlmError::ModelThread)?;
            result.await.map_err(|_| LlmError::ModelThread)?
        })
    }
}

fn serve(mut net: Gemma3, tok: Tokenizer, jobs: std_mpsc::Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        answer(&mut net, &tok, job, 0.0);
    }
}

/// Runs one job; `load_ms` is the loading it waited for.
fn answer(net: &mut Gemma3, tok: &Tokenizer, job: Job, load_ms: f64) {
    let _enter = job.span.enter();
    let result = run(net, tok, &job.req, &job.sink).map(|g| Generation { load_ms, ..g });
    if result.is_err() {
        net.reset();
    }
    let _ = job.done.send(result);
}

/// Waits for the first job, loads, then serves; if loading fails, every job is told why.
fn serve_when_asked(
    load: impl FnOnce() -> Result<(Gemma3, Tokenizer), LlmError>,
    jobs: std_mpsc::Receiver<Job>,
) {
    let Ok(first) = jobs.recv() else { return };
    let started = Instant::now();
    let loaded = {
        let _enter = first.span.enter();
        load()
    };
    match loaded {
        Ok((mut net, tok)) => {
            answer(&mut net, &tok, first, started.elapsed().as_secs_f64() * 1000.0);
            serve(net, tok, jobs);
        }
        Err(e) => {
            let why = e.to_string();
            let _ = first.done.send(Err(e));
            while let Ok(job) = jobs.recv() {
                let _ = job.done.send(Err(LlmError::Config(format!("the model did not load: {why}"))));
            }
        }
    }
}

/// Token ids that end the model's turn.
fn stop_ids(tok: &Tokenizer) -> Vec<u32> {
    ["<end_of_turn>", "<eos>"].iter().filter_map(|t| tok.token_id(t)).collect()
}

fn run(
    net: &mut Gemma3,
    tok: &Tokenizer,
    req: &GenerationRequest,
    sink: &mpsc::Sender<String>,
) -> Result<Generation, LlmError> {
    let (ids, images) = prompt_ids(net, tok, req)?;
    // What the cache already holds of this prompt (the previous turns of a conversation) is
    // kept; a prompt with images starts afresh.
    let cached = if images.is_empty() {
        net.reuse(&ids)
    } else {
        net.reset();
        0
    };
    let started = Instant::now();
    let mut logits = net.forward_with_images(&ids[cached..], &images, false)?.squeeze(0)?.to_vec1::<f32>()?;
    let prefill_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let stops = stop_ids(tok);
    let mut sampler = Sampler::new(req.sampling);
    let mut out: Vec<u32> = Vec::new();
    let mut stream = TextStream::default();
    let mut text = StopMatcher::new(&req.stop);
    let mut finish = Finish::Length;
    while out.len() < req.max_tokens {
        let next = sampler.sample(&logits);
        if stops.contains(&next) {
            finish = Finish::Stop;
            break;
        }
        out.push(next);
        if let Some(piece) = stream.push(tok, &out)? {
            let shown = text.push(&piece);
            if !shown.is_empty() && sink.blocking_send(shown).is_err() {
                finish = Finish::Cancelled;
                break;
            }
            if text.stopped() {
                finish = Finish::Stop;
                break;
            }
        }
        if out.len() < req.max_tokens {
            logits = net.forward(&[next], false)?.squeeze(0)?.to_vec1::<f32>()?;
        }
    }
    let rest = text.finish();
    if !rest.is_empty() && finish != Finish::Cancelled {
        let _ = sink.blocking_send(rest);
    }
    Ok(Generation {
        text: text.text().to_owned(),
        prompt_tokens: ids.len(),
        completion_tokens: out.len(),
        cached_tokens: cached,
        load_ms: 0.0,
        prefill_ms,
        decode_ms: started.elapsed().as_secs_f64() * 1000.0,
        finish,
    })
}

/// The prompt's token ids, and the soft tokens of its images placed where the processor puts
/// them (`<start_of_image>`, the soft tokens, `<end_of_image>`).
fn prompt_ids(
    net: &Gemma3,
    tok: &Tokenizer,
    req: &GenerationRequest,
) -> Result<(Vec<u32>, Vec<ImageSpan>), LlmError> {
    let n = req.images.len();
    let segments = chat::segments(&req.prompt, n);
    if n == 0 {
        return Ok((tok.encode_segments(&segments)?, Vec::new()));
    }
    let vision = net.vision().ok_or_else(|| {
        LlmError::Image(
            "this model has no vision tower (a GGUF's ships separately and is not supported)".into(),
        )
    })?;
    let cfg = vision.config();
    let ids = tok.encode_segments(&chat::expand_images(segments, cfg.mm_tokens_per_image))?;
    let starts: Vec<usize> = (0..ids.len())
        .filter(|&i| ids[i] == cfg.image_token_index && (i == 0 || ids[i - 1] != cfg.image_token_index))
        .collect();
    if starts.len() != n {
        return Err(LlmError::Image(format!(
            "the tokenizer does not know this model's image token {}",
            cfg.image_token_index
        )));
    }
    let mut spans = Vec::with_capacity(n);
    for (img, start) in req.images.iter().zip(starts) {
        let rgb = preprocess::decode(&img.bytes, preprocess::DecodeLimits::default())?;
        let pixels = preprocess::pixels(&rgb, cfg.image_size, net.device())?;
        spans.push(ImageSpan { start, embeds: vision.embed(&pixels)? });
    }
    Ok((ids, spans))
}

/// Turns a growing list of ids into text pieces without re-decoding everything, and without
/// cutting a character whose bytes span several tokens (byte fallback).
#[derive(Default)]
struct TextStream {
    prefix: usize,
    read: usize,
}

impl TextStream {
    fn push(&mut self, tok: &Tokenizer, ids: &[u32]) -> Result<Option<String>, LlmError> {
        let before = tok.decode(&ids[self.prefix..self.read])?;
        let now = tok.decode(&ids[self.prefix..])?;
        if now.len() > before.len() && !now.ends_with('\u{fffd}') && now.starts_with(&before) {
            let piece = now[before.len()..].to_owned();
            self.prefix = self.read;
            self.read = ids.len();
            Ok(Some(piece))
        } else {
            Ok(None)
        }
    }
}
