//! Products with Q8_0 and Q5_0 matrices read straight from their GGUF blocks, with AVX2: the
//! fast path for a few input rows (decoding), where reading the weights is the whole cost and
//! the smaller Q5_0 blocks are worth keeping. The arithmetic is `dot::q0`'s (ggml's), lane for
//! lane, so results are the same as `Matrix`'s.

use crate::matrix::WeightType;
use crate::quant::{assert_inputs, quantize_q8_0, QuantKind, QuantRow};
use crate::Products;

/// A borrowed `[rows, cols]` Q8_0 or Q5_0 matrix in GGUF's block layout.
#[derive(Clone, Copy)]
pub struct BlockMatrix<'a> {
    ty: WeightType,
    data: &'a [u8],
    rows: usize,
    cols: usize,
}

impl<'a> BlockMatrix<'a> {
    /// `None` unless the type is Q8_0 or Q5_0, the shape fits the data, and the CPU has AVX2,
    /// FMA and F16C.
    pub fn new(ty: WeightType, data: &'a [u8], rows: usize, cols: usize) -> Option<Self> {
        let bytes = match ty {
            WeightType::Q8_0 => 34,
            WeightType::Q5_0 => 22,
            _ => return None,
        };
        let fits = cols % 32 == 0 && data.len() == rows * cols / 32 * bytes;
        (fits && supported()).then_some(Self { ty, data, rows, cols })
    }
}

impl Products for BlockMatrix<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn quantize_inputs(&self, x: &[f32], n: usize) -> Vec<QuantRow> {
        x.chunks_exact(self.cols).take(n).map(quantize_q8_0).collect()
    }

    fn dot_rows(&self, rows: std::ops::Range<usize>, inputs: &[QuantRow], out: &mut [f32]) {
        assert_inputs(inputs, QuantKind::Q8_0, self.cols);
        let row_bytes = self.cols / 32 * if self.ty == WeightType::Q8_0 { 34 } else { 22 };
        let n = inputs.len();
        let row = |o: usize| &self.data[o * row_bytes..(o + 1) * row_bytes];
        // Four rows at a time: four independent accumulations keep the multipliers busy where
        // one row's chain of dependent additions would wait on each, and the input's codes are
        // loaded once for the four. Each row's sum is formed exactly as alone.
        let mut at = rows.start;
        for out in out.chunks_mut(4 * n).take_while(|c| c.len() == 4 * n) {
            let ws = [row(at), row(at + 1), row(at + 2), row(at + 3)];
            for (xi, x) in inputs.iter().enumerate() {
                // SAFETY: `new` checked the CPU features (`dot` checks the lengths itself).
                let v = unsafe { avx2::dot(self.ty, ws, x) };
                (0..4).for_each(|r| out[r * n + xi] = v[r]);
            }
            at += 4;
        }
        for (o, out) in (at..rows.end).zip(out[(at - rows.start) * n..].chunks_mut(n)) {
            for (v, x) in out.iter_mut().zip(inputs) {
                // SAFETY: as above.
                *v = unsafe { avx2::dot(self.ty, [row(o)], x) }[0];
            }
        }
    }
}

fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use crate::matrix::WeightType;
    use crate::quant::QuantRow;

    /// ggml's `ggml_vec_dot_q8_0_q8_0` / `q5_0_q8_0` (AVX2) on each of `N` weight rows of
    /// equal length, in lockstep; each row's result is the one-row kernel's, bit for bit.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C. Lengths need no promise: the rows and the input's
    /// codes are checked here to cover the blocks before the unchecked 32-byte loads read them.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot<const N: usize>(ty: WeightType, w: [&[u8]; N], x: &QuantRow) -> [f32; N] {
        let mut acc = [_mm256_setzero_ps(); N];
        let bytes = if ty == WeightType::Q8_0 { 34 } else { 22 };
        let (xq, xd) = (x.q(), x.d());
        let blocks = w[0].len() / bytes;
        assert!(
            w.iter().all(|r| r.len() == blocks * bytes) && xd.len() >= blocks && xq.len() >= 32 * blocks,
            "rows of {blocks} blocks times an input of {} codes and {} scales",
            xq.len(),
            xd.len()
        );
        for (b, &dx) in xd.iter().enumerate().take(blocks) {
            let qy = _mm256_loadu_si256(xq.as_ptr().add(32 * b) as *const __m256i);
            for r in 0..N {
                let blk = w[r].get_unchecked(b * bytes..(b + 1) * bytes);
                let dw = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(u16::from_le_bytes([
                    blk[0], blk[1],
                ])))));
                let d = _mm256_set1_ps(dw * dx);
                let qx = match ty {
                    WeightType::Q8_0 => _mm256_loadu_si256(blk.as_ptr().add(2) as *const __m256i),
                    _ => q5_0_codes(blk),
                };
                acc[r] = _mm256_fmadd_ps(d, mul_sum_i8_pairs_float(qx, qy), acc[r]);
            }
        }
        let mut out = [0.0; N];
        for r in 0..N {
            out[r] = hsum_float_8(acc[r]);
        }
        out
    }

    /// A Q5_0 block's 32 signed codes (`bytes_from_nibbles_32` and `bytes_from_bits_32`).
    ///
    /// # Safety
    /// The CPU must have AVX2, and `blk` must be a whole block (22 bytes): its last 16 are
    /// loaded without a bounds check.
    #[inline(always)]
    unsafe fn q5_0_codes(blk: &[u8]) -> __m256i {
        let qh = u32::from_le_bytes([blk[2], blk[3], blk[4], blk[5]]);
        let tmp = _mm_loadu_si128(blk.as_ptr().add(6) as *const __m128i);
        let nibbles = _mm256_and_si256(
            _mm256_insertf128_si256(_mm256_castsi128_si256(tmp), _mm_srli_epi16(tmp, 4), 1),
            _mm256_set1_epi8(0xF),
        );
        let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
        let bits = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), shuf);
        let bits = _mm256_or_si256(bits, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
        let set = _mm256_cmpeq_epi8(bits, _mm256_set1_epi64x(-1));
        _mm256_or_si256(nibbles, _mm256_andnot_si256(set, _mm256_set1_epi8(0xF0u8 as i8)))
    }

    /// Eight lanes, each the sum of four consecutive code products, as floats.
    ///
    /// # Safety
    /// The CPU must have AVX2 (registers only; no memory is read).
    #[inline(always)]
    unsafe fn mul_sum_i8_pairs_float(x: __m256i, y: __m256i) -> __m256 {
        let ax = _mm256_sign_epi8(x, x);
        let sy = _mm256_sign_epi8(y, x);
        let dot = _mm256_maddubs_epi16(ax, sy);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
    }

    /// ggml's `hsum_float_8`: the eight lanes summed in its order.
    ///
    /// # Safety
    /// The CPU must have AVX (registers only; no memory is read).
    #[inline(always)]
    unsafe fn hsum_float_8(x: __m256) -> f32 {
        let mut res = _mm256_extractf128_ps(x, 1);
        res = _mm_add_ps(res, _mm256_castps256_ps128(x));
        res = _mm_add_ps(res, _mm_movehl_ps(res, res));
        res = _mm_add_ss(res, _mm_movehdup_ps(res));
        _mm_cvtss_f32(res)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use crate::matrix::WeightType;
    use crate::quant::QuantRow;

    /// A stand-in for the AVX2 kernel where there is none.
    ///
    /// # Safety
    /// Never called: `BlockMatrix::new` refuses CPUs without AVX2, so no `BlockMatrix` exists
    /// to call it (it would panic, not misbehave).
    pub unsafe fn dot<const N: usize>(_: WeightType, _: [&[u8]; N], _: &QuantRow) -> [f32; N] {
        unreachable!("BlockMatrix::new refuses CPUs without AVX2")
    }
}

/// Q5_0 blocks re-encoded as Q8_0 without loss: the same scale, each 5-bit code minus 16 as a
/// byte. Every value, and every product ggml's kernels compute from it, stays the same, while
/// the Q8_0 kernel skips the bit unpacking that makes Q5_0 products compute-bound.
pub fn q5_0_as_q8_0(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 22 * 34);
    for b in data.chunks_exact(22) {
        out.extend_from_slice(&b[..2]);
        out.extend(crate::matrix::decode_q5_0(b).iter().map(|&c| c as u8));
    }
    out
}
