//! Gemma 3 (and MedGemma 1.5's language model) in candle: one model, two weight formats.

pub mod config;
pub mod metadata;
pub mod model;
pub mod weights;

pub use config::{LayerKind, TextConfig};
pub use model::{Gemma3, Numerics};

use std::path::Path;

use candle_core::Device;

use super::LlmError;

/// Loads a model from a GGUF file or an HF safetensors directory.
pub fn load(path: &Path, device: &Device) -> Result<Gemma3, LlmError> {
    if path.is_dir() {
        let (cfg, w) = weights::load_safetensors(path, device)?;
        Gemma3::new(cfg, w, device.clone())
    } else {
        let (cfg, w) = weights::load_gguf(path, device)?;
        let mut m = Gemma3::new(cfg, w, device.clone())?;
        m.set_numerics(Numerics::Ggml);
        Ok(m)
    }
}
