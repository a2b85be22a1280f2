//! The real Gemma 3 270M (GGUF Q4_K_M, as `scripts/setup` caches it) against llama.cpp's greedy
//! continuations recorded by `tools/reference/llama_cpp_greedy.py`.

use candle_core::Device;
use ehrqa::llm::gemma3;
use ehrqa::llm::sampling::argmax;
use serde::Deserialize;

use crate::helpers::{fixture, tokenizer};

#[derive(Deserialize)]
struct Reference {
    /// Greedy steps llama.cpp recorded per case.
    steps: usize,
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

fn model(numerics: gemma3::Numerics) -> gemma3::Gemma3 {
    let path = ehrqa::settings::default_cache_dir().join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    gemma3::load_with(&path, &Device::Cpu, numerics).expect("the Gemma 3 270M GGUF (run scripts/setup)")
}

fn last_logits(m: &mut gemma3::Gemma3, ids: &[u32]) -> Vec<f32> {
    m.forward(ids, false).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap()
}

/// With llama.cpp's arithmetic the engine computes llama.cpp's logits to the bit, so its greedy
/// continuation is llama.cpp's: the prompt is prefilled in 512-token chunks as llama.cpp
/// batches it, then llama.cpp's tokens are fed one at a time, as it generated them. While each
/// step's best token is llama.cpp's next token, this is the engine's own greedy continuation.
/// What the README claims, exactly: every recorded logit equal (difference 0), and every
/// continuation identical for its full recorded length. Every case is run before asserting, so
/// that a failure reports all the numbers.
#[test]
fn real_weights_follow_llama_cpp_to_the_bit() {
    let r = reference();
    let mut m = model(gemma3::Numerics::Ggml);
    let tok = tokenizer();
    let (mut compared, mut unequal, mut worst) = (0usize, 0usize, 0f32);
    let mut partings = Vec::new();
    for case in &r.cases {
        // The same tokens as llama.cpp (BOS included).
        assert_eq!(
            tok.encode(&case.prompt, true).unwrap(),
            case.prompt_ids,
            "tokenization of {:.40}",
            case.prompt
        );
        assert!(case.prompt_ids.len() < 600 || case.prompt_ids.len() > 1000);
        assert_eq!((case.generated.len(), case.top5.len()), (r.steps, r.steps), "a truncated case");
        m.reset();
        let mut logits = last_logits(&mut m, &case.prompt_ids);
        let mut parted = None;
        for (step, (&next, top)) in case.generated.iter().zip(&case.top5).enumerate() {
            for &(id, theirs) in top {
                let ours = logits[id as usize];
                compared += 1;
                unequal += usize::from(ours.to_bits() != theirs.to_bits());
                worst = worst.max((ours - theirs).abs());
            }
            if parted.is_none() && argmax(&logits) != next {
                parted = Some(step);
            }
            logits = last_logits(&mut m, &[next]);
        }
        if let Some(step) = parted {
            partings.push(format!("{:.40?} at token {step} of {}", case.prompt, case.generated.len()));
        }
    }
    eprintln!(
        "llama.cpp numerics: {} of {} continuations identical; {unequal} of {compared} logits differ, \
         by up to {worst:e}",
        r.cases.len() - partings.len(),
        r.cases.len()
    );
    assert!(partings.is_empty(), "greedy continuations part from llama.cpp's: {partings:?}");
    assert_eq!((unequal, worst), (0, 0.0), "logits differ from llama.cpp's ({compared} compared)");
}

/// The default f32 arithmetic rounds differently from llama.cpp, and the model amplifies the
/// last bits (0.2 logits on average), so it follows llama.cpp closely rather than exactly: fed
/// llama.cpp's continuation, its best token is llama.cpp's at nearly every position.
#[test]
fn default_numerics_stay_close_to_llama_cpp() {
    let r = reference();
    let mut m = model(gemma3::Numerics::F32);
    let (mut agree, mut total) = (0, 0);
    for case in &r.cases {
        m.reset();
        let first = last_logits(&mut m, &case.prompt_ids);
        let rest = m.forward(&case.generated[..case.generated.len() - 1], true).unwrap();
        let mut predicted = vec![argmax(&first)];
        for i in 0..rest.dim(0).unwrap() {
            predicted.push(argmax(&rest.get(i).unwrap().to_vec1::<f32>().unwrap()));
        }
        agree += predicted.iter().zip(&case.generated).filter(|(p, w)| p == w).count();
        total += case.generated.len();
    }
    let rate = agree as f64 / total as f64;
    eprintln!("f32 numerics: top-1 agreement {rate:.3}");
    assert!(rate >= 0.9, "top-1 agreement {rate:.3}");
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

/// `ehrqa generate --raw --numerics llama-cpp` prints llama.cpp's greedy continuation, and the
/// default arithmetic refuses nothing but may part from it later.
#[test]
fn generate_with_llama_cpp_numerics_prints_llama_cpp_greedy_text() {
    let r = reference();
    let case = r.cases.iter().find(|c| c.prompt.starts_with("1, 2, 3")).expect("the numeric case");
    let dir = tempfile::tempdir().unwrap();
    let out = crate::helpers::ehrqa(
        dir.path(),
        &["generate", "--raw", "--numerics", "llama-cpp", "--max-tokens", "16", &case.prompt],
    );
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    let want = tokenizer().decode(&case.generated[..16]).unwrap();
    assert_eq!(crate::helpers::stdout(&out).trim_end_matches('\n'), want);
    // llama.cpp numerics apply to GGUF models only; a remote model has none.
    let bad = crate::helpers::ehrqa(
        dir.path(),
        &["generate", "--numerics", "llama-cpp", "--llm-url", "http://127.0.0.1:9", "x"],
    );
    assert!(!bad.status.success());
}
