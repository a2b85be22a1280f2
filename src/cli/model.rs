//! Model options shared by the commands that generate: a local model file, or a remote server.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::bail;

use crate::llm::{Generator, LocalGenerator};
use crate::settings::Settings;

#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A Gemma 3 / MedGemma GGUF file or HF safetensors directory.
    #[arg(long, env = "EHRQA_MODEL")]
    pub model: Option<PathBuf>,
    /// Base URL of an OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama).
    #[arg(long, env = "EHRQA_LLM_URL", conflicts_with = "model")]
    pub llm_url: Option<String>,
    /// The model name to ask the remote server for.
    #[arg(long, env = "EHRQA_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// A file holding the remote server's bearer key (or set EHRQA_LLM_KEY).
    #[arg(long)]
    pub llm_key_file: Option<PathBuf>,
    /// The remote model takes images (MedGemma 1.5 does): lab-report images are shown to it.
    #[arg(long, env = "EHRQA_LLM_VISION")]
    pub llm_vision: bool,
    /// The local model's arithmetic: `f32` (the reference's, fast) or `llama-cpp` (llama.cpp's
    /// CPU results to the bit, for GGUF files; several times slower, for comparisons).
    #[arg(long, value_enum, default_value_t = NumericsArg::F32, conflicts_with = "llm_url")]
    pub numerics: NumericsArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NumericsArg {
    F32,
    LlamaCpp,
}

impl From<NumericsArg> for crate::llm::gemma3::Numerics {
    fn from(n: NumericsArg) -> Self {
        match n {
            NumericsArg::F32 => Self::F32,
            NumericsArg::LlamaCpp => Self::Ggml,
        }
    }
}

impl ModelArgs {
    /// The generator, a local model loaded now (a server's start-up fails on a bad model).
    pub fn load(&self, settings: &Settings) -> anyhow::Result<Arc<dyn Generator>> {
        self.generator(settings, false)
    }

    /// The generator, a local model loaded when first asked to generate: for one-shot commands
    /// whose answer may need no model (`ask`, `chat`).
    pub fn open(&self, settings: &Settings) -> anyhow::Result<Arc<dyn Generator>> {
        self.generator(settings, true)
    }

    fn generator(&self, settings: &Settings, lazily: bool) -> anyhow::Result<Arc<dyn Generator>> {
        if let Some(url) = &self.llm_url {
            return super::remote_generator(
                url,
                self.llm_model.as_deref(),
                self.llm_key_file.as_deref(),
                self.llm_vision,
            );
        }
        let Some(model) = self.model.clone().or_else(|| default_model(settings)) else {
            bail!("no model: pass --model PATH (or set EHRQA_MODEL), or --llm-url URL; scripts/setup caches the test model");
        };
        let tokenizer = crate::llm::tokenizer::locate(settings.tokenizer.as_deref(), &settings.cache_dir)?;
        let tokenizer = sibling_tokenizer(&model).unwrap_or(tokenizer);
        let device = candle_core::Device::Cpu;
        Ok(Arc::new(if lazily {
            LocalGenerator::open_with(&model, &tokenizer, device, self.numerics.into())?
        } else {
            LocalGenerator::load_with(&model, &tokenizer, device, self.numerics.into())?
        }))
    }
}

/// The test model `scripts/setup` caches.
fn default_model(settings: &Settings) -> Option<PathBuf> {
    let p = settings.cache_dir.join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    p.is_file().then_some(p)
}

/// A `tokenizer.json` next to the model (or inside a safetensors directory).
fn sibling_tokenizer(model: &std::path::Path) -> Option<PathBuf> {
    let dir = if model.is_dir() { model.to_owned() } else { model.parent()?.to_owned() };
    let p = dir.join("tokenizer.json");
    p.is_file().then_some(p)
}
