//! The Gemma 3 decoder: embeddings scaled by sqrt(hidden), sandwich RMSNorms with `(1 + w)`,
//! QK-norm, RoPE per layer kind (linear scaling on global layers only), sliding-window attention
//! on local layers, GeLU-tanh MLP, tied head. Numerics follow `tools/reference/GEMMA3_NOTES.md`.
//!
//! Prefill runs in chunks: each chunk attends to the cached keys plus itself with a mask of
//! chunk x keys, so attention memory stays bounded whatever the prompt length (no seq x seq
//! mask). Local layers keep only the last `sliding_window - 1` keys; global layers keep all.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use super::config::{LayerKind, Rope, TextConfig};
use super::kv::LayerCache;
use super::vision::VisionTower;
use super::weights::{LayerWeights, Weights};
use crate::llm::LlmError;

/// Tokens per prefill chunk.
pub const PREFILL_CHUNK: usize = 512;

pub struct Gemma3 {
    cfg: TextConfig,
    w: Weights,
    device: Device,
    inv_freq_global: Tensor,
    inv_freq_local: Tensor,
    cache: Vec<LayerCache>,
    /// Tokens seen so far (the position of the next one).
    pos: usize,
    prefill_chunk: usize,
    numerics: Numerics,
    vision: Option<VisionTower>,
}

/// An image's soft tokens in a prompt: they replace the embeddings of `len` image-token ids
/// starting at index `start` of the ids, and attend to each other in both directions.
#[derive(Debug, Clone)]
pub struct ImageSpan {
    pub start: usize,
    /// `[len, hidden]`.
    pub embeds: Tensor,
}

impl ImageSpan {
    pub fn end(&self) -> usize {
        self.start + self.embeds.dims()[0]
    }
}

/// How intermediate values are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numerics {
    /// f32 throughout, as the reference implementation computes.
    F32,
    /// llama.cpp's CPU rounding, for GGUF models, so greedy runs follow llama.cpp's: activations
    /// quantized to the weight's dot-product type (Q8_0 or Q8_K) before every quantized matrix
    /// product, queries, keys, values and attention weights through f16 (its f16 KV cache and
    /// attention products), and GeLU read from an f16 table.
    Ggml,
}

fn inv_freq(rope: Rope, head_dim: usize, device: &Device) -> Result<Tensor, LlmError> {
    let v: Vec<f32> = (0..head_dim / 2)
        .map(|i| (1.0 / (rope.theta as f32).powf(2.0 * i as f32 / head_dim as f32)) / rope.factor as f32)
        .collect();
    Ok(Tensor::from_vec(v, head_dim / 2, device)?)
}

impl Gemma3 {
    pub fn new(cfg: TextConfig, w: Weights, device: Device) -> Result<Self, LlmError> {
        let inv_freq_global = inv_freq(cfg.rope_global, cfg.head_dim, &device)?;
        let inv_freq_local = inv_freq(cfg.rope_local, cfg.head_dim, &device)?;
        let cache = (0..cfg.layers.len()).map(|_| LayerCache::default()).collect();
        Ok(Self {
            cfg,
            w,
            device,
            inv_freq_global,
            inv_freq_local,
            cache,
            pos: 0,
            prefill_chunk: PREFILL_CHUNK,
            numerics: Numerics::F32,
            vision: None,
        })
    }

    /// Adds the vision tower of a multimodal checkpoint.
    pub fn with_vision(mut self, vision: VisionTower) -> Self {
        self.vision = Some(vision);
        self
    }

    pub fn vision(&self) -> Option<&VisionTower> {
        self.vision.as_ref()
    }

    pub fn config(&self) -> &TextConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Tokens in the cache.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Tokens per prefill chunk (bounds attention memory; results do not depend on it).
    pub fn set_prefill_chunk(&mut self, tokens: usize) {
        self.prefill_chunk = tokens.max(1);
    }

    /// Chooses how intermediate values are rounded (GGUF models load with `Numerics::Ggml`).
    pub fn set_numerics(&mut self, numerics: Numerics) {
        self.numerics = numerics;
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        self.cache.iter_mut().for_each(|c| *c = LayerCache::default());
        self.pos = 0;
    }

    /// Feeds `ids` after what is cached, in chunks. Returns the logits of every position
    /// (`[len, vocab]`) when `all_logits`, else of the last one (`[1, vocab]`).
    pub fn forward(&mut self, ids: &[u32], all_logits: bool) -> Result<Tensor, LlmError> {
        self.forward_with_images(ids, &[], all_logits)
    }

    /// As `forward`, with images: each span's soft tokens replace the embeddings at its
    /// positions (indices into `ids`). A chunk never splits an image, so its tokens can attend
    /// to each other.
    pub fn forward_with_images(
        &mut self,
        ids: &[u32],
        images: &[ImageSpan],
        all_logits: bool,
    ) -> Result<Tensor, LlmError> {
        let mut outs = Vec::new();
        let mut start = 0;
        while start < ids.len() {
            let mut end = (start + self.prefill_chunk).min(ids.len());
            if let Some(split) = images.iter().find(|s| s.start < end && s.end() > end) {
                end = if split.start > start { split.start } else { split.end() };
            }
            let spans: Vec<ImageSpan> = images
                .iter()
                .filter(|s| s.start >= start && s.end() <= end)
                .map(|s| ImageSpan { start: s.start - start, embeds: s.embeds.clone() })
                .collect();
            let h = self.forward_chunk(&ids[start..end], &spans)?;
            if all_logits {
                outs.push(self.logits(&h)?);
            } else if end == ids.len() {
                let last = h.narrow(0, h.dim(0)? - 1, 1)?;
                outs.push(self.logits(&last)?);
            }
            start = end;
        }
        Ok(Tensor::cat(&outs, 0)?)
    }

    fn logits(&self, h: &Tensor) -> Result<Tensor, LlmError> {
        let h = rms_norm(h, &self.w.norm, self.cfg.rms_norm_eps)?;
        let mut logits = linear(&self.w.lm_head, &h, self.numerics)?;
        if let Some(cap) = self.cfg.final_logit_softcapping {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }

    /// Hidden states `[len, hidden]` after every layer, caches updated.
    fn forward_chunk(&mut self, ids: &[u32], images: &[ImageSpan]) -> Result<Tensor, LlmError> {
        let n = ids.len();
        let scale = (self.cfg.hidden_size as f64).sqrt();
        let mut h = (self.w.embed_tokens.lookup(ids, &self.device)? * scale)?;
        // Image soft tokens go in as they are (not scaled).
        for s in images {
            h = h.slice_assign(&[s.start..s.end(), 0..self.cfg.hidden_size], &s.embeds)?;
        }
        let blocks: Vec<(usize, usize)> =
            images.iter().map(|s| (self.pos + s.start, self.pos + s.end())).collect();
        let positions: Vec<f32> = (self.pos..self.pos + n).map(|p| p as f32).collect();
        let positions = Tensor::from_vec(positions, (n, 1), &self.device)?;
        let rope_g = rope_tables(&positions, &self.inv_freq_global)?;
        let rope_l = rope_tables(&positions, &self.inv_freq_local)?;
        // Layers of one kind share their cache geometry, so each distinct mask is built once.
        let mut masks = MaskCache::default();
        for i in 0..self.cfg.layers.len() {
            let kind = self.cfg.layers[i];
            let rope = if kind == LayerKind::Global { &rope_g } else { &rope_l };
            let layer = &self.w.layers[i];
            let x = rms_norm(&h, &layer.input_layernorm, self.cfg.rms_norm_eps)?;
            let a = attention(
                &self.cfg,
                layer,
                &mut self.cache[i],
                kind,
                &x,
                rope,
                Step { pos: self.pos, numerics: self.numerics, masks: &mut masks, blocks: &blocks },
            )?;
            h = (h + rms_norm(&a, &layer.post_attention_layernorm, self.cfg.rms_norm_eps)?)?;
            let x = rms_norm(&h, &layer.pre_feedforward_layernorm, self.cfg.rms_norm_eps)?;
            let m = mlp(layer, &x, self.numerics)?;
            h = (h + rms_norm(&m, &layer.post_feedforward_layernorm, self.cfg.rms_norm_eps)?)?;
        }
        self.pos += n;
        Ok(h)
    }
}

/// `x * rsqrt(mean(x^2) + eps) * w` over the last dimension (w already holds `1 + w`).
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor, LlmError> {
    Ok(candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)?)
}

fn mlp(l: &LayerWeights, x: &Tensor, numerics: Numerics) -> Result<Tensor, LlmError> {
    let gate = linear(&l.gate_proj, x, numerics)?;
    let gate = match numerics {
        Numerics::F32 => gate.gelu()?,
        Numerics::Ggml => round_f16(&round_f16(&gate)?.gelu()?)?,
    };
    let up = linear(&l.up_proj, x, numerics)?;
    linear(&l.down_proj, &(gate * up)?, numerics)
}

/// Rows from which a quantized matrix is dequantized for a dense product.
const DENSE_FROM_ROWS: usize = 16;

/// `x @ w^T`. Many rows (prefill) multiply a dequantized copy of a quantized weight, which the
/// dense kernels do an order of magnitude faster than row-by-row quantized dot products; a few
/// rows (decoding) use the quantized kernels, which read far less memory and quantize `x` to
/// the weight's dot-product type themselves (the dense path does the same under `Ggml`).
fn linear(w: &QMatMul, x: &Tensor, numerics: Numerics) -> Result<Tensor, LlmError> {
    match w {
        QMatMul::QTensor(q) if x.dim(0)? >= DENSE_FROM_ROWS => {
            let dense = q.dequantize(x.device())?;
            let x = match (numerics, dot_type(q.dtype())) {
                (Numerics::Ggml, Some(t)) => round_through(x, t)?,
                _ => x.clone(),
            };
            Ok(x.matmul(&dense.t()?)?)
        }
        _ => Ok(w.forward(x)?),
    }
}

/// `x` quantized to ggml's activation type and back, row by row, as llama.cpp rounds the
/// activations of a quantized product (plain loops: candle's quantizer is single-threaded and
/// would cost a third of the prefill).
fn round_through(x: &Tensor, t: GgmlDType) -> Result<Tensor, LlmError> {
    let (rows, cols) = x.dims2()?;
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    let block = if t == GgmlDType::Q8K { 256 } else { 32 };
    if cols % block != 0 {
        return Ok(QTensor::quantize(x, t)?.dequantize(x.device())?);
    }
    for b in v.chunks_mut(block) {
        match t {
            GgmlDType::Q8K => q8k_round(b),
            _ => q8_0_round(b),
        }
    }
    Ok(Tensor::from_vec(v, (rows, cols), x.device())?)
}

/// ggml's `quantize_row_q8_0` then dequantize: scale `amax / 127` stored as f16.
fn q8_0_round(b: &mut [f32]) {
    let amax = b.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let d16 = half::f16::from_f32(d).to_f32();
    for x in b.iter_mut() {
        *x = (*x * id).round() * d16;
    }
}

/// ggml's `quantize_row_q8_K` then dequantize: scale `-127 / max` by the signed extreme.
fn q8k_round(b: &mut [f32]) {
    let (mut amax, mut max) = (0f32, 0f32);
    for &x in b.iter() {
        if x.abs() > amax {
            amax = x.abs();
            max = x;
        }
    }
    if amax == 0.0 {
        b.iter_mut().for_each(|x| *x = 0.0);
        return;
    }
    let iscale = -127.0 / max;
    let d = 1.0 / iscale;
    for x in b.iter_mut() {
        *x = (iscale * *x).round().min(127.0) * d;
    }
}

/// The type ggml quantizes activations to for a dot product with weights of type `w`.
fn dot_type(w: GgmlDType) -> Option<GgmlDType> {
    use GgmlDType::*;
    match w {
        Q4_0 | Q5_0 | Q8_0 => Some(Q8_0),
        Q4_1 | Q5_1 => Some(Q8_1),
        Q2K | Q3K | Q4K | Q5K | Q6K | Q8K => Some(Q8K),
        _ => None,
    }
}

/// cos and sin `[len, head_dim / 2]` for the positions.
fn rope_tables(positions: &Tensor, inv_freq: &Tensor) -> Result<(Tensor, Tensor), LlmError> {
    let angles = positions.broadcast_mul(&inv_freq.unsqueeze(0)?)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Where a chunk starts, how attention rounds, and the masks built so far for this chunk.
struct Step<'a> {
    pos: usize,
    numerics: Numerics,
    masks: &'a mut MaskCache,
    /// Absolute position ranges of images: bidirectional inside each.
    blocks: &'a [(usize, usize)],
}

/// What a mask depends on besides the chunk: first key position, key count, window.
type MaskKey = (usize, usize, Option<usize>);

/// Masks of one chunk by key.
#[derive(Default)]
struct MaskCache(Vec<(MaskKey, Tensor)>);

impl MaskCache {
    fn get(
        &mut self,
        span: Span,
        window: Option<usize>,
        blocks: &[(usize, usize)],
        device: &Device,
    ) -> Result<Tensor, LlmError> {
        let key = (span.first, span.total, window);
        if let Some((_, m)) = self.0.iter().find(|(k, _)| *k == key) {
            return Ok(m.clone());
        }
        let m = mask(span, window, blocks, device)?;
        self.0.push((key, m.clone()));
        Ok(m)
    }
}

fn attention(
    cfg: &TextConfig,
    l: &LayerWeights,
    cache: &mut LayerCache,
    kind: LayerKind,
    x: &Tensor,
    (cos, sin): &(Tensor, Tensor),
    Step { pos, numerics, masks, blocks }: Step<'_>,
) -> Result<Tensor, LlmError> {
    let n = x.dim(0)?;
    let (h, kvh, hd) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
    let heads = |t: Tensor, k: usize| -> Result<Tensor, LlmError> {
        Ok(t.reshape((n, k, hd))?.transpose(0, 1)?.contiguous()?)
    };
    let q = heads(linear(&l.q_proj, x, numerics)?, h)?;
    let k = heads(linear(&l.k_proj, x, numerics)?, kvh)?;
    let v = heads(linear(&l.v_proj, x, numerics)?, kvh)?;
    let q = rms_norm(&q, &l.q_norm, cfg.rms_norm_eps)?;
    let k = rms_norm(&k, &l.k_norm, cfg.rms_norm_eps)?;
    // rope expects [batch, heads, len, dim]; the "halves" layout of the reference.
    let q = candle_nn::rotary_emb::rope(&q.unsqueeze(0)?, cos, sin)?.squeeze(0)?;
    let k = candle_nn::rotary_emb::rope(&k.unsqueeze(0)?, cos, sin)?.squeeze(0)?;
    let scale = 1.0 / cfg.query_pre_attn_scalar.sqrt();
    let ggml = numerics == Numerics::Ggml;
    // llama.cpp scales the queries before the product, and multiplies in f16.
    let q = if ggml { round_f16(&(q * scale)?)? } else { q };
    let (k, v) = if ggml { (round_f16(&k)?, round_f16(&v)?) } else { (k, v) };
    let (k_all, v_all, first) = cache.append(&k, &v, pos)?;
    let total = k_all.dim(1)?;
    let window = (kind == LayerKind::Sliding).then_some(cfg.sliding_window);
    let mask = masks.get(Span { n, pos, first, total }, window, blocks, x.device())?;
    // Grouped-query attention without copying keys: query heads of one kv head side by side.
    let rep = h / kvh;
    let qg = q.reshape((kvh, rep * n, hd))?;
    let scores = qg.matmul(&k_all.t()?)?;
    let scores = if ggml { scores } else { (scores * scale)? };
    let scores = scores.reshape((kvh, rep, n, total))?.broadcast_add(&mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((kvh, rep * n, total))?;
    let probs = if ggml { round_f16(&probs)? } else { probs };

    let out = probs.matmul(&v_all)?.reshape((h, n, hd))?.transpose(0, 1)?.reshape((n, h * hd))?;
    // Later tokens of a sliding layer attend to the last `window - 1` keys at most.
    if let Some(w) = window {
        cache.trim(w.saturating_sub(1))?;
    }
    linear(&l.o_proj, &out, numerics)
}

/// Rounds through f16, as llama.cpp's f16 KV cache and f16 attention products do.
fn round_f16(t: &Tensor) -> Result<Tensor, LlmError> {
    Ok(t.to_dtype(DType::F16)?.to_dtype(DType::F32)?)
}

/// Queries at `pos..pos+n` over keys at `first..first+total`.
#[derive(Debug, Clone, Copy)]
struct Span {
    n: usize,
    pos: usize,
    first: usize,
    total: usize,
}

/// Additive mask `[n, total]`: causal, within the window (`0 <= i - j < window`) on sliding
/// layers, or both inside the same image (images attend bidirectionally, as in the reference).
fn mask(
    Span { n, pos, first, total }: Span,
    window: Option<usize>,
    blocks: &[(usize, usize)],
    device: &Device,
) -> Result<Tensor, LlmError> {
    let mut m = vec![0f32; n * total];
    let block_of = |p: usize| blocks.iter().position(|&(a, b)| a <= p && p < b);
    for i in 0..n {
        let qi = pos + i;
        let qb = block_of(qi);
        for j in 0..total {
            let kj = first + j;
            let causal = kj <= qi && window.is_none_or(|w| qi - kj < w);
            let visible = causal || (qb.is_some() && qb == block_of(kj));
            if !visible {
                m[i * total + j] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(m, (1, 1, n, total), device)?)
}
