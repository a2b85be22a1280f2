//! A weight matrix and its product with activations, in one of two arithmetics.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::llm::LlmError;

/// A projection's weights.
pub enum Linear {
    /// candle's kernels: dense f32, or quantized (GGUF) with f32 activations.
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
                Some((data, ty, rows, cols)) => {
                    let m = ggml_exact::BlockMatrix::new(ty, &data, rows, cols).expect("checked");
                    block_matmul(&m, x)
                }
                None => Ok(QMatMul::QTensor(q.clone()).forward(x)?),
            },
            Linear::Candle(w) => Ok(w.forward(x)?),
            Linear::Exact(m) => {
                let n = x.dim(0)?;
                let out = m.matmul(&x.flatten_all()?.to_vec1::<f32>()?, n);
                Ok(Tensor::from_vec(out, (n, m.rows()), x.device())?)
            }
        }
    }

    /// Dense weights (safetensors checkpoints).
    pub fn dense(t: Tensor) -> Self {
        Linear::Candle(QMatMul::Tensor(t))
    }

    /// A quantized weight for candle's kernels, re-quantized where candle is slow (see
    /// `fast_type`).
    pub fn quantized(q: QTensor, device: &Device) -> Result<Self, LlmError> {
        Ok(Linear::Candle(QMatMul::from_qtensor(fast_type(q, device)?)?))
    }
}

/// `x @ m^T`, the weight rows split over candle's CPU threads (a second pool would fight
/// candle's spinning workers for the cores).
fn block_matmul(m: &ggml_exact::BlockMatrix<'_>, x: &Tensor) -> Result<Tensor, LlmError> {
    struct Out(*mut f32);
    // SAFETY: the pointer is only written through disjoint ranges, below.
    unsafe impl Sync for Out {}
    let n = x.dim(0)?;
    let inputs = m.quantize_inputs(&x.flatten_all()?.to_vec1::<f32>()?, n);
    let rows = m.rows();
    let mut by_output = vec![0f32; rows * n];
    let out = Out(by_output.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        let _ = &out;
        // SAFETY: `execute_chunked` hands each call a range of its own, inside `0..rows`, so
        // the slices are disjoint and within `by_output`, which outlives the call.
        let part = unsafe { std::slice::from_raw_parts_mut(out.0.add(range.start * n), range.len() * n) };
        m.dot_rows(range, &inputs, part);
    });
    Ok(Tensor::from_vec(ggml_exact::transpose(&by_output, rows, n), (n, rows), x.device())?)
}

/// The blocks of a Q8_0 or Q5_0 matrix when `ggml_exact::BlockMatrix` can multiply them here
/// (AVX2): its kernels read Q5_0 as it is stored and skip candle's per-call overhead, which
/// decoding, one row at a time, is mostly made of.
fn block_matrix(q: &QTensor) -> Result<Option<(std::borrow::Cow<'_, [u8]>, ggml_exact::WeightType, usize, usize)>, LlmError> {
    let ty = match q.dtype() {
        GgmlDType::Q8_0 => ggml_exact::WeightType::Q8_0,
        GgmlDType::Q5_0 => ggml_exact::WeightType::Q5_0,
        _ => return Ok(None),
    };
    let (rows, cols) = q.shape().dims2()?;
    let data = q.data()?;
    let usable = ggml_exact::BlockMatrix::new(ty, &data, rows, cols).is_some();
    Ok(usable.then_some((data, ty, rows, cols)))
}

/// Q4_1, Q5_0 and Q5_1 weights re-quantized to Q8_0 at load where no SIMD kernel reads them
/// (candle has none; `ggml_exact::BlockMatrix` reads Q5_0 on AVX2 machines): scalar dot
/// products made decoding several times slower. Q8_0 holds each of their values within a 127th
/// of the block's largest (the products stay within ggml's own Q8_0 activation rounding), for a
/// little more memory.
fn fast_type(q: QTensor, device: &Device) -> Result<QTensor, LlmError> {
    let keep = q.dtype() == GgmlDType::Q5_0 && block_matrix(&q)?.is_some();
    match q.dtype() {
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 if !keep => {
            Ok(QTensor::quantize(&q.dequantize(device)?, GgmlDType::Q8_0)?)
        }
        _ => Ok(q),
    }
}
