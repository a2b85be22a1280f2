//! Attention for one query position over cached keys and values.

/// Heads and sizes of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Keys held per kv head (the cache's length).
    pub held: usize,
}

/// Attention over some of the keys, not yet normalised, so that slices of the keys can be
/// attended to separately (on several threads) and combined: per query head the largest score,
/// the sum of `exp(score - max)`, and the values weighted by those exponentials.
#[derive(Debug, Clone)]
pub struct Partial {
    pub max: Vec<f32>,
    pub sum: Vec<f32>,
    /// `[heads * head_dim]`.
    pub out: Vec<f32>,
}

/// `softmax(q k^T * scale) v` from the partials of disjoint slices of the keys, `[heads *
/// head_dim]`.
pub fn combine(parts: &[Partial], head_dim: usize) -> Vec<f32> {
    let heads = parts[0].max.len();
    let mut out = vec![0f32; heads * head_dim];
    for h in 0..heads {
        let max = parts.iter().fold(f32::NEG_INFINITY, |m, p| m.max(p.max[h]));
        let mut total = 0f32;
        let o = &mut out[h * head_dim..(h + 1) * head_dim];
        for p in parts {
            let w = (p.max[h] - max).exp();
            total += w * p.sum[h];
            for (o, x) in o.iter_mut().zip(&p.out[h * head_dim..(h + 1) * head_dim]) {
                *o += w * x;
            }
        }
        o.iter_mut().for_each(|x| *x /= total);
    }
    out
}

crate::with_avx2! {
    /// Attention of one query position over keys `keys` (indices into the held ones), as a
    /// `Partial`: `q` is `[heads, head_dim]`, `k` and `v` are `[kv_heads, held, head_dim]`.
    /// Query heads sharing a kv head read its keys and values once. `combine` the partials of
    /// disjoint key ranges for `softmax(q k^T * scale) v`.
    pub fn attend_part(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        shape: AttentionShape,
        keys: std::ops::Range<usize>,
        scale: f32,
    ) -> Partial = attend_inner;
}

#[inline(always)]
fn attend_inner(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    AttentionShape { heads, kv_heads, head_dim: hd, held }: AttentionShape,
    keys: std::ops::Range<usize>,
    scale: f32,
) -> Partial {
    let rep = heads / kv_heads;
    let n = keys.len();
    let mut out = vec![0f32; heads * hd];
    let (mut maxes, mut sums) = (vec![0f32; heads], vec![0f32; heads]);
    let mut scores = vec![0f32; rep * n];
    for g in 0..kv_heads {
        let kg = &k[g * held * hd..(g + 1) * held * hd];
        let vg = &v[g * held * hd..(g + 1) * held * hd];
        let qg = &q[g * rep * hd..(g + 1) * rep * hd];
        for (j, key) in keys.clone().enumerate() {
            let kr = &kg[key * hd..(key + 1) * hd];
            for r in 0..rep {
                scores[r * n + j] = dot(&qg[r * hd..(r + 1) * hd], kr) * scale;
            }
        }
        for (r, row) in scores.chunks_mut(n).enumerate() {
            (maxes[g * rep + r], sums[g * rep + r]) = exponentiate(row);
        }
        let og = &mut out[g * rep * hd..(g + 1) * rep * hd];
        for (j, key) in keys.clone().enumerate() {
            let vr = &vg[key * hd..(key + 1) * hd];
            for r in 0..rep {
                let p = scores[r * n + j];
                for (o, x) in og[r * hd..(r + 1) * hd].iter_mut().zip(vr) {
                    *o = p.mul_add(*x, *o);
                }
            }
        }
    }
    Partial { max: maxes, sum: sums, out }
}

/// Replaces each score by `exp(score - max)`; returns the max and the sum.
#[inline(always)]
pub(crate) fn exponentiate(row: &mut [f32]) -> (f32, f32) {
    let mut max = f32::NEG_INFINITY;
    for &s in row.iter() {
        max = max.max(s);
    }
    let mut sum = 0f32;
    for s in row.iter_mut() {
        // Only visible keys are scored, so every argument is finite and at most 0.
        *s = crate::exp::exp((*s - max).max(-80.0));
        sum += *s;
    }
    (max, sum)
}

/// Eight partial sums, so the loop vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] = ca[i].mul_add(cb[i], acc[i]);
        }
    }
    let mut total = 0f32;
    for (x, y) in a.chunks_exact(8).remainder().iter().zip(b.chunks_exact(8).remainder()) {
        total += x * y;
    }
    for s in acc {
        total += s;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_plain_softmax_attention() {
        let shape = AttentionShape { heads: 4, kv_heads: 2, head_dim: 12, held: 9 };
        let (q, k, v) = crate::test_inputs(shape);
        let keys = 2..8;
        let out = combine(&[attend_part(&q, &k, &v, shape, keys.clone(), 0.3)], 12);
        for h in 0..4 {
            let g = h / 2;
            let s: Vec<f64> = keys
                .clone()
                .map(|j| {
                    (0..12)
                        .map(|d| f64::from(q[h * 12 + d]) * f64::from(k[(g * 9 + j) * 12 + d]))
                        .sum::<f64>()
                        * 0.3
                })
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for d in 0..12 {
                let want: f64 =
                    keys.clone().zip(&e).map(|(j, w)| w / z * f64::from(v[(g * 9 + j) * 12 + d])).sum();
                assert!((f64::from(out[h * 12 + d]) - want).abs() < 1e-5, "head {h} dim {d}");
            }
        }
    }
}
