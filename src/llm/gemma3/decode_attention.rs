//! Attention for a single new token on the CPU, read straight from the KV cache's buffers: one
//! pass over the keys and values the token can see (on sliding layers, only the window), where
//! candle's general path would copy the cache views and run a dense product for a 4 x N problem.
//! Long spans of keys are cut into pieces attended to on candle's CPU threads and combined.

use candle_core::{CpuStorage, Storage, Tensor};

use crate::llm::LlmError;

/// `q` `[heads, 1, head_dim]`; `k`, `v` `[kv_heads, held, head_dim]` views of the cache;
/// `keys` the visible ones. Returns `[1, heads * head_dim]`.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    keys: std::ops::Range<usize>,
    scale: f64,
) -> Result<Tensor, LlmError> {
    let (heads, _, head_dim) = q.dims3()?;
    let (kv_heads, _, _) = k.dims3()?;
    let device = k.device().clone();
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let held = row_stride(kl, head_dim)?;
    if row_stride(vl, head_dim)? != held {
        return Err(LlmError::Weights("keys and values held differently".into()));
    }
    let shape = cpu_kernels::AttentionShape { heads, kv_heads, head_dim, held };
    let scale = scale as f32;
    let (k, v) = (kv_slice(&ks, kl)?, kv_slice(&vs, vl)?);
    let part = |piece: std::ops::Range<usize>| {
        cpu_kernels::attend_part_kv(&q, k, v, shape, piece, scale)
            .ok_or_else(|| LlmError::Weights("keys and values held in different types".into()))
    };
    let pieces = pieces(keys);
    let parts = std::sync::Mutex::new(Vec::with_capacity(pieces.len()));
    candle_core::utils::barrier_pool().execute_chunked(pieces.len(), |range| {
        for i in range {
            let p = part(pieces[i].clone());
            parts.lock().expect("no panics while held").push((i, p));
        }
    });
    let mut parts = parts.into_inner().expect("no panics while held");
    // Combined in key order whichever thread finished first, so results do not vary.
    parts.sort_by_key(|(i, _)| *i);
    let parts = parts.into_iter().map(|(_, p)| p).collect::<Result<Vec<_>, _>>()?;
    let out = cpu_kernels::combine(&parts, head_dim);
    Ok(Tensor::from_vec(out, (1, heads * head_dim), &device)?)
}

/// A cache buffer from the view's first element.
fn kv_slice<'a>(
    storage: &'a Storage,
    layout: &candle_core::Layout,
) -> Result<cpu_kernels::KvSlice<'a>, LlmError> {
    match storage {
        Storage::Cpu(CpuStorage::F32(d)) => Ok(cpu_kernels::KvSlice::F32(&d[layout.start_offset()..])),
        Storage::Cpu(CpuStorage::F16(d)) => Ok(cpu_kernels::KvSlice::F16(&d[layout.start_offset()..])),
        _ => Err(LlmError::Weights("decode attention needs an f32 or f16 cache on the CPU".into())),
    }
}

/// Keys per piece: enough that a piece's work outweighs handing it to a thread.
const KEYS_PER_PIECE: usize = 256;

/// `keys` cut into pieces of about `KEYS_PER_PIECE`.
fn pieces(keys: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let count = keys.len().div_ceil(KEYS_PER_PIECE).max(1);
    let per = keys.len().div_ceil(count);
    (0..count).map(|i| keys.start + i * per..(keys.start + (i + 1) * per).min(keys.end)).collect()
}

/// Keys held per kv head in a cache view `[kv_heads, len, head_dim]` whose rows are contiguous
/// (heads lie `held * head_dim` apart).
fn row_stride(layout: &candle_core::Layout, head_dim: usize) -> Result<usize, LlmError> {
    let stride = layout.stride();
    if stride.len() != 3 || stride[2] != 1 || stride[1] != head_dim {
        return Err(LlmError::Weights("the KV cache view is not row-contiguous".into()));
    }
    Ok(stride[0] / head_dim)
}
