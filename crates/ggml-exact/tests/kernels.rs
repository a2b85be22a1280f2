//! The kernels against plain arithmetic: the same values up to rounding, and the rounding
//! rules the ggml kernels follow where they differ from the obvious formula. (Bit-for-bit
//! agreement with llama.cpp itself is tested on a real model in ehrqa's `gemma3_real` tests.)

use std::panic::{catch_unwind, AssertUnwindSafe};

use ggml_exact::{
    dot_f16_gemm, dot_f16_vec, exp_f32x8, quantize_q8_0, quantize_q8_k, softmax, BlockMatrix, Matrix,
    Products, QuantKind, QuantRow, WeightType,
};

/// A deterministic spread of values in [-scale, scale).
fn values(n: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

#[test]
fn q8_0_rounds_half_to_even_with_the_inverse_multiplier() {
    // amax 127 makes the multiplier exactly 1: 2.5 -> 2 and 3.5 -> 4 (half to even), where the
    // portable reference rounds half away from zero (3 and 4).
    let mut x = vec![0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = 3.5;
    x[3] = -2.5;
    let q = quantize_q8_0(&x);
    assert_eq!(&q.q()[..4], &[127, 2, 4, -2]);
    assert_eq!(q.d(), &[1.0]);
}

#[test]
fn q8_k_uses_the_signed_extreme_and_sums_every_16() {
    let x = values(512, 7, 3.0);
    let q = quantize_q8_k(&x);
    assert_eq!(q.d().len(), 2);
    for (b, block) in x.chunks(256).enumerate() {
        let extreme = block.iter().copied().fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
        let code = q.q()[256 * b + block.iter().position(|&v| v == extreme).unwrap()];
        assert_eq!(code, -127, "the extreme maps to -127 whatever its sign");
    }
    for (k, sum) in q.bsums().iter().enumerate() {
        assert_eq!(*sum, q.q()[16 * k..16 * k + 16].iter().map(|&v| i32::from(v)).sum::<i32>());
    }
    let back = q.dequantize();
    for (a, b) in x.iter().zip(&back) {
        assert!((a - b).abs() <= 3.0 / 127.0, "{a} vs {b}");
    }
}

fn q8_0_block(d: f32, codes: &[i8; 32]) -> Vec<u8> {
    let mut b = half::f16::from_f32(d).to_le_bytes().to_vec();
    b.extend(codes.iter().map(|&c| c as u8));
    b
}

#[test]
fn quantized_products_match_plain_arithmetic() {
    // A 3 x 64 Q8_0 matrix against the dequantized product, for 1 and 9 input rows.
    let (rows, cols) = (3, 64);
    let mut data = Vec::new();
    let mut dense = Vec::new();
    for r in 0..rows {
        for b in 0..cols / 32 {
            let codes: [i8; 32] =
                std::array::from_fn(|i| ((i as i32 * 7 + r as i32 * 13 + b as i32) % 255 - 127) as i8);
            let d = 0.01 * (r + b + 1) as f32;
            data.extend(q8_0_block(d, &codes));
            let d16 = half::f16::from_f32(d).to_f32();
            dense.extend(codes.iter().map(|&c| f32::from(c) * d16));
        }
    }
    let m = Matrix::decode(WeightType::Q8_0, &data, rows, cols).unwrap();
    for n in [1, 9] {
        let x = values(n * cols, n as u32, 2.0);
        let out = m.matmul(&x, n);
        for i in 0..n {
            let xq = quantize_q8_0(&x[i * cols..(i + 1) * cols]).dequantize();
            for o in 0..rows {
                let want: f64 = (0..cols).map(|k| f64::from(xq[k]) * f64::from(dense[o * cols + k])).sum();
                let got = out[i * rows + o];
                assert!((f64::from(got) - want).abs() < 1e-4 * want.abs().max(1.0), "{got} vs {want}");
            }
        }
    }
}

#[test]
fn decode_rejects_a_wrong_size() {
    assert!(Matrix::decode(WeightType::Q6K, &[0u8; 100], 1, 256).is_err());
    assert!(Matrix::decode(WeightType::Q8_0, &[0u8; 34], 1, 48).is_err());
}

#[test]
fn f16_dots_sum_like_plain_arithmetic() {
    let a: Vec<f32> = values(96, 3, 4.0).iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
    let b: Vec<f32> = values(96, 4, 4.0).iter().map(|v| half::f16::from_f32(*v).to_f32()).collect();
    let want: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    for got in [
        dot_f16_gemm(&a, &b),
        dot_f16_vec(&a, &b),
        dot_f16_vec(&a[..90], &b[..90]) + {
            let tail: f64 = a[90..].iter().zip(&b[90..]).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            tail as f32
        },
    ] {
        assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
    }
}

#[test]
fn the_vectorised_exponential_is_within_two_ulps_of_expf() {
    for x in values(10_000, 11, 80.0) {
        let (got, want) = (exp_f32x8(x), x.exp());
        let ulps = (got.to_bits() as i64 - want.to_bits() as i64).abs();
        assert!(ulps <= 2, "exp({x}) = {got}, libm {want}");
    }
    assert_eq!(exp_f32x8(f32::NEG_INFINITY), 0.0);
    assert_eq!(exp_f32x8(0.0), 1.0);
}

#[test]
fn softmax_sums_to_one_and_ignores_masked_cells() {
    let mut row = values(40, 5, 6.0);
    row[3] = f32::NEG_INFINITY;
    row[32..].fill(f32::NEG_INFINITY);
    softmax(&mut row);
    assert_eq!(row[3], 0.0);
    assert!(row[32..].iter().all(|&p| p == 0.0));
    let sum: f32 = row.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "{sum}");
}

/// Random Q8_0 or Q5_0 blocks (any byte pattern is a valid block; scales kept small).
fn random_blocks(ty: WeightType, rows: usize, cols: usize, seed: u32) -> Vec<u8> {
    let bytes = if ty == WeightType::Q8_0 { 34 } else { 22 };
    let raw = values(rows * cols / 32 * bytes, seed, 1.0);
    let mut data: Vec<u8> = raw.iter().map(|v| ((v + 1.0) * 127.9) as u8).collect();
    for b in data.chunks_mut(bytes) {
        let d = half::f16::from_f32(0.001 + f32::from(b[2]) / 5000.0).to_le_bytes();
        b[..2].copy_from_slice(&d);
    }
    data
}

#[test]
fn block_products_equal_the_decoded_matrix_bit_for_bit() {
    let (rows, cols) = (200, 96);
    for ty in [WeightType::Q8_0, WeightType::Q5_0] {
        let data = random_blocks(ty, rows, cols, 9);
        let decoded = Matrix::decode(ty, &data, rows, cols).unwrap();
        let Some(fast) = BlockMatrix::new(ty, &data, rows, cols) else {
            eprintln!("no AVX2 here: the block kernels are not used");
            return;
        };
        for n in [1, 3] {
            let x = values(n * cols, 17 + n as u32, 3.0);
            let (a, b) = (decoded.matmul(&x, n), fast.matmul(&x, n));
            assert_eq!(a.len(), b.len());
            for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                assert_eq!(p.to_bits(), q.to_bits(), "{ty:?} output {i}: {p} vs {q}");
            }
        }
    }
}

/// The block kernel takes rows four at a time: ranges of any start and length (a thread's
/// share) give each row exactly what the whole matrix gives it.
#[test]
fn block_products_over_any_range_of_rows_equal_the_whole() {
    let (rows, cols) = (203, 64);
    for ty in [WeightType::Q8_0, WeightType::Q5_0] {
        let data = random_blocks(ty, rows, cols, 13);
        let Some(fast) = BlockMatrix::new(ty, &data, rows, cols) else {
            eprintln!("no AVX2 here: the block kernels are not used");
            return;
        };
        for n in [1, 2] {
            let inputs = fast.quantize_inputs(&values(n * cols, 3 + n as u32, 2.0), n);
            let mut whole = vec![0f32; rows * n];
            fast.dot_rows(0..rows, &inputs, &mut whole);
            let decoded = Matrix::decode(ty, &data, rows, cols).unwrap();
            let mut reference = vec![0f32; rows * n];
            decoded.dot_rows(0..rows, &inputs, &mut reference);
            assert_eq!(
                whole.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                reference.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
            for range in [0..1, 0..3, 1..5, 3..198, 5..6, 100..203, 199..203] {
                let mut part = vec![0f32; range.len() * n];
                fast.dot_rows(range.clone(), &inputs, &mut part);
                let want = &whole[range.start * n..range.end * n];
                assert!(
                    part.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{ty:?} rows {range:?}, {n} inputs"
                );
            }
        }
    }
}

#[test]
fn q5_0_re_encoded_as_q8_0_keeps_every_value_and_product() {
    let (rows, cols) = (40, 64);
    let q5 = random_blocks(WeightType::Q5_0, rows, cols, 21);
    let q8 = ggml_exact::q5_0_as_q8_0(&q5);
    let (a, b) = (
        Matrix::decode(WeightType::Q5_0, &q5, rows, cols).unwrap(),
        Matrix::decode(WeightType::Q8_0, &q8, rows, cols).unwrap(),
    );
    let x = values(3 * cols, 5, 2.0);
    for (p, q) in a.matmul(&x, 3).iter().zip(&b.matmul(&x, 3)) {
        assert_eq!(p.to_bits(), q.to_bits());
    }
}

#[test]
fn a_row_whose_parts_do_not_agree_cannot_be_made() {
    // Fewer codes than its scale stands for: the AVX2 products would read past them.
    assert!(QuantRow::new(QuantKind::Q8_0, vec![0; 16], vec![1.0], Vec::new()).is_err());
    // Q8_K without its 16-code sums, and Q8_0 with sums it does not have.
    assert!(QuantRow::new(QuantKind::Q8K, vec![0; 256], vec![1.0], Vec::new()).is_err());
    assert!(QuantRow::new(QuantKind::Q8_0, vec![0; 32], vec![1.0], vec![0, 0]).is_err());
    let row = QuantRow::new(QuantKind::Q8_0, vec![1; 64], vec![0.5, 2.0], Vec::new()).unwrap();
    assert_eq!((row.len(), row.dequantize()[0], row.dequantize()[63]), (64, 0.5, 2.0));
    // The quantizers make whole blocks or nothing.
    assert!(catch_unwind(|| quantize_q8_0(&[1.0; 33])).is_err());
    assert!(catch_unwind(|| quantize_q8_k(&[1.0; 300])).is_err());
}

#[test]
fn products_refuse_inputs_that_do_not_fit_the_matrix() {
    let (rows, cols) = (2, 256);
    let data = random_blocks(WeightType::Q8_0, rows, cols, 3);
    let decoded = Matrix::decode(WeightType::Q8_0, &data, rows, cols).unwrap();
    let mut products: Vec<&dyn Products> = vec![&decoded];
    let fast = BlockMatrix::new(WeightType::Q8_0, &data, rows, cols);
    products.extend(fast.as_ref().map(|f| f as &dyn Products));
    // One block where the rows have eight (the block kernel used to read the other seven from
    // past the input's codes), and a row quantized for K-quant weights.
    let short = quantize_q8_0(&values(32, 1, 1.0));
    let other_kind = quantize_q8_k(&values(cols, 2, 1.0));
    for m in products {
        let good = m.quantize_inputs(&values(cols, 4, 1.0), 1);
        let mut out = vec![0f32; rows];
        m.dot_rows(0..rows, &good, &mut out);
        for bad in [&short, &other_kind] {
            let refused =
                catch_unwind(AssertUnwindSafe(|| m.dot_rows(0..rows, std::slice::from_ref(bad), &mut out)));
            assert!(refused.is_err(), "a {:?} input of {} values was multiplied", bad.kind(), bad.len());
        }
    }
}
