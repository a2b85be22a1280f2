//! The gated GeLU of Gemma's MLP, `gelu_tanh(gate) * up`, vectorisable: candle computes the
//! tanh through the C library one value at a time, which costs more than the products around it
//! when decoding.

crate::with_avx2! {
    /// `0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * u`, element by element, as accurate
    /// as the formula evaluated in f32 (a relative 5e-6 where the exponent is large).
    pub fn geglu(gate: &[f32], up: &[f32]) -> Vec<f32> = geglu_inner;
}

/// Plain indexed loops: an iterator chain ending in `collect` is compiled as a separate
/// function, without the caller's AVX2/FMA features.
#[inline(always)]
fn geglu_inner(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let n = gate.len().min(up.len());
    let mut out = vec![0f32; n];
    for i in 0..n {
        out[i] = gelu(gate[i]) * up[i];
    }
    out
}

/// As `x * sigmoid(2u)`, which equals `0.5 x (1 + tanh u)` and loses nothing to cancellation
/// where tanh is near -1.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_TWO_OVER_PI * x * (1.0 + 0.044715 * x * x);
    x / (1.0 + crate::exp::exp((-2.0 * u).clamp(-80.0, 80.0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_formula_with_libm() {
        let gate: Vec<f32> = (-4000..4000).map(|i| i as f32 / 250.0).collect();
        let up = vec![1.5f32; gate.len()];
        let got = super::geglu(&gate, &up);
        for (x, y) in gate.iter().zip(&got) {
            let want = 0.5
                * f64::from(*x)
                * (1.0
                    + (0.797_884_560_802_865_4 * f64::from(*x) * (1.0 + 0.044715 * f64::from(*x).powi(2)))
                        .tanh())
                * 1.5;
            assert!(
                (f64::from(*y) - want).abs() <= 5e-6 * want.abs() + 1e-12,
                "gelu({x}) = {y}, want {want}"
            );
        }
    }
}
