//! llama.cpp's CPU arithmetic (its ggml x86 build with AVX2, FMA and F16C), reproduced so that a
//! model run with it rounds exactly as llama.cpp does.
//!
//! Why this exists: a model with quantized weights rounds every matrix product's input to 8-bit
//! integers, so a last-bit difference in an activation sometimes moves it a whole quantization
//! step, and a small model turns such steps into logit differences of tenths. Following
//! llama.cpp's greedy output token for token therefore needs its results to the bit, which
//! depends on the order of its floating-point operations, not only on the formulas. Each kernel
//! here documents the ggml kernel it mirrors. Integer parts are exact whatever the order; every
//! floating-point step (fused multiply-adds, lane-wise accumulators, horizontal sums) is done in
//! ggml's order.
//!
//! The kernels are plain Rust, compiled for AVX2 and FMA where the CPU has them
//! (`cpu_kernels::with_avx2!`; a fused multiply-add is exact either way, without FMA a slow
//! library call).

// Lane loops index several arrays by the same SIMD lane number, as the kernels they mirror do.
#![allow(clippy::needless_range_loop)]

mod blocks;
mod dot;
mod f16dot;
mod matrix;
mod quant;
mod softmax;

pub use blocks::{q5_0_as_q8_0, BlockMatrix};
pub use f16dot::{dot_f16_gemm, dot_f16_vec};
pub use matrix::{Matrix, WeightType};
pub use quant::{quantize_q8_0, quantize_q8_k, QuantKind, QuantRow, QuantRowError};
pub use softmax::{exp_f32x8, softmax};

/// ggml's `hsum_float_8` (and tinyBLAS's `hsum`): the high half added to the low half, then
/// lanes 0+2 and 1+3, then those two.
#[inline(always)]
pub(crate) fn hsum8(a: &[f32; 8]) -> f32 {
    let r = [a[4] + a[0], a[5] + a[1], a[6] + a[2], a[7] + a[3]];
    (r[0] + r[2]) + (r[1] + r[3])
}

/// A weight matrix's products with activations, output rows at a time, so that callers can
/// split the rows over their own threads; every output is computed whole by one call.
pub trait Products {
    fn rows(&self) -> usize;

    /// The `n` input rows of `x` quantized as the products read them.
    fn quantize_inputs(&self, x: &[f32], n: usize) -> Vec<QuantRow>;

    /// The outputs of weight rows `rows` for every input, output-major: `out[(o - rows.start) *
    /// inputs.len() + i]`. Which kernel ggml runs may depend on how many inputs there are.
    ///
    /// Panics unless every input is a row as `quantize_inputs` makes them (its kind, one value
    /// per column): a row of another length is refused, never read past.
    fn dot_rows(&self, rows: std::ops::Range<usize>, inputs: &[QuantRow], out: &mut [f32]);

    /// `x @ self^T` for `n` input rows, `n x rows`, on this thread.
    fn matmul(&self, x: &[f32], n: usize) -> Vec<f32> {
        let inputs = self.quantize_inputs(x, n);
        let mut by_output = vec![0f32; self.rows() * n];
        self.dot_rows(0..self.rows(), &inputs, &mut by_output);
        transpose(by_output, self.rows(), n)
    }
}

/// `[rows, n]` to `[n, rows]` (one input row: already in place).
pub fn transpose(by_output: Vec<f32>, rows: usize, n: usize) -> Vec<f32> {
    if n == 1 {
        return by_output;
    }
    let mut out = vec![0f32; n * rows];
    for o in 0..rows {
        for i in 0..n {
            out[i * rows + o] = by_output[o * n + i];
        }
    }
    out
}
