//! `ehrqa generate --model PATH [--tokenizer PATH] [--max-tokens N] [--raw] "prompt"`
//! (or `--llm-url URL --llm-model NAME` for a remote OpenAI-compatible server): streams only the
//! generated text to stdout.

use std::io::Write;

use tokio::sync::mpsc;

use super::model::ModelArgs;
use crate::llm::chat::Message;
use crate::llm::sampling::Sampling;
use crate::llm::{GenerationRequest, ImageInput, Prompt};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// Tokenize the prompt as is (with BOS), without the chat template.
    #[arg(long)]
    pub raw: bool,
    /// 0 for greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images to show the model (PNG, JPEG, TIFF, WebP; vision models only; repeatable).
    #[arg(long = "image")]
    pub images: Vec<std::path::PathBuf>,
    pub prompt: String,
}

pub async fn run(settings: Settings, args: Args) -> anyhow::Result<bool> {
    if args.raw && !args.images.is_empty() && args.model.llm_url.is_some() {
        anyhow::bail!(
            "--image needs the chat prompt with --llm-url (the completions endpoint takes no images)"
        );
    }
    let images = args.images.iter().map(|p| read_image(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let generator = args.model.load(&settings)?;
    let prompt =
        if args.raw { Prompt::Raw(args.prompt) } else { Prompt::Chat(vec![Message::user(args.prompt)]) };
    let req = GenerationRequest {
        prompt,
        max_tokens: args.max_tokens,
        sampling: Sampling { temperature: args.temperature, top_p: args.top_p, seed: args.seed },
        stop: Vec::new(),
        images,
    };
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let printer = tokio::spawn(async move {
        let mut out = std::io::stdout();
        while let Some(piece) = rx.recv().await {
            let _ = out.write_all(piece.as_bytes());
            let _ = out.flush();
        }
    });
    let generation = generator.generate(req, tx).await?;
    printer.await?;
    println!();
    eprintln!(
        "[{} prompt tokens, {} generated; prefill {:.0} ms ({:.1} tok/s), decode {:.0} ms ({:.1} tok/s); {:?}]",
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.prefill_ms,
        generation.prompt_tokens as f64 / (generation.prefill_ms / 1000.0).max(1e-9),
        generation.decode_ms,
        generation.completion_tokens as f64 / (generation.decode_ms / 1000.0).max(1e-9),
        generation.finish
    );
    Ok(true)
}

/// An image file and its media type (by content: PNG, JPEG, TIFF, WebP).
fn read_image(path: &std::path::Path) -> anyhow::Result<ImageInput> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mime = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Png) => "image/png",
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::Tiff) => "image/tiff",
        Ok(image::ImageFormat::WebP) => "image/webp",
        _ => anyhow::bail!("{}: not a PNG, JPEG, TIFF or WebP image", path.display()),
    };
    Ok(ImageInput { bytes, mime: mime.to_owned() })
}
