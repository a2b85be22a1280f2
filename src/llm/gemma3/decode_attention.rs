//! Attention for a single new token on the CPU, read straight from the KV cache's buffers: one
//! pass over the keys and values the token can see (on sliding layers, only the window), where
//! candle's general path would copy the cache views and run a dense product for a 4 x N problem.

use candle_core::{CpuStorage, Storage, Tensor};

use crate::llm::LlmError;

/// `q` `[heads, 1, head_dim]`; `k`, `v` `[kv_heads, held, head_dim]` views of the cache;
/// `keys` the visible ones. Returns `[1, heads * head_dim]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, keys: std::ops::Range<usize>, scale: f64) -> Result<Tensor, LlmError> {
    let (heads, _, head_dim) = q.dims3()?;
    let (kv_heads, _, _) = k.dims3()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let out = with_slice(k, |ks, k_stride| {
        with_slice(v, |vs, v_stride| {
            if k_stride != v_stride {
                return Err(LlmError::Weights("keys and values held differently".into()));
            }
            let shape = cpu_kernels::AttentionShape { heads, kv_heads, head_dim, held: k_stride / head_dim };
            Ok(cpu_kernels::attend_one(&q, ks, vs, shape, keys.clone(), scale as f32))
        })
    })?;
    Ok(Tensor::from_vec(out, (1, heads * head_dim), q_device(k))?)
}

fn q_device(t: &Tensor) -> &candle_core::Device {
    t.device()
}

/// Runs `f` on a cache view's f32 buffer from its first element, with the distance between kv
/// heads (the view is `[kv_heads, len, head_dim]`, rows contiguous, heads `stride` apart).
fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32], usize) -> Result<R, LlmError>) -> Result<R, LlmError> {
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(data)) = &*storage else {
        return Err(LlmError::Weights("decode attention needs an f32 cache on the CPU".into()));
    };
    let stride = layout.stride();
    let (_, _, hd) = t.dims3()?;
    if stride[2] != 1 || stride[1] != hd {
        return Err(LlmError::Weights("the KV cache view is not row-contiguous".into()));
    }
    f(&data[layout.start_offset()..], stride[0])
}
