//! Activation quantizers: the row of a matrix product's input as ggml rounds it.

use half::f16;

/// A quantized row: integer codes, one scale per block, and (Q8_K) the sum of each 16 codes.
#[derive(Debug, Clone)]
pub struct QuantRow {
    pub q: Vec<i8>,
    pub d: Vec<f32>,
    pub bsums: Vec<i32>,
}

impl QuantRow {
    /// The values the codes stand for.
    pub fn dequantize(&self) -> Vec<f32> {
        let block = self.q.len() / self.d.len().max(1);
        self.q.iter().enumerate().map(|(i, &q)| f32::from(q) * self.d[i / block]).collect()
    }
}

/// ggml's x86 `quantize_row_q8_0` (AVX2): blocks of 32, multiplier `127 / amax`, rounding half
/// to even, scale `amax / 127` kept as f16 (the portable reference differs: `1 / scale`, half
/// away from zero). `x.len()` must be a multiple of 32.
pub fn quantize_q8_0(x: &[f32]) -> QuantRow {
    let mut q = Vec::with_capacity(x.len());
    let mut d = Vec::with_capacity(x.len() / 32);
    for b in x.chunks(32) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        d.push(f16::from_f32(amax / 127.0).to_f32());
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        q.extend(b.iter().map(|v| (v * id).round_ties_even().clamp(-128.0, 127.0) as i8));
    }
    QuantRow { q, d, bsums: Vec::new() }
}

/// ggml's `quantize_row_q8_K`: blocks of 256, multiplier `-127 / max` by the signed extreme,
/// `nearest_int` (half to even), codes capped at 127, scale `1 / multiplier`, and the sum of
/// every 16 codes. `x.len()` must be a multiple of 256.
pub fn quantize_q8_k(x: &[f32]) -> QuantRow {
    let mut q = Vec::with_capacity(x.len());
    let mut d = Vec::with_capacity(x.len() / 256);
    for b in x.chunks(256) {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in b {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            d.push(0.0);
            q.extend(std::iter::repeat_n(0i8, b.len()));
            continue;
        }
        let iscale = -127.0 / max;
        q.extend(b.iter().map(|v| (iscale * v).round_ties_even().min(127.0) as i8));
        d.push(1.0 / iscale);
    }
    let bsums = q.chunks(16).map(|c| c.iter().map(|&v| i32::from(v)).sum()).collect();
    QuantRow { q, d, bsums }
}
