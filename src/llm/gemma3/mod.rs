//! Gemma 3 (and MedGemma 1.5's language model) in candle: one model, two weight formats.

pub mod config;
mod decode_attention;
pub mod embedding;
mod exact_attention;
mod kv;
pub mod linear;
pub mod metadata;
pub mod model;
pub mod numerics;
pub mod preprocess;
mod rope;
pub mod vision;
pub mod weights;

pub use config::{LayerKind, TextConfig};
pub use model::{Gemma3, ImageSpan};
pub use numerics::Numerics;
pub use vision::{VisionConfig, VisionTower};

use std::path::Path;

use candle_core::Device;

use super::LlmError;

/// Loads a model from a GGUF file or an HF safetensors directory, computing in f32.
pub fn load(path: &Path, device: &Device) -> Result<Gemma3, LlmError> {
    load_with(path, device, Numerics::F32)
}

/// As `load`, choosing the arithmetic: `Numerics::Ggml` (GGUF files only) reproduces
/// llama.cpp's CPU results to the bit, for comparisons with it; it is several times slower.
pub fn load_with(path: &Path, device: &Device, numerics: Numerics) -> Result<Gemma3, LlmError> {
    if path.is_dir() {
        if numerics == Numerics::Ggml {
            return Err(LlmError::Config("llama.cpp numerics apply to GGUF models only".into()));
        }
        let (cfg, w) = weights::load_safetensors(path, device)?;
        let model = Gemma3::new(cfg, w, device.clone())?;
        Ok(match weights::load_vision(path, device)? {
            Some(v) => model.with_vision(v),
            None => model,
        })
    } else {
        let (cfg, w) = weights::load_gguf(path, device, numerics)?;
        Gemma3::new(cfg, w, device.clone())
    }
}

/// Whether the HF checkpoint directory `dir` has a vision tower (its `config.json` says so),
/// without loading it. GGUF files never do here: their vision tower ships separately.
pub fn has_vision(dir: &Path) -> Result<bool, LlmError> {
    let config = dir.join("config.json");
    let json = std::fs::read_to_string(&config).map_err(|e| LlmError::Io(config, e))?;
    Ok(VisionConfig::from_hf_json(&json)?.is_some())
}
