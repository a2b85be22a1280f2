//! A vectorisable exponential.

/// `exp` by range reduction to `2^n * e^r`, `|r| <= ln2/2`, and a degree-6 polynomial (within
/// 4 ulps of libm's), branch-free for `|x| <= 80` so the loop vectorises.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, x));
    let p: f32 = 1.0 / 720.0;
    let p = p.mul_add(r, 1.0 / 120.0);
    let p = p.mul_add(r, 1.0 / 24.0);
    let p = p.mul_add(r, 1.0 / 6.0);
    let p = p.mul_add(r, 0.5);
    let p = p.mul_add(r, 1.0);
    let p = p.mul_add(r, 1.0);
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn within_four_ulps_of_libm() {
        let mut worst = 0;
        for i in -8000..8000 {
            let x = i as f32 / 100.0;
            let (got, want) = (super::exp(x), x.exp());
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
            worst = worst.max(ulps);
        }
        eprintln!("worst {worst} ulps");
        assert!(worst <= 4, "{worst} ulps");
    }
}
