//! Dot products of f16 vectors (attention's query-key and weight-value products, whose inputs
//! ggml holds as f16), in the two orders ggml uses. Inputs are f32 slices holding f16 values.

use crate::hsum8;

cpu_kernels::with_avx2! {
    /// tinyBLAS's order (llamafile `sgemm`, used for a batch of two or more tokens): eight lane
    /// accumulators, element `i` fused into lane `i % 8`, then `hsum8`. `a.len()` must be a multiple
    /// of 8.
    pub fn dot_f16_gemm(a: &[f32], b: &[f32]) -> f32 = gemm_order;
}

#[inline(always)]
fn gemm_order(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for r in 0..8 {
            acc[r] = ca[r].mul_add(cb[r], acc[r]);
        }
    }
    hsum8(&acc)
}

cpu_kernels::with_avx2! {
    /// `ggml_vec_dot_f16`'s order (one token at a time): four accumulators of eight lanes over
    /// steps of 32, reduced as `GGML_F32x8_REDUCE` does, and any tail added in f64.
    pub fn dot_f16_vec(a: &[f32], b: &[f32]) -> f32 = vec_order;
}

#[inline(always)]
fn vec_order(a: &[f32], b: &[f32]) -> f32 {
    {
        let n = a.len().min(b.len());
        let np = n & !31;
        let mut sum = [[0f32; 8]; 4];
        for i in (0..np).step_by(32) {
            for (j, s) in sum.iter_mut().enumerate() {
                for r in 0..8 {
                    let k = i + 8 * j + r;
                    s[r] = a[k].mul_add(b[k], s[r]);
                }
            }
        }
        let mut x = [0f32; 8];
        for r in 0..8 {
            x[r] = (sum[0][r] + sum[2][r]) + (sum[1][r] + sum[3][r]);
        }
        let t = [x[0] + x[4], x[1] + x[5], x[2] + x[6], x[3] + x[7]];
        let mut total = f64::from((t[0] + t[1]) + (t[2] + t[3]));
        for k in np..n {
            total += f64::from(a[k] * b[k]);
        }
        total as f32
    }
}
