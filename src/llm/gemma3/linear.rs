//! A weight matrix and its product with activations, in one of two arithmetics.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use ggml_exact::Products;

use crate::llm::LlmError;

/// A projection's weights.
pub enum Linear {
    /// The fast path: dense f32 (safetensors), or quantized (GGUF) products through candle, or
    /// through `ggml_exact::BlockMatrix` for a few rows of Q8_0.
    Candle(QMatMul),
    /// llama.cpp's CPU arithmetic to the bit (`Numerics::Ggml`).
    Exact(ggml_exact::Matrix),
}

/// Rows from which a quantized matrix is dequantized for a dense product.
const DENSE_FROM_ROWS: usize = 16;

impl Linear {
    /// Decodes a quantized GGUF tensor for llama.cpp's arithmetic.
    pub fn exact(q: &QTensor) -> Result<Self, LlmError> {
        let ty = match q.dtype() {
            GgmlDType::Q8_0 => ggml_exact::WeightType::Q8_0,
            GgmlDType::Q5_0 => ggml_exact::WeightType::Q5_0,
            GgmlDType::Q4K => ggml_exact::WeightType::Q4K,
            GgmlDType::Q6K => ggml_exact::WeightType::Q6K,
            other => {
                return Err(LlmError::Weights(format!(
                    "llama.cpp numerics are reproduced for Q8_0, Q5_0, Q4_K and Q6_K weights, not {other:?}"
                )))
            }
        };
        let (rows, cols) = q.shape().dims2()?;
        let m = ggml_exact::Matrix::decode(ty, &q.data()?, rows, cols)
            .map_err(|e| LlmError::Weights(e.to_string()))?;
        Ok(Linear::Exact(m))
    }

    /// `x @ w^T` for `x` of `[rows, in]`.
    ///
    /// With candle, many rows (prefill) multiply a dequantized copy of a quantized weight, which
    /// the dense kernels do an order of magnitude faster than row-by-row quantized dot products;
    /// a few rows (decoding) use the quantized kernels, which read far less memory.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, LlmError> {
        match self {
            Linear::Candle(QMatMul::QTensor(q)) if x.dim(0)? >= DENSE_FROM_ROWS => {
                Ok(x.matmul(&q.dequantize(x.device())?.t()?)?)
            }
            Linear::Candle(QMatMul::QTensor(q)) if x.device().is_cpu() => match block_matrix(q)? {
                Some(m) => Ok(parallel_matmul(&[&m], x)?.remove(0)),
                None => Ok(QMatMul::QTensor(q.clone()).forward(x)?),
            },
            Linear::Candle(w) => Ok(w.forward(x)?),
            Linear::Exact(m) => Ok(parallel_matmul(&[m], x)?.remove(0)),
        }
    }

    /// `x @ w^T` for several projections of the same input. A few rows through Q8_0/Q5_0
    /// blocks share one quantization of `x` and one hand-out of rows to the threads (decoding's
    /// q/k/v and gate/up), where one call each would wait on the threads three times.
    pub fn forward_many<const N: usize>(ls: [&Linear; N], x: &Tensor) -> Result<[Tensor; N], LlmError> {
        let few = x.dim(0)? < DENSE_FROM_ROWS && x.device().is_cpu();
        let blocks: Vec<_> = ls
            .iter()
            .map(|l| match l {
                Linear::Candle(QMatMul::QTensor(q)) if few => block_matrix(q),
                _ => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        let outs = match blocks.into_iter().collect::<Option<Vec<_>>>() {
            Some(ms) => parallel_matmul(&ms.iter().collect::<Vec<_>>(), x)?,
            None => ls.iter().map(|l| l.forward(x)).collect::<Result<Vec<_>, _>>()?,
        };
        Ok(outs.try_into().expect("N outputs"))
    }

    /// Dense weights (safetensors checkpoints).
    pub fn dense(t: Tensor) -> Self {
        Linear::Candle(QMatMul::Tensor(t))
    }

    /// A quantized weight for the fast path (candle's kernels, and `ggml_exact::BlockMatrix`
    /// for Q8_0 when decoding), re-encoded where that is faster (see `fast_type`).
    pub fn quantized(q: QTensor, device: &Device) -> Result<Self, LlmError> {
        Ok(Linear::Candle(QMatMul::from_qtensor(fast_type(q, device)?)?))
    }
}

/// `x @ m^T` for each matrix (all reading `x` the same way), their weight rows together split
/// over candle's CPU threads (a second pool would fight candle's spinning workers for the cores).
fn parallel_matmul<M: Products + Sync>(ms: &[&M], x: &Tensor) -> Result<Vec<Tensor>, LlmError> {
    struct Out(*mut f32);
    // SAFETY: the pointer is only written through disjoint ranges, below.
    unsafe impl Sync for Out {}
    let n = x.dim(0)?;
    let inputs = ms[0].quantize_inputs(&x.flatten_all()?.to_vec1::<f32>()?, n);
    let starts: Vec<usize> = ms.iter().scan(0, |at, m| Some(std::mem::replace(at, *at + m.rows()))).collect();
    let total: usize = ms.iter().map(|m| m.rows()).sum();
    let mut by_output = vec![0f32; total * n];
    let out = Out(by_output.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(total, |range| {
        let _ = &out;
        for (m, &start) in ms.iter().zip(&starts) {
            let (lo, hi) = (range.start.max(start), range.end.min(start + m.rows()));
            if lo < hi {
                // SAFETY: `execute_chunked` hands each call a range of its own inside `0..total`,
                // so the slices are disjoint and within `by_output`, which outlives the call.
                let part = unsafe { std::slice::from_raw_parts_mut(out.0.add(lo * n), (hi - lo) * n) };
                m.dot_rows(lo - start..hi - start, &inputs, part);
            }
        }
    });
    if let [m] = ms {
        // One matrix: the buffer is its output (no copy of, say, a whole vocabulary of logits).
        return Ok(vec![Tensor::from_vec(
            ggml_exact::transpose(by_output, m.rows(), n),
            (n, m.rows()),
            x.device(),
        )?]);
    }
    ms.iter()
        .zip(&starts)
        .map(|(m, &start)| {
            let part = by_output[start * n..(start + m.rows()) * n].to_vec();
            Ok(Tensor::from_vec(ggml_exact::transpose(part, m.rows(), n), (n, m.rows()), x.device())?)
        })
        .collect()
}

/// The blocks of a Q8_0 or Q5_0 matrix when `ggml_exact::BlockMatrix` can multiply them here
/// (AVX2): its kernels skip candle's per-call overhead, which decoding, one row at a time, is
/// mostly made of, and compute ggml's products exactly.
fn block_matrix(q: &QTensor) -> Result<Option<ggml_exact::BlockMatrix<'_>>, LlmError> {
    let ty = match q.dtype() {
        GgmlDType::Q8_0 => ggml_exact::WeightType::Q8_0,
        GgmlDType::Q5_0 => ggml_exact::WeightType::Q5_0,
        _ => return Ok(None),
    };
    let (rows, cols) = q.shape().dims2()?;
    // CPU tensors lend their bytes; the others would copy them on every call.
    let std::borrow::Cow::Borrowed(data) = q.data()? else { return Ok(None) };
    Ok(ggml_exact::BlockMatrix::new(ty, data, rows, cols))
}

/// Weights re-encoded at load for faster products. Q5_0 becomes Q8_0 without loss (the same
/// scale, the same values, so the same products as ggml's Q5_0 kernel): unpacking five-bit
/// codes made Q5_0 products compute-bound, slower than reading the larger Q8_0 blocks. Q4_1 and
/// Q5_1, which candle reads only with scalar code, are re-quantized to Q8_0 (each value within a
/// 127th of its block's largest, as ggml rounds the activations anyway).
fn fast_type(q: QTensor, device: &Device) -> Result<QTensor, LlmError> {
    match q.dtype() {
        GgmlDType::Q5_0 => {
            let bytes = ggml_exact::q5_0_as_q8_0(&q.data()?);
            let dims = q.shape().dims().to_vec();
            Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(GgmlDType::Q8_0, &bytes, dims, device)?)
        }
        GgmlDType::Q4_1 | GgmlDType::Q5_1 => Ok(QTensor::quantize(&q.dequantize(device)?, GgmlDType::Q8_0)?),
        _ => Ok(q),
    }
}
