//! ggml's softmax (`ggml_compute_forward_soft_max_f32` with `ggml_vec_soft_max_f32`), including
//! its own vectorised exponential.

use crate::hsum8;

cpu_kernels::with_avx2! {
    /// Softmax of a row of scores in place; masked entries hold `-inf`. Exponentials are taken
    /// in blocks of 8 from the start of the row, each block's horizontal sum added to an f64
    /// total, and the row scaled by `1 / total` rounded to f32. `row.len()` must be a multiple
    /// of 8, with the row indexed as ggml indexes its KV cells.
    pub fn softmax(row: &mut [f32]) -> () = softmax_inner;
}

#[inline(always)]
fn softmax_inner(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| if m > x { m } else { x });
    let mut sum = 0f64;
    for block in row.chunks_exact_mut(8) {
        if block.iter().all(|x| *x == f32::NEG_INFINITY) {
            block.fill(0.0);
            continue;
        }
        let mut v = [0f32; 8];
        for (o, x) in v.iter_mut().zip(block.iter()) {
            *o = exp_f32x8(*x - max);
        }
        block.copy_from_slice(&v);
        sum += f64::from(hsum8(&v));
    }
    let scale = (1.0 / sum) as f32;
    row.iter_mut().for_each(|x| *x *= scale);
}

/// One lane of ggml's AVX2 `ggml_v_expf` (a polynomial with its own range reduction; it is not
/// the C library's `expf`, and differs from it in the last bit now and then).
#[inline(always)]
pub fn exp_f32x8(x: f32) -> f32 {
    let c = f32::from_bits;
    let r = c(0x4b40_0000); // 0x1.8p23
    let z = x.mul_add(c(0x3fb8_aa3b), r);
    let n = z - r;
    let b = (-n).mul_add(c(0x35bf_be8e), (-n).mul_add(c(0x3f31_7200), x));
    let e = z.to_bits() << 23;
    let k = f32::from_bits(e.wrapping_add(1f32.to_bits()));
    let u = b * b;
    let j = c(0x3c07_2010)
        .mul_add(b, c(0x3d2b_9f17))
        .mul_add(u, c(0x3e2a_af33).mul_add(b, c(0x3eff_fedb)))
        .mul_add(u, c(0x3f7f_fff6) * b);
    if n.abs() <= 126.0 {
        return j.mul_add(k, k);
    }
    let g: u32 = if n <= 0.0 { 0x8200_0000 } else { 0 };
    let s1 = f32::from_bits(g.wrapping_add(0x7f00_0000));
    let s2 = f32::from_bits(e.wrapping_sub(g));
    if n.abs() > 192.0 {
        s1 * s1
    } else {
        s2.mul_add(j, s2) * s1
    }
}
