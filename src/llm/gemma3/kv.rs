//! A layer's keys and values in preallocated buffers, `[kv_heads, capacity, head_dim]`, filled
//! from the front: a step appends in place instead of copying the whole cache (capacity doubles
//! when full). Sliding layers keep old keys a while longer than the window needs (the mask hides
//! them) and drop them only when as many again have accumulated, so dropping is an occasional copy
//! rather than one per token. GGUF models keep keys and values in f16, as llama.cpp does;
//! safetensors checkpoints in f32, as the reference does.

use candle_core::{DType, Tensor};

use crate::llm::LlmError;

pub struct LayerCache {
    kv: Option<(Tensor, Tensor)>,
    /// Entries in use.
    len: usize,
    /// Position of the first entry.
    start: usize,
    dtype: DType,
}

impl LayerCache {
    /// An empty cache holding values as `dtype`.
    pub fn new(dtype: DType) -> Self {
        Self { kv: None, len: 0, start: 0, dtype }
    }

    /// Appends `k` and `v` (`[kv_heads, n, head_dim]`, at positions from `pos`); returns every
    /// key and value held (in the cache's type), and the position of the first.
    pub fn append(
        &mut self,
        k: &Tensor,
        v: &Tensor,
        pos: usize,
    ) -> Result<(Tensor, Tensor, usize), LlmError> {
        let n = k.dim(1)?;
        if self.kv.is_none() {
            self.start = pos;
        }
        self.reserve(k, self.len + n)?;
        let (bk, bv) = self.kv.as_ref().expect("reserved");
        bk.slice_set(&k.to_dtype(self.dtype)?.contiguous()?, 1, self.len)?;
        bv.slice_set(&v.to_dtype(self.dtype)?.contiguous()?, 1, self.len)?;
        self.len += n;
        Ok((bk.narrow(1, 0, self.len)?, bv.narrow(1, 0, self.len)?, self.start))
    }

    /// Positions of the entries held: `first..end`.
    pub fn span(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }

    /// Forgets the entries at positions `end` and after, so that the next append continues at
    /// `end` (the buffers stay allocated). An `end` outside `span()` is brought into it.
    pub fn truncate(&mut self, end: usize) {
        if self.kv.is_some() {
            self.len = end.clamp(self.start, self.start + self.len) - self.start;
        }
    }

    /// Keeps the last `keep` entries once at least twice that many are held.
    pub fn trim(&mut self, keep: usize) -> Result<(), LlmError> {
        if keep == 0 || self.len < 2 * keep {
            return Ok(());
        }
        let Some((bk, bv)) = &self.kv else { return Ok(()) };
        let drop = self.len - keep;
        let tail_k = owned(&bk.narrow(1, drop, keep)?)?;
        let tail_v = owned(&bv.narrow(1, drop, keep)?)?;
        bk.slice_set(&tail_k, 1, 0)?;
        bv.slice_set(&tail_v, 1, 0)?;
        self.start += drop;
        self.len = keep;
        Ok(())
    }

    fn reserve(&mut self, like: &Tensor, need: usize) -> Result<(), LlmError> {
        let cap = self.kv.as_ref().map_or(0, |(k, _)| k.dims()[1]);
        if need <= cap {
            return Ok(());
        }
        let (heads, _, hd) = like.dims3()?;
        let new_cap = need.max(cap * 2).max(64);
        let fresh = || Tensor::zeros((heads, new_cap, hd), self.dtype, like.device());
        let (nk, nv) = (fresh()?, fresh()?);
        if let Some((ok, ov)) = &self.kv {
            if self.len > 0 {
                nk.slice_set(&owned(&ok.narrow(1, 0, self.len)?)?, 1, 0)?;
                nv.slice_set(&owned(&ov.narrow(1, 0, self.len)?)?, 1, 0)?;
            }
        }
        self.kv = Some((nk, nv));
        Ok(())
    }
}

/// A contiguous copy in storage of its own (a view of a buffer cannot be written back into it).
fn owned(t: &Tensor) -> Result<Tensor, LlmError> {
    Ok(if t.is_contiguous() { t.copy()? } else { t.contiguous()? })
}
