//! Gemma 3 in candle against the reference implementation (transformers), number by number:
//! tiny random models written by `tools/reference/gemma3_parity.py`, f32, max |diff| < 1e-4.

use candle_core::{Device, Tensor};
use ehrqa::llm::gemma3;

use crate::helpers::fixture;

struct Reference {
    input_ids: Vec<u32>,
    logits_prefill: Tensor,
    decode_ids: Vec<u32>,
    logits_decode: Tensor,
}

fn reference(case: &str) -> Reference {
    let path = fixture(&format!("gemma3/{case}/reference.safetensors"));
    let t = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let ids = |k: &str| -> Vec<u32> {
        t[k].flatten_all().unwrap().to_vec1::<i64>().unwrap().into_iter().map(|x| x as u32).collect()
    };
    Reference {
        input_ids: ids("input_ids"),
        logits_prefill: t["logits_prefill"].squeeze(0).unwrap(),
        decode_ids: ids("decode_ids"),
        logits_decode: t["logits_decode"].squeeze(0).unwrap(),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn argmax(t: &Tensor) -> Vec<u32> {
    t.argmax(candle_core::D::Minus1).unwrap().to_vec1::<u32>().unwrap()
}

fn check(case: &str, chunk: usize) {
    check_sliced(case, chunk, usize::MAX);
}

/// As `check`, holding at most `scores` attention scores at once (queries in slices).
fn check_sliced(case: &str, chunk: usize, scores: usize) {
    let r = reference(case);
    let mut model = gemma3::load(&fixture(&format!("gemma3/{case}")), &Device::Cpu).unwrap();
    model.set_prefill_chunk(chunk);
    model.set_max_scores(scores);
    let logits = model.forward(&r.input_ids, true).unwrap();
    let d = max_diff(&logits, &r.logits_prefill);
    assert!(d < 1e-4, "{case} prefill (chunk {chunk}): max |diff| {d}");
    assert_eq!(argmax(&logits), argmax(&r.logits_prefill));
    for (i, id) in r.decode_ids.iter().enumerate() {
        let step = model.forward(&[*id], false).unwrap();
        let want = r.logits_decode.narrow(0, i, 1).unwrap();
        let d = max_diff(&step, &want);
        assert!(d < 1e-4, "{case} decode step {i}: max |diff| {d}");
    }
    assert_eq!(model.position(), r.input_ids.len() + r.decode_ids.len());
}

#[test]
fn local_and_global_layers_with_linear_rope_scaling_match_the_reference() {
    // A 24-token prompt over an 8-token window: the sliding layers really slide.
    check("text_local_global", 512);
}

#[test]
fn chunked_prefill_gives_the_same_logits() {
    for chunk in [1, 5, 8, 13] {
        check("text_local_global", chunk);
    }
    // Query slices of one and of a few rows.
    for scores in [1, 100] {
        check_sliced("text_local_global", 512, scores);
    }
}

#[test]
fn unscaled_rope_matches_the_reference() {
    check("text_no_scaling", 512);
}

#[test]
fn the_text_part_of_a_multimodal_checkpoint_matches_the_reference() {
    check("multimodal_text", 7);
}
