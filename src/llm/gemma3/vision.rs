//! The vision path of Gemma 3 / MedGemma 1.5: a SigLIP vision transformer (patch embedding,
//! learned positions, pre-norm encoder layers, post-layernorm) and the multimodal projector
//! (average-pool the patch grid down to `mm_tokens_per_image`, Gemma RMSNorm, linear map into the
//! text model's hidden size). One image in, `mm_tokens_per_image` soft tokens out.

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Module, Tensor, D};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::llm::LlmError;

/// `vision_config` and the image fields of a `Gemma3ForConditionalGeneration` config.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub layer_norm_eps: f64,
    pub mm_tokens_per_image: usize,
    pub image_token_index: u32,
    pub boi_token_index: u32,
    pub eoi_token_index: u32,
}

#[derive(Deserialize)]
struct RawVision {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    image_size: usize,
    patch_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
}

fn default_eps() -> f64 {
    1e-6
}

impl VisionConfig {
    /// From a multimodal `config.json`; `None` for a text-only one.
    pub fn from_hf_json(json: &str) -> Result<Option<Self>, LlmError> {
        let v: Json = serde_json::from_str(json).map_err(|e| LlmError::Config(e.to_string()))?;
        let Some(vision) = v.get("vision_config").filter(|c| !c.is_null()) else { return Ok(None) };
        let raw: RawVision =
            serde_json::from_value(vision.clone()).map_err(|e| LlmError::Config(e.to_string()))?;
        let id = |k: &str, default: u32| v.get(k).and_then(Json::as_u64).map_or(default, |x| x as u32);
        let cfg = Self {
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            image_size: raw.image_size,
            patch_size: raw.patch_size,
            layer_norm_eps: raw.layer_norm_eps,
            mm_tokens_per_image: v.get("mm_tokens_per_image").and_then(Json::as_u64).unwrap_or(256) as usize,
            // Gemma 3's tokenizer ids.
            image_token_index: id("image_token_index", 262_144),
            boi_token_index: id("boi_token_index", 255_999),
            eoi_token_index: id("eoi_token_index", 256_000),
        };
        if !cfg.image_size.is_multiple_of(cfg.patch_size)
            || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return Err(LlmError::Config("vision config: image size or heads do not divide".into()));
        }
        let side = cfg.patches_per_side();
        let tokens_side = (cfg.mm_tokens_per_image as f64).sqrt() as usize;
        if tokens_side * tokens_side != cfg.mm_tokens_per_image || !side.is_multiple_of(tokens_side) {
            return Err(LlmError::Config(
                "vision config: mm_tokens_per_image does not tile the patch grid".into(),
            ));
        }
        Ok(Some(cfg))
    }

    pub fn patches_per_side(&self) -> usize {
        self.image_size / self.patch_size
    }
}

struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor, LlmError> {
        Ok(x.matmul(&self.w.t()?)?.broadcast_add(&self.b)?)
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor, LlmError> {
        Ok(candle_nn::LayerNorm::new(self.w.clone(), self.b.clone(), self.eps).forward(x)?)
    }
}

struct EncoderLayer {
    norm1: LayerNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// The SigLIP tower and the projector.
pub struct VisionTower {
    cfg: VisionConfig,
    /// `[hidden, 3 * patch * patch]`: the patch convolution as a matrix.
    patch_w: Tensor,
    patch_b: Tensor,
    /// `[patches, hidden]`.
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    post_norm: LayerNorm,
    /// `1 + w` of the projector's RMSNorm.
    soft_emb_norm: Tensor,
    /// `[vision hidden, text hidden]`.
    projection: Tensor,
}

/// Key prefixes of the vision tower and the projector across checkpoint layouts.
const TOWER: [&str; 4] = [
    "model.vision_tower.vision_model.",
    "vision_tower.vision_model.",
    "model.vision_tower.",
    "vision_tower.",
];
const PROJECTOR: [&str; 2] = ["model.multi_modal_projector.", "multi_modal_projector."];

impl VisionTower {
    pub fn load(cfg: VisionConfig, st: &MmapedSafetensors, device: &Device) -> Result<Self, LlmError> {
        let find = |prefixes: &[&str], probe: &str| -> Result<String, LlmError> {
            prefixes
                .iter()
                .find(|p| st.get(&format!("{p}{probe}")).is_ok())
                .map(|p| p.to_string())
                .ok_or_else(|| LlmError::Weights(format!("no vision weights ({probe}) in the checkpoint")))
        };
        let tower = find(&TOWER, "embeddings.patch_embedding.weight")?;
        let proj = find(&PROJECTOR, "mm_input_projection_weight")?;
        let get =
            |name: String| -> Result<Tensor, LlmError> { Ok(st.load(&name, device)?.to_dtype(DType::F32)?) };
        let t = |n: &str| get(format!("{tower}{n}"));
        let linear = |n: &str| -> Result<Linear, LlmError> {
            Ok(Linear { w: t(&format!("{n}.weight"))?, b: t(&format!("{n}.bias"))? })
        };
        let norm = |n: &str| -> Result<LayerNorm, LlmError> {
            Ok(LayerNorm {
                w: t(&format!("{n}.weight"))?,
                b: t(&format!("{n}.bias"))?,
                eps: cfg.layer_norm_eps,
            })
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let l = |n: &str| format!("encoder.layers.{i}.{n}");
                Ok(EncoderLayer {
                    norm1: norm(&l("layer_norm1"))?,
                    q: linear(&l("self_attn.q_proj"))?,
                    k: linear(&l("self_attn.k_proj"))?,
                    v: linear(&l("self_attn.v_proj"))?,
                    out: linear(&l("self_attn.out_proj"))?,
                    norm2: norm(&l("layer_norm2"))?,
                    fc1: linear(&l("mlp.fc1"))?,
                    fc2: linear(&l("mlp.fc2"))?,
                })
            })
            .collect::<Result<Vec<_>, LlmError>>()?;
        let patch_w = t("embeddings.patch_embedding.weight")?;
        let patch_w = patch_w.reshape((cfg.hidden_size, ()))?;
        Ok(Self {
            patch_b: t("embeddings.patch_embedding.bias")?,
            positions: t("embeddings.position_embedding.weight")?,
            post_norm: norm("post_layernorm")?,
            soft_emb_norm: (get(format!("{proj}mm_soft_emb_norm.weight"))? + 1.0)?,
            projection: get(format!("{proj}mm_input_projection_weight"))?,
            patch_w,
            layers,
            cfg,
        })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.cfg
    }

    /// The tower's output `[patches, hidden]` for pixels `[3, size, size]` (already normalised).
    pub fn encode(&self, pixels: &Tensor) -> Result<Tensor, LlmError> {
        let (p, side) = (self.cfg.patch_size, self.cfg.patches_per_side());
        // [3, side*p, side*p] -> [side, side, 3, p, p] -> [patches, 3*p*p] (the conv's weight order).
        let patches = pixels
            .reshape((3, side, p, side, p))?
            .permute((1, 3, 0, 2, 4))?
            .contiguous()?
            .reshape((side * side, 3 * p * p))?;
        let mut x = patches.matmul(&self.patch_w.t()?)?.broadcast_add(&self.patch_b)?;
        x = (x + &self.positions)?;
        for l in &self.layers {
            x = (&x + self.attention(l, &l.norm1.forward(&x)?)?)?;
            let h = l.fc1.forward(&l.norm2.forward(&x)?)?.gelu()?;
            x = (&x + l.fc2.forward(&h)?)?;
        }
        self.post_norm.forward(&x)
    }

    /// Full (unmasked) multi-head attention over the patches.
    fn attention(&self, l: &EncoderLayer, x: &Tensor) -> Result<Tensor, LlmError> {
        let (n, heads) = (x.dim(0)?, self.cfg.num_attention_heads);
        let hd = self.cfg.hidden_size / heads;
        let split = |t: Tensor| -> Result<Tensor, LlmError> {
            Ok(t.reshape((n, heads, hd))?.transpose(0, 1)?.contiguous()?)
        };
        let q = split(l.q.forward(x)?)?;
        let k = split(l.k.forward(x)?)?;
        let v = split(l.v.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? * (hd as f64).powf(-0.5))?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?.transpose(0, 1)?.reshape((n, self.cfg.hidden_size))?;
        l.out.forward(&out)
    }

    /// The projector: `[patches, vision hidden]` -> `[mm_tokens_per_image, text hidden]`.
    pub fn project(&self, hidden: &Tensor) -> Result<Tensor, LlmError> {
        let side = self.cfg.patches_per_side();
        let tokens_side = (self.cfg.mm_tokens_per_image as f64).sqrt() as usize;
        let k = side / tokens_side;
        let d = self.cfg.hidden_size;
        // [side*side, d] -> [d, side, side] -> average over k x k windows -> [tokens, d].
        let grid = hidden.t()?.reshape((d, tokens_side, k, tokens_side, k))?;
        let pooled =
            grid.mean(D::Minus1)?.mean(2)?.reshape((d, tokens_side * tokens_side))?.t()?.contiguous()?;
        let normed = candle_nn::ops::rms_norm(&pooled, &self.soft_emb_norm, self.cfg.layer_norm_eps as f32)?;
        Ok(normed.matmul(&self.projection)?)
    }

    /// Soft tokens for one image: `[mm_tokens_per_image, text hidden]`.
    pub fn embed(&self, pixels: &Tensor) -> Result<Tensor, LlmError> {
        self.project(&self.encode(pixels)?)
    }
}
