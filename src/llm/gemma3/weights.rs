//! Loading Gemma 3 text weights from HF safetensors (plain `Gemma3ForCausalLM`, or the text part
//! of a multimodal checkpoint under either key layout) or from a GGUF file (llama.cpp names,
//! K-quants, Q8_0, F16, F32). Both end in the same `Weights`.

use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, QMatMul, QTensor};
use candle_core::{DType, Device, Tensor};

use super::config::{pattern, LayerKind, Rope, TextConfig};
use super::linear::Linear;
use super::numerics::Numerics;
use crate::llm::LlmError;

/// One decoder layer's tensors. Norm weights are stored as the multiplier, `1 + w`.
pub struct LayerWeights {
    pub input_layernorm: Tensor,
    pub post_attention_layernorm: Tensor,
    pub pre_feedforward_layernorm: Tensor,
    pub post_feedforward_layernorm: Tensor,
    pub q_proj: Linear,
    pub k_proj: Linear,
    pub v_proj: Linear,
    pub o_proj: Linear,
    pub q_norm: Tensor,
    pub k_norm: Tensor,
    pub gate_proj: Linear,
    pub up_proj: Linear,
    pub down_proj: Linear,
}

pub struct Weights {
    /// For looking up input embeddings.
    pub embed_tokens: super::embedding::Embeddings,
    /// The output head (tied to the embeddings unless the checkpoint says otherwise).
    pub lm_head: Linear,
    pub norm: Tensor,
    pub layers: Vec<LayerWeights>,
    /// The arithmetic the projections were loaded for.
    pub numerics: Numerics,
    /// How the KV cache holds keys and values: f16 for GGUF models (as llama.cpp), f32 for
    /// safetensors checkpoints (as the reference).
    pub kv_dtype: DType,
}

/// Key prefixes of the text model, most specific first.
const PREFIXES: [&str; 3] = ["language_model.model.", "model.language_model.", "model."];

/// Loads an HF checkpoint directory (`config.json`, `model.safetensors` or shards).
pub fn load_safetensors(dir: &Path, device: &Device) -> Result<(TextConfig, Weights), LlmError> {
    let config = TextConfig::from_hf_json(&read(&dir.join("config.json"))?)?;
    let shards = shards(dir)?;
    // SAFETY: the files are memory-mapped read-only and not modified while the model lives.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&shards) }?;
    let prefix =
        PREFIXES.iter().find(|p| st.get(&format!("{p}embed_tokens.weight")).is_ok()).ok_or_else(|| {
            LlmError::Weights("no Gemma 3 text weights (embed_tokens.weight) in the checkpoint".into())
        })?;
    let get = |name: &str| -> Result<Tensor, LlmError> {
        Ok(st.load(&format!("{prefix}{name}"), device)?.to_dtype(DType::F32)?)
    };
    let linear = |name: &str| -> Result<Linear, LlmError> { Ok(Linear::dense(get(name)?)) };
    let norm = |name: &str| -> Result<Tensor, LlmError> { Ok((get(name)? + 1.0)?) };
    let mut layers = Vec::with_capacity(config.layers.len());
    for i in 0..config.layers.len() {
        let l = |n: &str| format!("layers.{i}.{n}");
        layers.push(LayerWeights {
            input_layernorm: norm(&l("input_layernorm.weight"))?,
            post_attention_layernorm: norm(&l("post_attention_layernorm.weight"))?,
            pre_feedforward_layernorm: norm(&l("pre_feedforward_layernorm.weight"))?,
            post_feedforward_layernorm: norm(&l("post_feedforward_layernorm.weight"))?,
            q_proj: linear(&l("self_attn.q_proj.weight"))?,
            k_proj: linear(&l("self_attn.k_proj.weight"))?,
            v_proj: linear(&l("self_attn.v_proj.weight"))?,
            o_proj: linear(&l("self_attn.o_proj.weight"))?,
            q_norm: norm(&l("self_attn.q_norm.weight"))?,
            k_norm: norm(&l("self_attn.k_norm.weight"))?,
            gate_proj: linear(&l("mlp.gate_proj.weight"))?,
            up_proj: linear(&l("mlp.up_proj.weight"))?,
            down_proj: linear(&l("mlp.down_proj.weight"))?,
        });
    }
    let embed_tokens = get("embed_tokens.weight")?;
    let lm_head = if config.tie_word_embeddings {
        Linear::dense(embed_tokens.clone())
    } else {
        let head = ["lm_head.weight", "language_model.lm_head.weight"]
            .iter()
            .find_map(|k| st.load(k, device).ok())
            .ok_or_else(|| LlmError::Weights("untied model without lm_head.weight".into()))?;
        Linear::dense(head.to_dtype(DType::F32)?)
    };
    let embed_tokens = super::embedding::Embeddings::Dense(embed_tokens);
    let norm = norm("norm.weight")?;
    Ok((
        config,
        Weights { embed_tokens, lm_head, norm, layers, numerics: Numerics::F32, kv_dtype: DType::F32 },
    ))
}

/// The vision tower and projector of a multimodal HF checkpoint; `None` for a text-only one.
pub fn load_vision(dir: &Path, device: &Device) -> Result<Option<super::vision::VisionTower>, LlmError> {
    let Some(cfg) = super::vision::VisionConfig::from_hf_json(&read(&dir.join("config.json"))?)? else {
        return Ok(None);
    };
    // SAFETY: as in `load_safetensors`.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&shards(dir)?) }?;
    Ok(Some(super::vision::VisionTower::load(cfg, &st, device)?))
}

fn read(p: &Path) -> Result<String, LlmError> {
    std::fs::read_to_string(p).map_err(|e| LlmError::Io(p.to_owned(), e))
}

fn shards(dir: &Path) -> Result<Vec<PathBuf>, LlmError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LlmError::Io(dir.to_owned(), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "safetensors")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("model"))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LlmError::Weights(format!("no model*.safetensors in {}", dir.display())));
    }
    Ok(files)
}

/// Loads a GGUF file written by llama.cpp's converter (norm weights already hold `1 + w`), its
/// projections decoded for the given arithmetic.
pub fn load_gguf(
    path: &Path,
    device: &Device,
    numerics: Numerics,
) -> Result<(TextConfig, Weights), LlmError> {
    let file = std::fs::File::open(path).map_err(|e| LlmError::Io(path.to_owned(), e))?;
    // The metadata holds the whole vocabulary as 262k small strings: read through a buffer, not
    // a system call per string.
    let content = gguf_file::Content::read(&mut std::io::BufReader::with_capacity(1 << 20, &file))
        .map_err(|e| LlmError::Weights(format!("{}: {e}", path.display())))?;
    let config = gguf_config(&content)?;
    // Tensors are copied into candle's storage straight from the mapped file (faulted in at
    // once), not read into a zeroed buffer first and copied from there.
    // SAFETY: the map is read-only, only read while this function runs, and every tensor is
    // copied out of it before it is dropped.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
        .map_err(|e| LlmError::Io(path.to_owned(), e))?;
    let tensor = |name: &str| -> Result<QTensor, LlmError> { mapped_tensor(&content, &map, name, device) };
    let mut layers = Vec::with_capacity(config.layers.len());
    for i in 0..config.layers.len() {
        let get = |n: &str| tensor(&format!("blk.{i}.{n}.weight"));
        let deq =
            |q: QTensor| -> Result<Tensor, LlmError> { Ok(q.dequantize(device)?.to_dtype(DType::F32)?) };
        let mm = |q: QTensor| -> Result<Linear, LlmError> {
            match numerics {
                Numerics::F32 => Linear::quantized(q, device),
                Numerics::Ggml => Linear::exact(&q),
            }
        };
        layers.push(LayerWeights {
            input_layernorm: deq(get("attn_norm")?)?,
            post_attention_layernorm: deq(get("post_attention_norm")?)?,
            pre_feedforward_layernorm: deq(get("ffn_norm")?)?,
            post_feedforward_layernorm: deq(get("post_ffw_norm")?)?,
            q_proj: mm(get("attn_q")?)?,
            k_proj: mm(get("attn_k")?)?,
            v_proj: mm(get("attn_v")?)?,
            o_proj: mm(get("attn_output")?)?,
            q_norm: deq(get("attn_q_norm")?)?,
            k_norm: deq(get("attn_k_norm")?)?,
            gate_proj: mm(get("ffn_gate")?)?,
            up_proj: mm(get("ffn_up")?)?,
            down_proj: mm(get("ffn_down")?)?,
        });
    }
    let norm = tensor("output_norm.weight")?.dequantize(device)?.to_dtype(DType::F32)?;
    // The embedding stays quantized (rows are dequantized as they are looked up); tied weights
    // share it with the output head, which multiplies with the quantized matrix directly.
    let embed = std::sync::Arc::new(tensor("token_embd.weight")?);
    let lm_head = match (content.tensor_infos.contains_key("output.weight"), numerics) {
        (true, Numerics::F32) => Linear::Candle(QMatMul::from_qtensor(tensor("output.weight")?)?),
        (true, Numerics::Ggml) => Linear::exact(&tensor("output.weight")?)?,
        (false, Numerics::F32) => Linear::Candle(QMatMul::QTensor(embed.clone())),
        (false, Numerics::Ggml) => Linear::exact(&embed)?,
    };
    let embed_tokens = super::embedding::Embeddings::Quantized(embed);
    Ok((config, Weights { embed_tokens, lm_head, norm, layers, numerics, kv_dtype: DType::F16 }))
}

/// Tensor `name` of a GGUF file, copied from its bytes in `map` (checked to lie inside it).
fn mapped_tensor(
    c: &gguf_file::Content,
    map: &[u8],
    name: &str,
    device: &Device,
) -> Result<QTensor, LlmError> {
    let fail = |why: &str| LlmError::Weights(format!("{name}: {why}"));
    let info = c.tensor_infos.get(name).ok_or_else(|| fail("not in the file"))?;
    let (elems, block) = (info.shape.elem_count(), info.ggml_dtype.block_size());
    if !elems.is_multiple_of(block) {
        return Err(fail("its size is not a whole number of blocks"));
    }
    let len = elems / block * info.ggml_dtype.type_size();
    let start = usize::try_from(c.tensor_data_offset.saturating_add(info.offset))
        .map_err(|_| fail("offset too large"))?;
    let bytes = start
        .checked_add(len)
        .and_then(|end| map.get(start..end))
        .ok_or_else(|| fail("past the end of the file"))?;
    Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(
        info.ggml_dtype,
        bytes,
        info.shape.dims().to_vec(),
        device,
    )?)
}

fn gguf_config(c: &gguf_file::Content) -> Result<TextConfig, LlmError> {
    let arch =
        c.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned().unwrap_or_default();
    if arch != "gemma3" {
        return Err(LlmError::Config(format!("GGUF architecture {arch:?} is not gemma3")));
    }
    let get = |k: &str| c.metadata.get(&format!("gemma3.{k}"));
    let int = |k: &str| -> Result<usize, LlmError> {
        get(k)
            .and_then(|v| v.to_u32().ok().map(|x| x as usize).or_else(|| v.to_u64().ok().map(|x| x as usize)))
            .ok_or_else(|| LlmError::Config(format!("GGUF lacks gemma3.{k}")))
    };
    let float = |k: &str| get(k).and_then(|v| v.to_f32().ok()).map(f64::from);
    let num_layers = int("block_count")?;
    let head_dim = int("attention.key_length")?;
    let embd = c
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| LlmError::Weights("no token_embd.weight".into()))?;
    let dims = embd.shape.dims();
    let factor = match get("rope.scaling.type").and_then(|v| v.to_string().ok()).map(String::as_str) {
        Some("linear") => float("rope.scaling.factor").unwrap_or(1.0),
        _ => 1.0,
    };
    Ok(TextConfig {
        vocab_size: dims[0],
        hidden_size: int("embedding_length")?,
        intermediate_size: int("feed_forward_length")?,
        num_attention_heads: int("attention.head_count")?,
        num_key_value_heads: int("attention.head_count_kv")?,
        head_dim,
        // llama.cpp scales by 1/sqrt(head_dim) for every Gemma 3 size but 27B, where it equals
        // query_pre_attn_scalar anyway.
        query_pre_attn_scalar: head_dim as f64,
        sliding_window: int("attention.sliding_window")?,
        rms_norm_eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-6),
        layers: pattern(num_layers, 6).into_iter().collect::<Vec<LayerKind>>(),
        rope_global: Rope { theta: float("rope.freq_base").unwrap_or(1e6), factor },
        rope_local: Rope { theta: 1e4, factor: 1.0 },
        final_logit_softcapping: float("final_logit_softcapping"),
        tie_word_embeddings: !c.tensor_infos.contains_key("output.weight"),
        max_position_embeddings: int("context_length").unwrap_or(32_768),
    })
}
