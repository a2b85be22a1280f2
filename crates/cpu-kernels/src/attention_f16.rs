//! One-token attention over an f16 KV cache (GGUF models keep their cache in f16, as llama.cpp
//! does: half the memory, and decoding reads the cache once per token).

use half::f16;

use crate::attention::{AttentionShape, Partial};

/// Keys or values as a cache holds them.
#[derive(Clone, Copy)]
pub enum KvSlice<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

/// `attend_part` or `attend_part_f16`, by how the cache holds keys and values; `None` when the
/// two are held differently.
pub fn attend_part_kv(
    q: &[f32],
    k: KvSlice<'_>,
    v: KvSlice<'_>,
    shape: AttentionShape,
    keys: std::ops::Range<usize>,
    scale: f32,
) -> Option<Partial> {
    match (k, v) {
        (KvSlice::F32(k), KvSlice::F32(v)) => Some(crate::attend_part(q, k, v, shape, keys, scale)),
        (KvSlice::F16(k), KvSlice::F16(v)) => Some(attend_part_f16(q, k, v, shape, keys, scale)),
        _ => None,
    }
}

/// As `attend_part`, with keys and values held as f16 (products and sums in f32).
pub fn attend_part_f16(
    q: &[f32],
    k: &[f16],
    v: &[f16],
    shape: AttentionShape,
    keys: std::ops::Range<usize>,
    scale: f32,
) -> Partial {
    #[cfg(target_arch = "x86_64")]
    if crate::has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
        // SAFETY: the CPU has AVX2, FMA and F16C.
        return unsafe { x86::attend(q, k, v, shape, keys, scale) };
    }
    // Elsewhere: widen the cache and use the f32 kernel.
    let widen = |t: &[f16]| t.iter().map(|x| x.to_f32()).collect::<Vec<f32>>();
    crate::attend_part(q, &widen(k), &widen(v), shape, keys, scale)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    use crate::attention::{exponentiate, AttentionShape, Partial};

    /// `attend_part_f16` with AVX2: keys and values widened from f16 eight at a time.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C. Lengths need no promise: the asserts at the top
    /// check that every pointer offset below stays inside `q`, `k`, `v` and the output.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn attend(
        q: &[f32],
        k: &[f16],
        v: &[f16],
        AttentionShape { heads, kv_heads, head_dim: hd, held }: AttentionShape,
        keys: std::ops::Range<usize>,
        scale: f32,
    ) -> Partial {
        let kv_len = kv_heads.checked_mul(held).and_then(|n| n.checked_mul(hd));
        let q_len = heads.checked_mul(hd);
        assert!(hd % 8 == 0 && kv_len.is_some_and(|n| k.len() >= n && v.len() >= n));
        assert!(keys.end <= held && q_len.is_some_and(|n| q.len() >= n));
        let rep = heads / kv_heads;
        let n = keys.len();
        let mut out = vec![0f32; heads * hd];
        let (mut maxes, mut sums) = (vec![0f32; heads], vec![0f32; heads]);
        let mut scores = vec![0f32; rep * n];
        for g in 0..kv_heads {
            let kg = k.as_ptr().add(g * held * hd) as *const u16;
            let vg = v.as_ptr().add(g * held * hd) as *const u16;
            let qg = q.as_ptr().add(g * rep * hd);
            for (j, key) in keys.clone().enumerate() {
                let kr = kg.add(key * hd);
                for r in 0..rep {
                    let qr = qg.add(r * hd);
                    let mut acc = _mm256_setzero_ps();
                    for d in (0..hd).step_by(8) {
                        let kx = _mm256_cvtph_ps(_mm_loadu_si128(kr.add(d) as *const __m128i));
                        acc = _mm256_fmadd_ps(kx, _mm256_loadu_ps(qr.add(d)), acc);
                    }
                    scores[r * n + j] = hsum(acc) * scale;
                }
            }
            for (r, row) in scores.chunks_mut(n).enumerate() {
                (maxes[g * rep + r], sums[g * rep + r]) = exponentiate(row);
            }
            let og = out.as_mut_ptr().add(g * rep * hd);
            for (j, key) in keys.clone().enumerate() {
                let vr = vg.add(key * hd);
                for r in 0..rep {
                    let p = _mm256_set1_ps(scores[r * n + j]);
                    let orow = og.add(r * hd);
                    for d in (0..hd).step_by(8) {
                        let vx = _mm256_cvtph_ps(_mm_loadu_si128(vr.add(d) as *const __m128i));
                        _mm256_storeu_ps(orow.add(d), _mm256_fmadd_ps(p, vx, _mm256_loadu_ps(orow.add(d))));
                    }
                }
            }
        }
        Partial { max: maxes, sum: sums, out }
    }

    /// The eight lanes' sum.
    ///
    /// # Safety
    /// The CPU must have AVX (registers only; no memory is read).
    #[inline(always)]
    unsafe fn hsum(x: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_f32_kernel_on_the_same_values() {
        let shape = AttentionShape { heads: 4, kv_heads: 1, head_dim: 16, held: 20 };
        let (q, k, v) = crate::test_inputs(shape);
        let half = |t: &[f32]| t.iter().map(|x| f16::from_f32(*x)).collect::<Vec<f16>>();
        let (k16, v16) = (half(&k), half(&v));
        let (k32, v32): (Vec<f32>, Vec<f32>) =
            (k16.iter().map(|x| x.to_f32()).collect(), v16.iter().map(|x| x.to_f32()).collect());
        let parts = [
            attend_part_f16(&q, &k16, &v16, shape, 4..9, 0.25),
            attend_part_f16(&q, &k16, &v16, shape, 9..17, 0.25),
        ];
        let a = crate::combine(&parts, 16);
        let b = crate::combine(&[crate::attend_part(&q, &k32, &v32, shape, 4..17, 0.25)], 16);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
}
