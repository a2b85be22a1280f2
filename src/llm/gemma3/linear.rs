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

/// Q4_1, Q5_0 and Q5_1 weights re-quantized to Q8_0 at load: candle has no SIMD kernels for
/// them, and their scalar dot products made decoding several times slower. Q8_0 holds each of
/// their values within a 127th of the block's largest (the products stay within ggml's own
/// Q8_0 activation rounding), for a little more memory.
fn fast_type(q: QTensor, device: &Device) -> Result<QTensor, LlmError> {
    match q.dtype() {
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 => {
            Ok(QTensor::quantize(&q.dequantize(device)?, GgmlDType::Q8_0)?)
        }
        _ => Ok(q),
    }
}
