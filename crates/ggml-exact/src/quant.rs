//! Activation quantizers: the row of a matrix product's input as ggml rounds it.

use half::f16;

/// The block layout of a quantized row: what ggml quantizes a product's input to, by weight type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKind {
    /// 32 codes per scale (inputs of Q8_0 and Q5_0 products).
    Q8_0,
    /// 256 codes per scale and the sum of every 16 codes (inputs of K-quant products).
    Q8K,
}

impl QuantKind {
    /// Codes per scale.
    pub const fn block(self) -> usize {
        match self {
            QuantKind::Q8_0 => 32,
            QuantKind::Q8K => 256,
        }
    }

    /// How many 16-code sums a row of `codes` codes carries.
    const fn sums(self, codes: usize) -> usize {
        match self {
            QuantKind::Q8_0 => 0,
            QuantKind::Q8K => codes / 16,
        }
    }
}

/// A quantized row: integer codes, one scale per block, and (Q8_K) the sum of each 16 codes.
///
/// The fields are private and only consistent rows can be made (`new` checks, the quantizers
/// make them so): the AVX2 block products read 32 codes per scale without bounds checks, so a
/// row whose codes ran short of its scales would make safe code read out of bounds.
#[derive(Debug, Clone)]
pub struct QuantRow {
    kind: QuantKind,
    q: Vec<i8>,
    d: Vec<f32>,
    bsums: Vec<i32>,
}

/// Why codes, scales and sums do not make a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantRowError(String);

impl std::fmt::Display for QuantRowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for QuantRowError {}

impl QuantRow {
    /// A row from its parts: `kind.block()` codes per scale, and for Q8_K one sum per 16 codes
    /// (none for Q8_0). The sums are taken as given, as ggml takes them.
    pub fn new(kind: QuantKind, q: Vec<i8>, d: Vec<f32>, bsums: Vec<i32>) -> Result<Self, QuantRowError> {
        let codes = d.len().checked_mul(kind.block());
        if codes != Some(q.len()) || bsums.len() != kind.sums(q.len()) {
            let sums = if kind == QuantKind::Q8K { "a sum per 16 codes" } else { "no sums" };
            return Err(QuantRowError(format!(
                "a {kind:?} row needs {} codes per scale and {sums}; got {} codes, {} scales, {} sums",
                kind.block(),
                q.len(),
                d.len(),
                bsums.len()
            )));
        }
        Ok(Self { kind, q, d, bsums })
    }

    pub fn kind(&self) -> QuantKind {
        self.kind
    }

    /// Values in the row (codes).
    pub fn len(&self) -> usize {
        self.q.len()
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    /// The codes, `kind().block()` per scale.
    pub fn q(&self) -> &[i8] {
        &self.q
    }

    /// One scale per block.
    pub fn d(&self) -> &[f32] {
        &self.d
    }

    /// Q8_K: the sum of every 16 codes; Q8_0: empty.
    pub fn bsums(&self) -> &[i32] {
        &self.bsums
    }

    /// The values the codes stand for.
    pub fn dequantize(&self) -> Vec<f32> {
        let block = self.kind.block();
        self.q.iter().enumerate().map(|(i, &q)| f32::from(q) * self.d[i / block]).collect()
    }
}

/// Panics unless every input is a `kind` row of `cols` values, as the products of a matrix of
/// `cols` columns need: the kernels read one input value per weight, and a row of another
/// length or layout would give a product of the wrong numbers (or, unchecked, read past it).
pub(crate) fn assert_inputs(inputs: &[QuantRow], kind: QuantKind, cols: usize) {
    for x in inputs {
        assert!(
            x.kind == kind && x.len() == cols,
            "a matrix of {cols} columns multiplies {kind:?} rows of {cols} values, not a {:?} row of {}",
            x.kind,
            x.len()
        );
    }
}

/// ggml's x86 `quantize_row_q8_0` (AVX2): blocks of 32, multiplier `127 / amax`, rounding half
/// to even, scale `amax / 127` kept as f16 (the portable reference differs: `1 / scale`, half
/// away from zero).
///
/// Panics unless `x.len()` is a multiple of 32 (a short last block would not be a row).
pub fn quantize_q8_0(x: &[f32]) -> QuantRow {
    assert!(x.len() % 32 == 0, "Q8_0 rows are whole blocks of 32, not {} values", x.len());
    let mut q = Vec::with_capacity(x.len());
    let mut d = Vec::with_capacity(x.len() / 32);
    for b in x.chunks_exact(32) {
        let amax = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        d.push(f16::from_f32(amax / 127.0).to_f32());
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        q.extend(b.iter().map(|v| (v * id).round_ties_even().clamp(-128.0, 127.0) as i8));
    }
    QuantRow { kind: QuantKind::Q8_0, q, d, bsums: Vec::new() }
}

/// ggml's `quantize_row_q8_K`: blocks of 256, multiplier `-127 / max` by the signed extreme,
/// `nearest_int` (half to even), codes capped at 127, scale `1 / multiplier`, and the sum of
/// every 16 codes.
///
/// Panics unless `x.len()` is a multiple of 256.
pub fn quantize_q8_k(x: &[f32]) -> QuantRow {
    assert!(x.len() % 256 == 0, "Q8_K rows are whole blocks of 256, not {} values", x.len());
    let mut q = Vec::with_capacity(x.len());
    let mut d = Vec::with_capacity(x.len() / 256);
    for b in x.chunks_exact(256) {
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
    QuantRow { kind: QuantKind::Q8K, q, d, bsums }
}
