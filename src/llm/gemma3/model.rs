//! The Gemma 3 decoder: embeddings scaled by sqrt(hidden), sandwich RMSNorms with `(1 + w)`,
//! QK-norm, RoPE per layer kind (linear scaling on global layers only), sliding-window attention
//! on local layers, GeLU-tanh MLP, tied head. Numerics follow `tools/reference/GEMMA3_NOTES.md`.
//!
//! Prefill runs in chunks: each chunk attends to the cached keys plus itself with a mask of
//! chunk x keys, so attention memory stays bounded whatever the prompt length (no seq x seq
//! mask). Local layers keep only the last `sliding_window - 1` keys; global layers keep all.

use candle_core::{DType, Device, Tensor};

use super::config::{LayerKind, TextConfig};
use super::decode_attention;
use super::exact_attention;
use super::kv::LayerCache;
use super::linear::Linear;
use super::numerics::{self, Numerics};
use super::rope::RopeTables;
use super::vision::VisionTower;
use super::weights::{LayerWeights, Weights};
use crate::llm::LlmError;

/// Tokens per prefill chunk.
pub const PREFILL_CHUNK: usize = 512;

pub struct Gemma3 {
    cfg: TextConfig,
    w: Weights,
    device: Device,
    cache: Vec<LayerCache>,
    /// Tokens seen so far (the position of the next one).
    pos: usize,
    /// Ids of the tokens cached from position 0 on, as long as they are text: it stops at the
    /// first image (soft tokens share one id) and is cleared by a failed step. `reuse` matches
    /// a new prompt against it.
    fed: Vec<u32>,
    prefill_chunk: usize,
    /// Attention scores a prefill step holds at once.
    max_scores: usize,
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

impl Gemma3 {
    pub fn new(cfg: TextConfig, w: Weights, device: Device) -> Result<Self, LlmError> {
        let numerics = w.numerics;
        let cache = (0..cfg.layers.len()).map(|_| LayerCache::new(w.kv_dtype)).collect();
        Ok(Self {
            cfg,
            w,
            device,
            cache,
            pos: 0,
            fed: Vec::new(),
            prefill_chunk: PREFILL_CHUNK,
            max_scores: MAX_SCORES,
            numerics,
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

    /// Attention scores (f32 values) a prefill step may hold at once; queries are taken in
    /// slices that fit (results do not depend on it).
    pub fn set_max_scores(&mut self, scores: usize) {
        self.max_scores = scores.max(1);
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) {
        let dtype = self.w.kv_dtype;
        self.cache.iter_mut().for_each(|c| *c = LayerCache::new(dtype));
        self.pos = 0;
        self.fed.clear();
    }

    /// Keeps what the cache holds of the longest prefix `ids` shares with the tokens fed since
    /// the last reset, so that only the rest of `ids` needs feeding (a conversation's follow-up
    /// prefills only its new turn). At most `ids.len() - 1` tokens are kept: the last one is
    /// fed for its logits. Every layer must be able to continue from the cut: a sliding layer
    /// that has already dropped keys the next token would see (a window before the cut) cannot,
    /// and then, as when nothing is shared, the cache is reset. Returns the tokens kept.
    pub fn reuse(&mut self, ids: &[u32]) -> usize {
        let shared =
            self.fed.iter().zip(ids).take_while(|(a, b)| a == b).count().min(ids.len().saturating_sub(1));
        let window = self.cfg.sliding_window;
        let fits = self.cfg.layers.iter().zip(&self.cache).all(|(&kind, c)| {
            let span = c.span();
            let oldest_seen =
                if kind == LayerKind::Sliding { (shared + 1).saturating_sub(window) } else { 0 };
            span.start <= oldest_seen && shared <= span.end
        });
        if shared == 0 || !fits {
            self.reset();
            return 0;
        }
        self.cache.iter_mut().for_each(|c| c.truncate(shared));
        self.fed.truncate(shared);
        self.pos = shared;
        shared
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
        // candle's row-parallel operations hand their work to rayon's pool and wait when called
        // from outside it; a prefill runs inside candle's pool instead (10% faster prefill,
        // measured), while a single decoding step is faster outside it (its products run on
        // candle's barrier pool, and rayon's idle workers then only compete for the cores).
        let tracked = self.fed.len() == self.pos;
        let out = if ids.len() > 1 {
            candle_core::utils::with_threadpool(|| self.forward_chunks(ids, images, all_logits))
        } else {
            self.forward_chunks(ids, images, all_logits)
        };
        match &out {
            Ok(_) if tracked => {
                let text = images.iter().map(|s| s.start).min().unwrap_or(ids.len()).min(ids.len());
                self.fed.extend_from_slice(&ids[..text]);
            }
            Ok(_) => {}
            // Some layers may hold the failed step's keys: nothing cached is known any more.
            Err(_) => self.fed.clear(),
        }
        out
    }

    fn forward_chunks(
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
        let h = rms_norm(h, &self.w.norm, self.cfg.rms_norm_eps, self.numerics)?;
        let mut logits = self.w.lm_head.forward(&h)?;
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
        let tables =
            |rope| RopeTables::new(rope, self.cfg.head_dim, self.pos, n, self.numerics, &self.device);
        let (rope_g, rope_l) = (tables(self.cfg.rope_global)?, tables(self.cfg.rope_local)?);
        // Layers of one kind share their cache geometry, so each distinct mask is built once.
        let mut masks = MaskCache::default();
        for i in 0..self.cfg.layers.len() {
            let kind = self.cfg.layers[i];
            let rope = if kind == LayerKind::Global { &rope_g } else { &rope_l };
            let layer = &self.w.layers[i];
            let x = rms_norm(&h, &layer.input_layernorm, self.cfg.rms_norm_eps, self.numerics)?;
            let a = attention(
                &self.cfg,
                layer,
                &mut self.cache[i],
                kind,
                &x,
                rope,
                Step {
                    pos: self.pos,
                    numerics: self.numerics,
                    masks: &mut masks,
                    blocks: &blocks,
                    max_scores: self.max_scores,
                },
            )?;
            let an = rms_norm(&a, &layer.post_attention_layernorm, self.cfg.rms_norm_eps, self.numerics)?;
            h = (h + an)?;
            let x = rms_norm(&h, &layer.pre_feedforward_layernorm, self.cfg.rms_norm_eps, self.numerics)?;
            let m = mlp(layer, &x, self.numerics)?;
            let mn = rms_norm(&m, &layer.post_feedforward_layernorm, self.cfg.rms_norm_eps, self.numerics)?;
            h = (h + mn)?;
        }
        self.pos += n;
        Ok(h)
    }
}

/// `x * rsqrt(mean(x^2) + eps) * w` over the last dimension (w already holds `1 + w`).
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64, numerics: Numerics) -> Result<Tensor, LlmError> {
    match numerics {
        Numerics::F32 => Ok(candle_nn::ops::rms_norm(&x.contiguous()?, w, eps as f32)?),
        Numerics::Ggml => numerics::rms_norm_ggml(x, w, eps as f32),
    }
}

fn mlp(l: &LayerWeights, x: &Tensor, numerics: Numerics) -> Result<Tensor, LlmError> {
    let [gate, up] = Linear::forward_many([&l.gate_proj, &l.up_proj], x)?;
    let g = match numerics {
        Numerics::F32 if gate.device().is_cpu() => {
            let g = cpu_kernels::geglu(&gate.flatten_all()?.to_vec1()?, &up.flatten_all()?.to_vec1()?);
            Tensor::from_vec(g, gate.shape(), gate.device())?
        }
        Numerics::F32 => (gate.gelu()? * up)?,
        Numerics::Ggml => numerics::geglu_ggml(&gate, &up)?,
    };
    l.down_proj.forward(&g)
}

/// Where a chunk starts, how attention rounds, and the masks built so far for this chunk.
struct Step<'a> {
    pos: usize,
    numerics: Numerics,
    masks: &'a mut MaskCache,
    /// Absolute position ranges of images: bidirectional inside each.
    blocks: &'a [(usize, usize)],
    max_scores: usize,
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
    rope: &RopeTables,
    Step { pos, numerics, masks, blocks, max_scores }: Step<'_>,
) -> Result<Tensor, LlmError> {
    let n = x.dim(0)?;
    let (h, kvh, hd) = (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim);
    let heads = |t: Tensor, k: usize| -> Result<Tensor, LlmError> {
        Ok(t.reshape((n, k, hd))?.transpose(0, 1)?.contiguous()?)
    };
    let [q, k, v] = Linear::forward_many([&l.q_proj, &l.k_proj, &l.v_proj], x)?;
    let (q, k, v) = (heads(q, h)?, heads(k, kvh)?, heads(v, kvh)?);
    let q = rope.apply(&rms_norm(&q, &l.q_norm, cfg.rms_norm_eps, numerics)?, numerics)?;
    let k = rope.apply(&rms_norm(&k, &l.k_norm, cfg.rms_norm_eps, numerics)?, numerics)?;
    let scale = 1.0 / cfg.query_pre_attn_scalar.sqrt();
    let window = (kind == LayerKind::Sliding).then_some(cfg.sliding_window);
    let out = match numerics {
        Numerics::F32 => {
            let (k_all, v_all, first) = cache.append(&k, &v, pos)?;
            let total = k_all.dim(1)?;
            if n == 1 && blocks.is_empty() && x.device().is_cpu() {
                // One new token: straight from the cache, over the keys it can see.
                let from = window.map_or(first, |w| (pos + 1).saturating_sub(w).max(first));
                decode_attention::attend(&q, &k_all, &v_all, from - first..total, scale)?
            } else {
                let mask = masks.get(Span { n, pos, first, total }, window, blocks, x.device())?;
                let (k_all, v_all) = (k_all.to_dtype(DType::F32)?, v_all.to_dtype(DType::F32)?);
                // Queries in slices, so that the scores of a long context stay bounded.
                let rows = (max_scores / (h * total)).clamp(1, n);
                let mut outs = Vec::with_capacity(n.div_ceil(rows));
                for start in (0..n).step_by(rows) {
                    let len = rows.min(n - start);
                    let q = q.narrow(1, start, len)?.contiguous()?;
                    let mask = mask.narrow(2, start, len)?;
                    outs.push(dense_attention(&q, &k_all, &v_all, &mask, kvh, scale)?);
                }
                Tensor::cat(&outs, 0)?
            }
        }
        Numerics::Ggml => {
            // llama.cpp scales the queries before the product, and keeps keys and values in f16.
            let q = numerics::round_f16(&(q * scale)?)?;
            let (k, v) = (numerics::round_f16(&k)?, numerics::round_f16(&v)?);
            let (k_all, v_all, first) = cache.append(&k, &v, pos)?;
            let (k_all, v_all) = (k_all.to_dtype(DType::F32)?, v_all.to_dtype(DType::F32)?);
            let kv = exact_attention::Cached { k: &k_all, v: &v_all, first };
            exact_attention::attend(&q, kv, pos, |qi, kj| visible(qi, kj, window, blocks))?
        }
    };
    // Later tokens of a sliding layer attend to the last `window - 1` keys at most.
    if let Some(w) = window {
        cache.trim(w.saturating_sub(1))?;
    }
    l.o_proj.forward(&out)
}

/// Attention scores held at once in a prefill step by default (f32): 64 MB.
const MAX_SCORES: usize = 16 << 20;

/// `softmax(q k^T * scale + mask) v` with dense products: `q` `[heads, len, head_dim]`, `k` and
/// `v` `[kv_heads, total, head_dim]`, `mask` `[1, 1, len, total]`; returns `[len, heads *
/// head_dim]`. Query heads of one kv head sit side by side, so keys are not copied per head.
fn dense_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    kvh: usize,
    scale: f64,
) -> Result<Tensor, LlmError> {
    let (h, len, hd) = q.dims3()?;
    let total = k.dim(1)?;
    let rep = h / kvh;
    let scores = (q.reshape((kvh, rep * len, hd))?.matmul(&k.t()?)? * scale)?;
    let scores = scores.reshape((kvh, rep, len, total))?.broadcast_add(mask)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((kvh, rep * len, total))?;
    Ok(probs.matmul(v)?.reshape((h, len, hd))?.transpose(0, 1)?.reshape((len, h * hd))?)
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
    for i in 0..n {
        for j in 0..total {
            if !visible(pos + i, first + j, window, blocks) {
                m[i * total + j] = f32::NEG_INFINITY;
            }
        }
    }
    Ok(Tensor::from_vec(m, (1, 1, n, total), device)?)
}

/// Whether the query at position `qi` sees the key at `kj`: causal, within the window on
/// sliding layers, or both inside the same image.
fn visible(qi: usize, kj: usize, window: Option<usize>, blocks: &[(usize, usize)]) -> bool {
    let causal = kj <= qi && window.is_none_or(|w| qi - kj < w);
    causal || {
        let block_of = |p: usize| blocks.iter().position(|&(a, b)| a <= p && p < b);
        block_of(qi).is_some_and(|b| block_of(kj) == Some(b))
    }
}
