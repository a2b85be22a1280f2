//! Gemma 3 (and MedGemma 1.5's language model) in candle: one model, two weight formats.

pub mod config;
pub mod embedding;
mod kv;
pub mod metadata;
pub mod model;
pub mod preprocess;
pub mod vision;
pub mod weights;

pub use config::{LayerKind, TextConfig};
pub use model::{Gemma3, ImageSpan, Numerics};
pub use vision::{VisionConfig, VisionTower};

use std::path::Path;

use candle_core::Device;

use super::LlmError;

/// Loads a model from a GGUF file or an HF safetensors directory.
pub fn load(path: &Path, device: &Device) -> Result<Gemma3, LlmError> {
    if path.is_dir() {
        let (cfg, w) = weights::load_safetensors(path, device)?;
        let model = Gemma3::new(cfg, w, device.clone())?;
        Ok(match weights::load_vision(path, device)? {
            Some(v) => model.with_vision(v),
            None => model,
        })
    } else {
        let (cfg, w) = weights::load_gguf(path, device)?;
        // f32 numerics by default: llama.cpp's rounding (`Numerics::Ggml`) brings the logits no
        // closer on average and costs a third of the prefill; comparisons with llama.cpp set it.
        Gemma3::new(cfg, w, device.clone())
    }
}
