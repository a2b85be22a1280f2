//! Gemma 3 text configuration, read from HF `config.json` (the current `layer_types` +
//! `rope_parameters` form and the legacy `rope_theta`/`rope_local_base_freq`/`rope_scaling` form,
//! plain or nested under `text_config` in multimodal checkpoints) or from GGUF metadata, and
//! resolved into one shape the model code uses. Field names follow the reference.

use serde::Deserialize;
use serde_json::Value as Json;

use super::super::LlmError;

/// Global (full) or local (sliding-window) attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    Global,
    Sliding,
}

/// Rotary embedding of one layer kind: `inv_freq = 1 / theta^(2i/d) / factor`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f64,
    /// Linear scaling factor (1 when unscaled).
    pub factor: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub query_pre_attn_scalar: f64,
    pub sliding_window: usize,
    pub rms_norm_eps: f64,
    pub layers: Vec<LayerKind>,
    pub rope_global: Rope,
    pub rope_local: Rope,
    pub final_logit_softcapping: Option<f64>,
    pub tie_word_embeddings: bool,
    pub max_position_embeddings: usize,
}

#[derive(Deserialize)]
struct RawText {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: usize,
    head_dim: usize,
    query_pre_attn_scalar: Option<f64>,
    sliding_window: usize,
    rms_norm_eps: f64,
    layer_types: Option<Vec<String>>,
    sliding_window_pattern: Option<usize>,
    rope_parameters: Option<Json>,
    rope_theta: Option<f64>,
    rope_local_base_freq: Option<f64>,
    rope_scaling: Option<Json>,
    final_logit_softcapping: Option<f64>,
    tie_word_embeddings: Option<bool>,
    max_position_embeddings: Option<usize>,
    hidden_activation: Option<String>,
    use_bidirectional_attention: Option<bool>,
}

impl TextConfig {
    /// Parses a `config.json` of `Gemma3ForCausalLM` or `Gemma3ForConditionalGeneration`.
    pub fn from_hf_json(json: &str) -> Result<Self, LlmError> {
        let v: Json = serde_json::from_str(json).map_err(|e| LlmError::Config(e.to_string()))?;
        let text = v.get("text_config").cloned().unwrap_or(v);
        let raw: RawText = serde_json::from_value(text).map_err(|e| LlmError::Config(e.to_string()))?;
        raw.resolve()
    }
}

fn rope_factor(scaling: Option<&Json>) -> Result<f64, LlmError> {
    let Some(s) = scaling.filter(|s| !s.is_null()) else {
        return Ok(1.0);
    };
    let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Json::as_str).unwrap_or("default");
    match kind {
        "default" => Ok(1.0),
        "linear" => s
            .get("factor")
            .and_then(Json::as_f64)
            .ok_or_else(|| LlmError::Config("linear rope scaling without factor".into())),
        other => Err(LlmError::Config(format!("unsupported rope scaling {other:?}"))),
    }
}

impl RawText {
    fn resolve(self) -> Result<TextConfig, LlmError> {
        if self.use_bidirectional_attention == Some(true) {
            return Err(LlmError::Config("bidirectional Gemma 3 (EmbeddingGemma) is not a generator".into()));
        }
        if let Some(act) = self.hidden_activation.as_deref().filter(|a| *a != "gelu_pytorch_tanh") {
            return Err(LlmError::Config(format!("unsupported activation {act:?}")));
        }
        let layers = match &self.layer_types {
            Some(types) => types
                .iter()
                .map(|t| match t.as_str() {
                    "full_attention" => Ok(LayerKind::Global),
                    "sliding_attention" => Ok(LayerKind::Sliding),
                    other => Err(LlmError::Config(format!("unknown layer type {other:?}"))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => pattern(self.num_hidden_layers, self.sliding_window_pattern.unwrap_or(6)),
        };
        if layers.len() != self.num_hidden_layers {
            return Err(LlmError::Config("layer_types does not list every layer".into()));
        }
        let (rope_global, rope_local) = match &self.rope_parameters {
            Some(p) => {
                let get = |k: &str| p.get(k);
                let theta = |r: Option<&Json>, d: f64| {
                    r.and_then(|r| r.get("rope_theta")).and_then(Json::as_f64).unwrap_or(d)
                };
                (
                    Rope {
                        theta: theta(get("full_attention"), 1e6),
                        factor: rope_factor(get("full_attention"))?,
                    },
                    Rope {
                        theta: theta(get("sliding_attention"), 1e4),
                        factor: rope_factor(get("sliding_attention"))?,
                    },
                )
            }
            None => (
                // The legacy `rope_scaling` applies to global layers only.
                Rope {
                    theta: self.rope_theta.unwrap_or(1e6),
                    factor: rope_factor(self.rope_scaling.as_ref())?,
                },
                Rope { theta: self.rope_local_base_freq.unwrap_or(1e4), factor: 1.0 },
            ),
        };
        Ok(TextConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            query_pre_attn_scalar: self.query_pre_attn_scalar.unwrap_or(self.head_dim as f64),
            sliding_window: self.sliding_window,
            rms_norm_eps: self.rms_norm_eps,
            layers,
            rope_global,
            rope_local,
            final_logit_softcapping: self.final_logit_softcapping,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(true),
            max_position_embeddings: self.max_position_embeddings.unwrap_or(131_072),
        })
    }
}

/// Gemma 3's default layout: every `pattern`-th layer is global.
pub fn pattern(layers: usize, pattern: usize) -> Vec<LayerKind> {
    (0..layers)
        .map(|i| if (i + 1) % pattern.max(1) == 0 { LayerKind::Global } else { LayerKind::Sliding })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_config_forms_resolve_alike() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gemma3/text_local_global");
        let new = TextConfig::from_hf_json(&std::fs::read_to_string(format!("{dir}/config.json")).unwrap())
            .unwrap();
        let legacy =
            TextConfig::from_hf_json(&std::fs::read_to_string(format!("{dir}/config_legacy.json")).unwrap())
                .unwrap();
        assert_eq!(new, legacy);
        assert_eq!(new.layers.iter().filter(|l| **l == LayerKind::Global).count(), 1);
        assert_eq!(new.rope_global, Rope { theta: 1e6, factor: 8.0 });
        assert_eq!(new.rope_local, Rope { theta: 1e4, factor: 1.0 });
    }

    #[test]
    fn medgemma_shaped_legacy_config() {
        let json = r#"{"architectures":["Gemma3ForConditionalGeneration"],"text_config":{
            "vocab_size":262208,"hidden_size":2560,"intermediate_size":10240,"num_hidden_layers":34,
            "num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,"query_pre_attn_scalar":256,
            "sliding_window":1024,"rms_norm_eps":1e-6,"rope_theta":1000000.0,"rope_local_base_freq":10000.0,
            "rope_scaling":{"rope_type":"linear","factor":8.0},"sliding_window_pattern":6}}"#;
        let c = TextConfig::from_hf_json(json).unwrap();
        assert_eq!(c.layers.iter().filter(|l| **l == LayerKind::Global).count(), 5);
        assert_eq!(c.layers[5], LayerKind::Global);
        assert_eq!(c.rope_global.factor, 8.0);
        assert_eq!(c.rope_local.factor, 1.0);
    }
}
