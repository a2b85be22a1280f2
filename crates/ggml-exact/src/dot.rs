//! One weight row times one quantized input row, per weight type, in the order of the ggml
//! kernel llama.cpp's x86 build runs for it.

use crate::hsum8;
use crate::quant::QuantRow;

/// Sum of four consecutive code products: one 32-bit lane of `maddubs` + `madd`.
#[inline(always)]
fn quad<A: Copy + Into<i32>>(w: &[A], x: &[i8]) -> i32 {
    (0..4).map(|e| w[e].into() * i32::from(x[e])).sum()
}

/// Q8_0 and Q5_0 weights with Q8_0 inputs (`ggml_vec_dot_q8_0_q8_0`/`q5_0_q8_0` and tinyBLAS's
/// `tinyBLAS_Q0_AVX`, which agree): per block the scale product `dw * dx`, fused into eight
/// lane accumulators, lane `m` holding codes `4m..4m+3`; then `hsum8`.
#[inline(always)]
pub fn q0(wq: &[i8], wd: &[f32], x: &QuantRow) -> f32 {
    let (xq, xd) = (x.q(), x.d());
    let mut acc = [0f32; 8];
    for (b, (&dw, &dx)) in wd.iter().zip(xd).enumerate() {
        let d = dw * dx;
        for (m, a) in acc.iter_mut().enumerate() {
            let at = 32 * b + 4 * m;
            *a = (quad(&wq[at..at + 4], &xq[at..at + 4]) as f32).mul_add(d, *a);
        }
    }
    hsum8(&acc)
}

/// How llama.cpp's repacked Q4_K kernels group a superblock's sums before scaling them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Q4kGrouping {
    /// `ggml_gemv_q4_K_8x8_q8_K` (input rows left over from groups of four): one fused
    /// multiply-add per superblock.
    Superblock,
    /// `ggml_gemm_q4_K_8x8_q8_K` (input rows in groups of four): one per 64 codes.
    Pairs,
}

/// Q4_K weights with Q8_K inputs, as the repacked `ggml_gemv/gemm_q4_K_8x8_q8_K` compute them
/// (llama.cpp repacks Q4_K matrices on AVX2 machines): integer sums and integer min corrections,
/// each fused into its own accumulator with `dw * dx` and `dmin * dx`, per superblock or per 64
/// codes; the result is their difference.
#[inline(always)]
pub fn q4k(w: Q4kRow<'_>, x: &QuantRow, grouping: Q4kGrouping) -> f32 {
    let (xq, xd, xbsums) = (x.q(), x.d(), x.bsums());
    let (mut acc, mut acc_min) = (0f32, 0f32);
    for b in 0..w.d.len() {
        let (scale, min_scale) = (w.d[b] * xd[b], w.dmin[b] * xd[b]);
        let (mut sum, mut min) = (0i32, 0i32);
        for s in 0..8 {
            let at = 256 * b + 32 * s;
            let dot: i32 = (0..32).map(|e| i32::from(w.q[at + e]) * i32::from(xq[at + e])).sum();
            sum += i32::from(w.scales[8 * b + s]) * dot;
            min += i32::from(w.mins[8 * b + s]) * (xbsums[16 * b + 2 * s] + xbsums[16 * b + 2 * s + 1]);
            if grouping == Q4kGrouping::Pairs && s % 2 == 1 {
                acc = (sum as f32).mul_add(scale, acc);
                acc_min = (min as f32).mul_add(min_scale, acc_min);
                (sum, min) = (0, 0);
            }
        }
        if grouping == Q4kGrouping::Superblock {
            acc = (sum as f32).mul_add(scale, acc);
            acc_min = (min as f32).mul_add(min_scale, acc_min);
        }
    }
    acc - acc_min
}

/// One Q4_K weight row.
pub struct Q4kRow<'a> {
    pub q: &'a [u8],
    pub d: &'a [f32],
    pub dmin: &'a [f32],
    pub scales: &'a [u8],
    pub mins: &'a [u8],
}

/// Q6_K weights with Q8_K inputs (`ggml_vec_dot_q6_K_q8_K`, AVX2): codes used unsigned (0..63)
/// with the offset of 32 taken off per lane as `32 * scale * bsum`; lane `m` of each 32 codes
/// holds codes `4m..4m+3`, times their 16-code scale; each superblock's lanes are fused into
/// eight accumulators with `dx * dw`; then `hsum8`.
#[inline(always)]
pub fn q6k(q: &[u8], d: &[f32], scales: &[i8], x: &QuantRow) -> f32 {
    let (xq, xd, xbsums) = (x.q(), x.d(), x.bsums());
    let mut acc = [0f32; 8];
    for b in 0..d.len() {
        let sc = &scales[16 * b..16 * b + 16];
        let bs = &xbsums[16 * b..16 * b + 16];
        let mut lanes = [0i32; 8];
        for c in 0..8 {
            for (m, lane) in lanes.iter_mut().enumerate() {
                let at = 256 * b + 32 * c + 4 * m;
                *lane += i32::from(sc[2 * c + m / 4]) * quad(&q[at..at + 4], &xq[at..at + 4]);
            }
        }
        let scale = xd[b] * d[b];
        for (m, a) in acc.iter_mut().enumerate() {
            let offset = 32 * (bs[2 * m] * i32::from(sc[2 * m]) + bs[2 * m + 1] * i32::from(sc[2 * m + 1]));
            *a = ((lanes[m] - offset) as f32).mul_add(scale, *a);
        }
    }
    hsum8(&acc)
}

/// Q6_K weights with Q8_K inputs in ggml's tiled matrix product (`tiled_run_microtile_avx2`,
/// taken for eight or more input rows when the weights are not repacked): per superblock the
/// exact integer sum, times the weight scale, fused into the accumulator with the input scale.
#[inline(always)]
pub fn q6k_tiled(q: &[u8], d: &[f32], scales: &[i8], x: &QuantRow) -> f32 {
    let (xq, xd) = (x.q(), x.d());
    let mut acc = 0f32;
    for b in 0..d.len() {
        let mut sum = 0i32;
        for s in 0..16 {
            let at = 256 * b + 16 * s;
            let dot: i32 = (0..16).map(|e| (i32::from(q[at + e]) - 32) * i32::from(xq[at + e])).sum();
            sum += i32::from(scales[16 * b + s]) * dot;
        }
        acc = (d[b] * sum as f32).mul_add(xd[b], acc);
    }
    acc
}
