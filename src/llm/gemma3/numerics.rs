//! How intermediate values are rounded, and llama.cpp's CPU rounding reproduced step by step.
//!
//! A model with quantized weights is sensitive to the last bits of its activations: every
//! quantized product rounds its input to 8-bit integers, so a value one f32 ulp away from a
//! rounding boundary moves a whole quantization step, and the 270M model turns such flips into
//! logit differences of 0.2 on average. To follow llama.cpp's greedy continuations token for
//! token, `Numerics::Ggml` computes what llama.cpp computes, to the bit: its RMSNorm, RoPE and
//! GeLU formulas here, its quantized products and attention in the `ggml-exact` crate (see
//! `linear.rs` and `exact_attention.rs`).

use candle_core::{DType, Tensor};

use crate::llm::LlmError;

/// How intermediate values are rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Numerics {
    /// f32 throughout, as the reference implementation computes.
    F32,
    /// llama.cpp's CPU arithmetic (x86, AVX2), for GGUF models, reproduced to the bit so that
    /// greedy runs are llama.cpp's: activations quantized as its kernels quantize them, its
    /// kernels' order of floating-point operations, f16 keys, values and attention weights, GeLU
    /// from an f16 table. Several times slower than `F32`; for comparisons with llama.cpp.
    Ggml,
}

/// ggml's RMSNorm: squares summed in f64, `scale = 1 / sqrt(mean + eps)` in f32, then
/// `x * scale * w` (a multiplication by the reciprocal, where candle divides).
pub fn rms_norm_ggml(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor, LlmError> {
    let dim = w.dim(0)?;
    let w = w.to_vec1::<f32>()?;
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    for row in v.chunks_mut(dim) {
        let sum: f64 = row.iter().map(|&x| f64::from(x * x)).sum();
        let mean = (sum / dim as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        row.iter_mut().zip(&w).for_each(|(x, w)| *x = *x * scale * w);
    }
    Ok(Tensor::from_vec(v, x.shape(), x.device())?)
}

/// `gelu(gate) * up` as ggml's `geglu` computes it: GeLU read from a table indexed by the f16
/// value of the gate (the table holds f16 results), the identity from 10 up and 0 from -10 down.
pub fn geglu_ggml(gate: &Tensor, up: &Tensor) -> Result<Tensor, LlmError> {
    use half::f16;
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    // The compiler contracts `1 + a*x*x` into a fused multiply-add.
    let gelu = |x: f32| 0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (0.044715 * x).mul_add(x, 1.0)).tanh());
    let g = gate.flatten_all()?.to_vec1::<f32>()?;
    let u = up.flatten_all()?.to_vec1::<f32>()?;
    let out: Vec<f32> = g
        .iter()
        .zip(&u)
        .map(|(&x, &u)| match x {
            x if x <= -10.0 => 0.0,
            x if x >= 10.0 => x * u,
            x => f16::from_f32(gelu(f16::from_f32(x).to_f32())).to_f32() * u,
        })
        .collect();
    Ok(Tensor::from_vec(out, gate.shape(), gate.device())?)
}

/// Rounds through f16, as llama.cpp's f16 KV cache and f16 attention products do.
pub fn round_f16(t: &Tensor) -> Result<Tensor, LlmError> {
    Ok(t.to_dtype(DType::F16)?.to_dtype(DType::F32)?)
}
