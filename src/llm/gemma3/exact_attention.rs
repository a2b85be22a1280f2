//! Attention in llama.cpp's CPU arithmetic (`Numerics::Ggml`), for its flash-attention-off
//! path: query-key products of f16 values, ggml's softmax over the KV cells, and the
//! weight-value products with the weights rounded to f16. A batch of two or more queries uses
//! tinyBLAS's summation order and a single query `ggml_vec_dot_f16`'s, as llama.cpp does.
//!
//! ggml's KV cells are positions (one sequence from 0), and its softmax and products group
//! cells by their index, so rows here are laid out by absolute position from a multiple of 32;
//! cells before the first key held are masked, as they are in llama.cpp.

use candle_core::Tensor;

use crate::llm::LlmError;

/// Keys and values held, `[kv_heads, total, head_dim]` (values already through f16), the first
/// at position `first`.
pub struct Cached<'a> {
    pub k: &'a Tensor,
    pub v: &'a Tensor,
    pub first: usize,
}

/// `q` `[heads, n, head_dim]` (scaled, through f16) at positions `pos..pos + n`; `visible(q, k)`
/// says whether the query at position `q` sees the key at `k`. Returns `[n, heads * head_dim]`.
pub fn attend(
    q: &Tensor,
    kv: Cached<'_>,
    pos: usize,
    visible: impl Fn(usize, usize) -> bool,
) -> Result<Tensor, LlmError> {
    let (h, n, hd) = q.dims3()?;
    let (kvh, total, _) = kv.k.dims3()?;
    let dot = if n >= 2 { ggml_exact::dot_f16_gemm } else { ggml_exact::dot_f16_vec };
    let qv = q.flatten_all()?.to_vec1::<f32>()?;
    let kvec = kv.k.flatten_all()?.to_vec1::<f32>()?;
    let vvec = kv.v.flatten_all()?.to_vec1::<f32>()?;
    let base = kv.first & !31;
    let cells = (kv.first + total).next_multiple_of(32) - base;
    // Values transposed per kv head: one row of cells per dimension.
    let mut vt = vec![0f32; kvh * hd * cells];
    for g in 0..kvh {
        for j in 0..total {
            let cell = kv.first + j - base;
            for d in 0..hd {
                vt[(g * hd + d) * cells + cell] = vvec[(g * total + j) * hd + d];
            }
        }
    }
    let mut out = vec![0f32; n * h * hd];
    let mut row = vec![0f32; cells];
    for head in 0..h {
        let g = head / (h / kvh);
        for i in 0..n {
            let query = &qv[(head * n + i) * hd..(head * n + i + 1) * hd];
            row.fill(f32::NEG_INFINITY);
            for j in 0..total {
                if visible(pos + i, kv.first + j) {
                    let key = &kvec[(g * total + j) * hd..(g * total + j + 1) * hd];
                    row[kv.first + j - base] = dot(query, key);
                }
            }
            ggml_exact::softmax(&mut row);
            row.iter_mut().for_each(|p| *p = half::f16::from_f32(*p).to_f32());
            for d in 0..hd {
                out[(i * h + head) * hd + d] = dot(&row, &vt[(g * hd + d) * cells..(g * hd + d + 1) * cells]);
            }
        }
    }
    Ok(Tensor::from_vec(out, (n, h * hd), q.device())?)
}
