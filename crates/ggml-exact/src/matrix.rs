//! Quantized weight matrices decoded from GGUF blocks into integers and scales, and their
//! products with activations in llama.cpp's arithmetic.

use half::f16;

use crate::dot;
use crate::quant::{assert_inputs, quantize_q8_0, quantize_q8_k, QuantKind, QuantRow};
use crate::Products;

/// The GGUF block types whose products are reproduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    Q8_0,
    Q5_0,
    Q4K,
    Q6K,
}

impl WeightType {
    /// Bytes per block and values per block.
    fn block(self) -> (usize, usize) {
        match self {
            WeightType::Q8_0 => (34, 32),
            WeightType::Q5_0 => (22, 32),
            WeightType::Q4K => (144, 256),
            WeightType::Q6K => (210, 256),
        }
    }
}

/// A `[rows, cols]` weight matrix, one row per output.
#[derive(Debug, Clone)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    body: Body,
}

#[derive(Debug, Clone)]
enum Body {
    /// Q8_0 and Q5_0: signed codes, a scale per 32 (their products share one kernel).
    Q0 { q: Vec<i8>, d: Vec<f32> },
    /// Q4_K: codes 0..15; per 256 a scale and a min scale, per 32 a 6-bit scale and min.
    Q4K { q: Vec<u8>, d: Vec<f32>, dmin: Vec<f32>, scales: Vec<u8>, mins: Vec<u8> },
    /// Q6_K: codes 0..63 (32 stands for zero); per 256 a scale, per 16 a signed scale.
    Q6K { q: Vec<u8>, d: Vec<f32>, scales: Vec<i8> },
}

/// Why a matrix cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

fn half(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

impl Matrix {
    /// Decodes `rows x cols` values stored as `ty` blocks, row after row (GGUF's layout).
    pub fn decode(ty: WeightType, data: &[u8], rows: usize, cols: usize) -> Result<Self, ShapeError> {
        let (bytes, per) = ty.block();
        if cols % per != 0 || data.len() != rows * cols / per * bytes {
            return Err(ShapeError(format!(
                "{ty:?} matrix of {rows}x{cols} needs rows of whole blocks and {} bytes, got {}",
                rows * cols / per.max(1) * bytes,
                data.len()
            )));
        }
        let blocks = data.chunks_exact(bytes);
        let body = match ty {
            WeightType::Q8_0 => {
                let d = blocks.clone().map(|b| half(b, 0)).collect();
                let q = blocks.flat_map(|b| b[2..].iter().map(|&v| v as i8)).collect();
                Body::Q0 { q, d }
            }
            WeightType::Q5_0 => {
                let d = blocks.clone().map(|b| half(b, 0)).collect();
                let q = blocks.flat_map(decode_q5_0).collect();
                Body::Q0 { q, d }
            }
            WeightType::Q4K => {
                let (mut q, mut d, mut dmin, mut scales, mut mins) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for b in blocks {
                    d.push(half(b, 0));
                    dmin.push(half(b, 2));
                    for j in 0..8 {
                        let (s, m) = scale_min_k4(j, &b[4..16]);
                        scales.push(s);
                        mins.push(m);
                    }
                    let qs = &b[16..144];
                    for j in 0..4 {
                        q.extend(qs[32 * j..32 * j + 32].iter().map(|v| v & 0xF));
                        q.extend(qs[32 * j..32 * j + 32].iter().map(|v| v >> 4));
                    }
                }
                Body::Q4K { q, d, dmin, scales, mins }
            }
            WeightType::Q6K => {
                let (mut q, mut d, mut scales) = (Vec::new(), Vec::new(), Vec::new());
                for b in blocks {
                    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
                    d.push(half(b, 208));
                    scales.extend(sc.iter().map(|&v| v as i8));
                    let mut vals = [0u8; 256];
                    for j in 0..2 {
                        let (ql, qh) = (&ql[64 * j..], &qh[32 * j..]);
                        for l in 0..32 {
                            let o = 128 * j + l;
                            vals[o] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
                            vals[o + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
                            vals[o + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                            vals[o + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                        }
                    }
                    q.extend_from_slice(&vals);
                }
                Body::Q6K { q, d, scales }
            }
        };
        Ok(Self { rows, cols, body })
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    #[inline(always)]
    fn dot_row(&self, o: usize, x: &QuantRow, batch: Batch) -> f32 {
        let c = self.cols;
        match &self.body {
            Body::Q0 { q, d } => dot::q0(&q[o * c..(o + 1) * c], &d[o * c / 32..(o + 1) * c / 32], x),
            Body::Q4K { q, d, dmin, scales, mins } => {
                let sb = c / 256;
                let row = dot::Q4kRow {
                    q: &q[o * c..(o + 1) * c],
                    d: &d[o * sb..(o + 1) * sb],
                    dmin: &dmin[o * sb..(o + 1) * sb],
                    scales: &scales[o * sb * 8..(o + 1) * sb * 8],
                    mins: &mins[o * sb * 8..(o + 1) * sb * 8],
                };
                let grouping = if batch.in_group_of_four {
                    dot::Q4kGrouping::Pairs
                } else {
                    dot::Q4kGrouping::Superblock
                };
                dot::q4k(row, x, grouping)
            }
            Body::Q6K { q, d, scales } => {
                let sb = c / 256;
                let (q, d, scales) = (
                    &q[o * c..(o + 1) * c],
                    &d[o * sb..(o + 1) * sb],
                    &scales[o * sb * 16..(o + 1) * sb * 16],
                );
                if batch.tiled {
                    dot::q6k_tiled(q, d, scales, x)
                } else {
                    dot::q6k(q, d, scales, x)
                }
            }
        }
    }
}

/// Each input row quantized as ggml quantizes it for the weight type, each output computed as
/// ggml's kernel for the type computes it, which for K-quants depends on the batch: repacked
/// Q4_K takes input rows four at a time (the rest one by one), and Q6_K takes its tiled path for
/// eight or more rows.
impl Products for Matrix {
    fn rows(&self) -> usize {
        self.rows
    }

    fn quantize_inputs(&self, x: &[f32], n: usize) -> Vec<QuantRow> {
        let quantize = match self.body {
            Body::Q0 { .. } => quantize_q8_0,
            _ => quantize_q8_k,
        };
        x.chunks_exact(self.cols).take(n).map(quantize).collect()
    }

    fn dot_rows(&self, rows: std::ops::Range<usize>, inputs: &[QuantRow], out: &mut [f32]) {
        let kind = match self.body {
            Body::Q0 { .. } => QuantKind::Q8_0,
            _ => QuantKind::Q8K,
        };
        assert_inputs(inputs, kind, self.cols);
        dot_rows(self, rows, inputs, out)
    }
}

cpu_kernels::with_avx2! {
    fn dot_rows(m: &Matrix, rows: std::ops::Range<usize>, inputs: &[QuantRow], out: &mut [f32]) -> () = dot_rows_inner;
}

#[inline(always)]
fn dot_rows_inner(m: &Matrix, rows: std::ops::Range<usize>, inputs: &[QuantRow], out: &mut [f32]) {
    let n = inputs.len();
    let (grouped, tiled) = (n - n % 4, n >= 8);
    for (o, out) in rows.zip(out.chunks_mut(n)) {
        for (i, (v, x)) in out.iter_mut().zip(inputs).enumerate() {
            *v = m.dot_row(o, x, Batch { in_group_of_four: i < grouped, tiled });
        }
    }
}

/// Which of ggml's kernels an input row goes through, which depends on the batch.
#[derive(Clone, Copy)]
struct Batch {
    /// Repacked Q4_K: among the rows taken four at a time.
    in_group_of_four: bool,
    /// Q6_K: eight or more rows, so ggml's tiled product.
    tiled: bool,
}

/// A Q5_0 block's 32 signed codes: 4 low bits from the nibbles, the fifth from `qh`, minus 16.
pub(crate) fn decode_q5_0(b: &[u8]) -> [i8; 32] {
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    let mut out = [0i8; 32];
    for j in 0..16 {
        let h0 = (((qh >> j) << 4) & 0x10) as u8;
        let h1 = ((qh >> (j + 12)) & 0x10) as u8;
        out[j] = ((qs[j] & 0x0F) | h0) as i8 - 16;
        out[j + 16] = ((qs[j] >> 4) | h1) as i8 - 16;
    }
    out
}

/// ggml's `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` from 12 packed bytes.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}
