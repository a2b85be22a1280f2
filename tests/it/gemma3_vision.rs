//! The vision path against the reference (transformers' `Gemma3ForConditionalGeneration`, tiny
//! random weights from `tools/reference/gemma3_vision_parity.py`): SigLIP tower, projector, and
//! logits of a prompt holding an image, whose tokens attend to each other both ways.

use candle_core::{Device, Tensor};
use ehrqa::llm::gemma3::{self, ImageSpan};

use crate::helpers::fixture;

fn reference() -> std::collections::HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("gemma3/multimodal_image/reference.safetensors"), &Device::Cpu)
        .unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn the_vision_tower_and_projector_match_the_reference() {
    let r = reference();
    let model = gemma3::load(&fixture("gemma3/multimodal_image"), &Device::Cpu).unwrap();
    let vision = model.vision().expect("a multimodal checkpoint has a vision tower");
    assert_eq!(vision.config().mm_tokens_per_image, 4);
    let pixels = r["pixel_values"].squeeze(0).unwrap();
    let hidden = vision.encode(&pixels).unwrap();
    let d = max_diff(&hidden, &r["vision_hidden"].squeeze(0).unwrap());
    assert!(d < 1e-4, "tower: max |diff| {d}");
    let features = vision.embed(&pixels).unwrap();
    let d = max_diff(&features, &r["image_features"].squeeze(0).unwrap());
    assert!(d < 1e-4, "projector: max |diff| {d}");
}

#[test]
fn a_prompt_with_an_image_matches_the_reference_logits() {
    let r = reference();
    let ids: Vec<u32> = r["input_ids"]
        .flatten_all()
        .unwrap()
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|x| x as u32)
        .collect();
    let want = r["logits"].squeeze(0).unwrap();
    // Chunks of 512, and of 5 and 9, which would cut the image (at 7..11) if chunking allowed it.
    for chunk in [512, 5, 9] {
        let mut model = gemma3::load(&fixture("gemma3/multimodal_image"), &Device::Cpu).unwrap();
        model.set_prefill_chunk(chunk);
        let cfg = model.vision().unwrap().config().clone();
        let start = ids.iter().position(|&t| t == cfg.image_token_index).unwrap();
        let embeds = model.vision().unwrap().embed(&r["pixel_values"].squeeze(0).unwrap()).unwrap();
        let logits = model.forward_with_images(&ids, &[ImageSpan { start, embeds }], true).unwrap();
        let d = max_diff(&logits, &want);
        assert!(d < 1e-4, "chunk {chunk}: max |diff| {d}");
    }
    // Without the image the logits are far off: the test sees the image.
    let mut model = gemma3::load(&fixture("gemma3/multimodal_image"), &Device::Cpu).unwrap();
    let logits = model.forward(&ids, true).unwrap();
    assert!(max_diff(&logits, &want) > 0.1);
}

/// Real PNG and JPEG files through decoding and preprocessing, against the reference processor
/// (PIL) at two sizes: the same pixels.
#[test]
fn real_images_preprocess_like_the_reference() {
    use ehrqa::llm::gemma3::preprocess::{decode, pixels, DecodeLimits};
    let r = candle_core::safetensors::load(
        fixture("gemma3/multimodal_image/processed.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    for name in ["report_rgb.png", "report_rgba.png", "report.jpg"] {
        let key = name.replace('.', "_");
        let bytes = std::fs::read(fixture(&format!("gemma3/multimodal_image/images/{name}"))).unwrap();
        let img = decode(&bytes, DecodeLimits::default()).unwrap();
        let want = r[&format!("decoded_{key}")].to_dtype(candle_core::DType::F32).unwrap();
        let got = Tensor::from_vec(
            img.as_raw().iter().map(|&b| f32::from(b)).collect::<Vec<_>>(),
            want.dims(),
            &Device::Cpu,
        )
        .unwrap();
        let decoded_diff = max_diff(&got, &want);
        // PNG decodes to the same bytes. JPEG decoders differ in their IDCT and chroma
        // upsampling (the image crate's from libjpeg-turbo's) by a few levels at most; the
        // preprocessing is then checked on PIL's own decoded pixels.
        let img = if name.ends_with(".png") {
            assert!(decoded_diff <= 0.0, "{name}: decoded pixels differ from PIL's by {decoded_diff}");
            img
        } else {
            let mean = (&got - &want).unwrap().abs().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(
                decoded_diff <= 4.0 && mean < 1.0,
                "{name}: decoded max diff {decoded_diff}, mean {mean}"
            );
            let (h, w) = (want.dims()[0] as u32, want.dims()[1] as u32);
            let raw: Vec<u8> =
                want.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().map(|&v| v as u8).collect();
            image::RgbImage::from_raw(w, h, raw).unwrap()
        };
        for size in [28, 64] {
            let px = pixels(&img, size, &Device::Cpu).unwrap();
            let d = max_diff(&px, &r[&format!("{key}_{size}")].squeeze(0).unwrap());
            assert!(d < 1e-4, "{name} at {size}: max |diff| {d}");
        }
    }
}

#[test]
fn images_need_a_vision_model_and_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let png = fixture("gemma3/multimodal_image/images/report_rgb.png");
    // The GGUF test model has no vision tower: said plainly, in one line.
    let out =
        crate::helpers::ehrqa(dir.path(), &["generate", "--image", png.to_str().unwrap(), "What is this?"]);
    assert!(!out.status.success());
    let err = crate::helpers::stderr(&out);
    assert!(err.contains("no vision tower"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let not_image = fixture("fhir/edge/searchset.json");
    let out = crate::helpers::ehrqa(dir.path(), &["generate", "--image", not_image.to_str().unwrap(), "x"]);
    assert!(crate::helpers::stderr(&out).contains("not a PNG, JPEG, TIFF or WebP image"));
}

/// Checkpoints name the vision weights three ways (`vision_tower.*` as transformers 5 saves,
/// `vision_tower.vision_model.*` as MedGemma's files, `model.vision_tower.vision_model.*` with
/// `model.multi_modal_projector.*` as transformers 4.5x saves): all load to the same tower.
#[test]
fn every_vision_key_layout_loads_the_same_tower() {
    let src = fixture("gemma3/multimodal_image");
    let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let r = reference();
    let pixels = r["pixel_values"].squeeze(0).unwrap();
    let want = r["image_features"].squeeze(0).unwrap();
    for (tower, projector, text) in [
        ("vision_tower.vision_model.", "multi_modal_projector.", "language_model.model."),
        ("model.vision_tower.vision_model.", "model.multi_modal_projector.", "model.language_model."),
    ] {
        let renamed: std::collections::HashMap<String, Tensor> = tensors
            .iter()
            .map(|(k, v)| {
                let k = if let Some(rest) = k.strip_prefix("vision_tower.") {
                    format!("{tower}{rest}")
                } else if let Some(rest) = k.strip_prefix("multi_modal_projector.") {
                    format!("{projector}{rest}")
                } else if let Some(rest) = k.strip_prefix("language_model.model.") {
                    format!("{text}{rest}")
                } else {
                    k.clone()
                };
                (k, v.clone())
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(src.join("config.json"), dir.path().join("config.json")).unwrap();
        candle_core::safetensors::save(&renamed, dir.path().join("model.safetensors")).unwrap();
        let model = gemma3::load(dir.path(), &Device::Cpu).unwrap();
        let got = model.vision().expect(tower).embed(&pixels).unwrap();
        assert!(max_diff(&got, &want) < 1e-4, "{tower}");
    }
}
