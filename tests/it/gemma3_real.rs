//! The real Gemma 3 270M (GGUF Q4_K_M, as `scripts/setup` caches it) against llama.cpp's greedy
//! continuations recorded by `tools/reference/llama_cpp_greedy.py`.

use candle_core::Device;
use ehrqa::llm::gemma3;
use ehrqa::llm::sampling::argmax;
use serde::Deserialize;

use crate::helpers::{fixture, tokenizer};

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    prompt: String,
    prompt_ids: Vec<u32>,
    generated: Vec<u32>,
    /// llama.cpp's five best (id, logit) at each generated position.
    top5: Vec<Vec<(u32, f32)>>,
}

fn reference() -> Reference {
    serde_json::from_slice(&std::fs::read(fixture("gemma3-270m/llama_cpp_greedy.json")).unwrap()).unwrap()
}

fn model() -> gemma3::Gemma3 {
    let path = ehrqa::settings::default_cache_dir().join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    let mut m = gemma3::load(&path, &Device::Cpu).expect("the Gemma 3 270M GGUF (run scripts/setup)");
    // Round as llama.cpp does, to compare with it.
    m.set_numerics(gemma3::Numerics::Ggml);
    m
}

#[test]
fn real_weights_follow_llama_cpp() {
    let r = reference();
    let mut m = model();
    let tok = tokenizer();
    let mut agree = 0;
    let mut total = 0;
    let mut parted = 0;
    for case in &r.cases {
        // The same tokens as llama.cpp (BOS included).
        assert_eq!(
            tok.encode(&case.prompt, true).unwrap(),
            case.prompt_ids,
            "tokenization of {:.40}",
            case.prompt
        );
        assert!(case.prompt_ids.len() < 600 || case.prompt_ids.len() > 1000);
        // Greedy continuation: the first 16 tokens identical.
        m.reset();
        let mut logits =
            m.forward(&case.prompt_ids, false).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let mut ours = Vec::new();
        for _ in 0..16 {
            let next = argmax(&logits);
            ours.push(next);
            logits = m.forward(&[next], false).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        }
        // Where the continuations part, it must be at a near-tie in llama.cpp's own logits (the
        // two engines' quantized arithmetic differs in the last bits); a wrong model parts at once
        // and by a wide margin.
        if let Some(at) = ours.iter().zip(&case.generated).position(|(a, b)| a != b) {
            let top = &case.top5[at];
            let theirs = top.iter().find(|(id, _)| *id == ours[at]).map(|(_, l)| *l);
            let gap = theirs.map_or(f32::INFINITY, |l| top[0].1 - l);
            eprintln!("{:.40?}: identical for {at} tokens, then a {gap:.3} logit near-tie", case.prompt);
            assert!(
                at >= 2 && gap < 0.5,
                "greedy continuation of {:.60} parts at {at} by {gap}",
                case.prompt
            );
            parted += 1;
        }
        // Fed llama.cpp's continuation, top-1 agrees at (nearly) every position.
        m.reset();
        let first = m.forward(&case.prompt_ids, false).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
        let rest = m.forward(&case.generated[..case.generated.len() - 1], true).unwrap();
        let mut predicted = vec![argmax(&first)];
        for i in 0..rest.dim(0).unwrap() {
            predicted.push(argmax(&rest.get(i).unwrap().to_vec1::<f32>().unwrap()));
        }
        for (p, want) in predicted.iter().zip(&case.generated) {
            agree += usize::from(p == want);
            total += 1;
        }
    }
    let rate = agree as f64 / total as f64;
    eprintln!(
        "top-1 agreement {rate:.3}; {} of {} continuations identical for 16 tokens",
        r.cases.len() - parted,
        r.cases.len()
    );
    assert!(rate >= 0.95, "top-1 agreement {rate:.3}");
    assert!(parted * 2 < r.cases.len(), "most continuations are identical");
}

/// A client that stops listening stops the model: the generation ends as cancelled, a few tokens
/// in, not at `max_tokens`.
#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_stream_cancels_generation() {
    use ehrqa::llm::{Finish, GenerationRequest, Generator, LocalGenerator, Prompt};
    let cache = ehrqa::settings::default_cache_dir();
    let model = cache.join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    let tok = ehrqa::llm::tokenizer::locate(None, &cache).unwrap();
    let g = LocalGenerator::load(&model, &tok, Device::Cpu).unwrap();
    let req = GenerationRequest {
        prompt: Prompt::Raw("1, 2, 3, 4, 5, 6, 7, 8,".into()),
        max_tokens: 400,
        sampling: Default::default(),
        stop: Vec::new(),
        images: Vec::new(),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader = tokio::spawn(async move {
        let first = rx.recv().await;
        drop(rx);
        first
    });
    let g = g.generate(req, tx).await.unwrap();
    assert!(reader.await.unwrap().is_some_and(|p| !p.is_empty()));
    assert_eq!(g.finish, Finish::Cancelled);
    assert!(g.completion_tokens < 20, "{} tokens after the reader left", g.completion_tokens);
}
