//! Conversations: follow-ups resolved against the turns before (their contexts checked), the
//! local engine's cache of a conversation's shared prefix (logits with reuse equal to a fresh
//! prefill's on the tiny Gemma 3 models; cached tokens reported by the real 270M), patient and
//! key isolation over HTTP, and `ehrqa chat` driven through a pipe.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use candle_core::{Device, Tensor};
use ehrqa::answer::{AskOptions, PromptStyle};
use ehrqa::conversation::Conversation;
use ehrqa::fhir::date::FhirDate;
use ehrqa::llm::chat::{Message, Role};
use ehrqa::llm::{gemma3, GenerationRequest, Generator, LocalGenerator, Prompt};
use ehrqa::tokens::TokenBudget;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    ehrqa, fixture, free_port, stdout, tokenizer, wait_for_port, Process, TestData, DONG, MERVIN,
};

// ---- The cache of a shared prefix ----

/// Token ids below the tiny models' vocabulary (256), the same for every run.
fn tokens(n: usize, salt: u32) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 37 + salt * 53 + 11) % 250 + 3).collect()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

fn argmax(t: &Tensor) -> Vec<u32> {
    t.argmax(candle_core::D::Minus1).unwrap().to_vec1::<u32>().unwrap()
}

/// Feeds `first` as a prompt, then `steps` one token at a time as generation does; then asks
/// the model to reuse what it can for `second`, feeds the rest and decodes greedily. The logits
/// of every fed position and the greedy tokens must be those of a fresh model given `second`.
fn reuse_matches_fresh(case: &str, first: &[u32], steps: &[u32], second: &[u32]) -> usize {
    let load = || gemma3::load(&fixture(&format!("gemma3/{case}")), &Device::Cpu).unwrap();
    let mut warm = load();
    warm.forward(first, false).unwrap();
    for &t in steps {
        warm.forward(&[t], false).unwrap();
    }
    let kept = warm.reuse(second);
    assert_eq!(warm.position(), kept);
    let got = warm.forward(&second[kept..], true).unwrap();
    let mut fresh = load();
    let want = fresh.forward(second, true).unwrap().narrow(0, kept, second.len() - kept).unwrap();
    let d = max_diff(&got, &want);
    assert!(d < 1e-4, "{case}: {kept} kept, max |diff| {d}");
    assert_eq!(argmax(&got), argmax(&want), "{case}: {kept} kept");
    // Greedy decoding goes on identically.
    let last = |t: &Tensor| argmax(&t.narrow(0, t.dim(0).unwrap() - 1, 1).unwrap())[0];
    let (mut a, mut b) = (last(&got), last(&want));
    for step in 0..6 {
        assert_eq!(a, b, "{case}: greedy token {step} after {kept} kept");
        let (la, lb) = (warm.forward(&[a], false).unwrap(), fresh.forward(&[b], false).unwrap());
        assert!(max_diff(&la, &lb) < 1e-4, "{case}: decode step {step}");
        (a, b) = (last(&la), last(&lb));
    }
    kept
}

#[test]
fn a_reused_prefix_gives_the_logits_and_greedy_tokens_of_a_fresh_prefill() {
    // Sliding windows of 8 and 16: the sliding layers keep `w - 1` keys once `2 (w - 1)` have
    // accumulated, so after a `2w`-token prompt they hold positions from `w + 1` on.
    for (case, w) in [("text_local_global", 8), ("text_no_scaling", 16)] {
        let seq = tokens(4 * w, 0);
        let other = tokens(12, 1);
        let (prompt, generated) = (&seq[..2 * w], &seq[2 * w..2 * w + 3]);
        let then = |n: usize| [&seq[..n], &other[..]].concat();
        // The follow-up keeps the prompt and what was generated, and adds its own turn.
        assert_eq!(reuse_matches_fresh(case, prompt, generated, &then(2 * w + 3)), 2 * w + 3, "{case}");
        // Parting within the last window: cut back there and continue.
        assert_eq!(reuse_matches_fresh(case, prompt, generated, &then(2 * w + 1)), 2 * w + 1, "{case}");
        // Parting before what the sliding layers still hold: everything is prefilled again.
        assert_eq!(reuse_matches_fresh(case, prompt, generated, &then(6)), 0, "{case}");
        // The same short prompt again (nothing dropped yet): all but its last token are kept.
        let short = &seq[..w + 4];
        assert_eq!(reuse_matches_fresh(case, short, &[], short), w + 3, "{case}");
        // The same long prompt: its last token alone cannot be fed again (keys it would see
        // are gone), so it is all prefilled again.
        assert_eq!(reuse_matches_fresh(case, prompt, &[], prompt), 0, "{case}");
        // Nothing shared.
        assert_eq!(reuse_matches_fresh(case, prompt, generated, &other), 0, "{case}");
    }
}

fn real_generator() -> LocalGenerator {
    let cache = ehrqa::settings::default_cache_dir();
    let model = cache.join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    let tok = ehrqa::llm::tokenizer::locate(None, &cache).unwrap();
    LocalGenerator::load(&model, &tok, Device::Cpu).expect("the Gemma 3 270M GGUF (run scripts/setup)")
}

async fn generate(g: &LocalGenerator, messages: Vec<Message>) -> ehrqa::llm::Generation {
    let req = GenerationRequest {
        prompt: Prompt::Chat(messages),
        max_tokens: 12,
        sampling: Default::default(),
        stop: Vec::new(),
        images: Vec::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let drain = ehrqa::llm::generator::drain(rx);
    let out = g.generate(req, tx).await.unwrap();
    drain.await.unwrap();
    out
}

/// A follow-up prefills only its new turn, says so, and generates what a fresh engine would.
#[tokio::test(flavor = "multi_thread")]
async fn the_local_engine_prefills_only_a_follow_ups_new_turn() {
    let g = real_generator();
    let record = "Patient record:\n[1] 2019-03-02 Observation Hemoglobin A1c = 6.2 %\n[2] 2020-05-01 \
                  Observation Hemoglobin A1c = 6.8 %\n\nQuestion: What was the latest A1c?";
    let first = vec![Message::system("Answer from the record; cite tags."), Message::user(record)];
    let g1 = generate(&g, first.clone()).await;
    assert_eq!(g1.cached_tokens, 0);
    let mut follow = first.clone();
    follow.push(Message { role: Role::Assistant, content: g1.text.clone() });
    follow.push(Message::user("Question: And the one before?"));
    let g2 = generate(&g, follow.clone()).await;
    assert!(g2.cached_tokens >= g1.prompt_tokens, "{} cached of {}", g2.cached_tokens, g1.prompt_tokens);
    assert!(g2.cached_tokens < g2.prompt_tokens);
    // A fresh engine, prefilling everything, writes the same.
    let fresh = real_generator();
    let g3 = generate(&fresh, follow).await;
    assert_eq!(g3.cached_tokens, 0);
    assert_eq!(g3.prompt_tokens, g2.prompt_tokens);
    assert_eq!(g3.text, g2.text);
    // Another conversation shares only the template's opening.
    let g4 = generate(&g, vec![Message::user("Say hello.")]).await;
    assert!(g4.cached_tokens <= 4, "{}", g4.cached_tokens);
}

// ---- Follow-ups, resolved ----

async fn fixtures() -> TestData {
    let t = TestData::with_tokens().await;
    assert!(t.ingest(&["fhir"]).await.failed.is_empty());
    t
}

fn opts(style: PromptStyle) -> AskOptions {
    AskOptions {
        budget: TokenBudget::new(1024).unwrap(),
        today: FhirDate::parse("2026-11-29").unwrap().timestamp(),
        style,
        max_tokens: 8,
        image_slots: 0,
        computed: false,
    }
}

async fn ask(
    t: &TestData,
    g: &dyn Generator,
    conv: &mut Conversation,
    q: &str,
    style: PromptStyle,
) -> ehrqa::conversation::TurnAnswer {
    let plan = conv.prepare(&t.ws.index, tokenizer().as_ref(), q, opts(style)).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let drain = ehrqa::llm::generator::drain(rx);
    let turn = conv.answer(plan, g, tx).await.unwrap();
    drain.await.unwrap();
    turn
}

const POTASSIUM_LATEST: &str = "Observation/cd9a94fa-f320-4291-9c55-a58c852ca180";
const POTASSIUM_BEFORE: &str = "Observation/54548320-5317-426c-907e-4d75b2b59c48";

#[tokio::test(flavor = "multi_thread")]
async fn follow_ups_resolve_against_the_turns_before() {
    let t = fixtures().await;
    let g = real_generator();
    for style in [PromptStyle::Completion, PromptStyle::Chat] {
        let mut conv = Conversation::new("c", MERVIN);
        let first = ask(&t, &g, &mut conv, "What was his latest potassium?", style).await;
        assert_eq!((first.turn, first.context_kept), (1, false));

        // "the one before": the same context, the value before the one last answered (the
        // latest potassium, unless the model cited another one).
        let answered = conv.last_answered().expect("a potassium value was answered").clone();
        let plan =
            conv.prepare(&t.ws.index, tokenizer().as_ref(), "And the one before?", opts(style)).unwrap();
        assert!(plan.context_kept());
        let before = plan.resolved.before.clone().expect("the value before the one answered");
        assert!(before.date < answered.date);
        if answered.rref == POTASSIUM_LATEST {
            assert_eq!((before.rref.as_str(), before.date.as_str()), (POTASSIUM_BEFORE, "1982-09-14"));
        }
        assert!(plan.prep.ctx.sources[&before.rref].text.contains("Potassium"));
        assert!(plan.resolved.shown.contains(&before.date), "{}", plan.resolved.shown);
        // The prompt extends the first turn's: the record once, both questions, the answer.
        let text = match &plan.prep.built.prompt {
            Prompt::Chat(m) => m.iter().map(|m| m.content.clone()).collect::<Vec<_>>().join("\n"),
            Prompt::Completion(s) => ehrqa::llm::segment::to_text(s),
            Prompt::Raw(r) => r.clone(),
        };
        assert!(text.contains("What was his latest potassium?") && text.contains("And the one before?"));
        assert_eq!(text.matches(POTASSIUM_LATEST).count(), 0, "references are tags in the prompt");
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let drain = ehrqa::llm::generator::drain(rx);
        let second = conv.answer(plan, &g, tx).await.unwrap();
        drain.await.unwrap();
        assert_eq!((second.turn, second.context_kept), (2, true));
        assert!(
            second.cached_tokens >= first.answer.usage.prompt_tokens,
            "{style:?}: {} cached, the first prompt had {}",
            second.cached_tokens,
            first.answer.usage.prompt_tokens
        );

        // Another concept, no intent word: the intent carries over, the context is new and
        // holds the new concept's evidence.
        let plan = conv
            .prepare(&t.ws.index, tokenizer().as_ref(), "what about his hemoglobin A1c?", opts(style))
            .unwrap();
        assert!(!plan.context_kept());
        assert_eq!(plan.resolved.intent, ehrqa::retrieval::question::Intent::Latest);
        assert!(plan.prep.ctx.text.contains("A1c"), "{}", plan.prep.ctx.text);

        // No concept of its own: the previous concepts, the same context.
        let plan =
            conv.prepare(&t.ws.index, tokenizer().as_ref(), "When was it measured?", opts(style)).unwrap();
        assert!(plan.context_kept(), "{}", plan.resolved.retrieval);
        assert!(plan.resolved.retrieval.contains("potassium"), "{}", plan.resolved.retrieval);
    }
}

// ---- Over HTTP ----

struct Service {
    _process: Process,
    base: String,
    admin: String,
    clinic: String,
    other: String,
}

fn key(dir: &std::path::Path, name: &str, patients: Option<&str>) -> (String, String) {
    let mut args = vec!["key", "new", "--name", name, "--format", "json"];
    if let Some(p) = patients {
        args.extend(["--patients", p]);
    }
    let v: Value = serde_json::from_str(&stdout(&ehrqa(dir, &args))).unwrap();
    (v["key"].as_str().unwrap().to_owned(), v["line"].as_str().unwrap().to_owned())
}

fn start(dir: &std::path::Path) -> Service {
    assert!(ehrqa(dir, &["ingest", fixture("fhir").to_str().unwrap()]).status.success());
    let (admin, admin_line) = key(dir, "admin", None);
    let (other, other_line) = key(dir, "other", None);
    let (clinic, clinic_line) = key(dir, "clinic", Some(DONG));
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("{admin_line}\n{other_line}\n{clinic_line}\n")).unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--api-keys"])
        .arg(&keys)
        .args(["--budget", "1024", "--max-tokens", "12", "--max-conversations", "8"])
        .env_remove("EHRQA_API_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ehrqa serve");
    wait_for_port(port, Duration::from_secs(60));
    Service { _process: Process { child }, base: format!("http://127.0.0.1:{port}"), admin, clinic, other }
}

impl Service {
    async fn post(&self, path: &str, key: &str, body: Value, accept: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .header("accept", accept)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn open(&self, patient: &str, key: &str) -> String {
        let r = self.post(&format!("/v1/patients/{patient}/conversations"), key, Value::Null, "*/*").await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["patient"], patient);
        v["id"].as_str().unwrap().to_owned()
    }

    async fn ask(&self, patient: &str, cid: &str, key: &str, q: &str) -> (StatusCode, Value) {
        let path = format!("/v1/patients/{patient}/conversations/{cid}/ask");
        let body = serde_json::json!({"question": q, "model_only": true});
        let r = self.post(&path, key, body, "application/json").await;
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conversations_over_http_follow_up_stream_and_stay_with_their_patient_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path());
    let cid = s.open(MERVIN, &s.admin).await;
    let (st, a) = s.ask(MERVIN, &cid, &s.admin, "What was his latest potassium?").await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!((a["conversation_id"].as_str(), a["turn"].as_u64()), (Some(cid.as_str()), Some(1)));
    assert!(a["notice"].as_str().unwrap().starts_with("Not for clinical use"));
    assert!(a["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let (st, b) = s.ask(MERVIN, &cid, &s.admin, "and the one before?").await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!((b["turn"].as_u64(), b["context_kept"].as_bool()), (Some(2), Some(true)));
    assert!(b["resolved_question"].as_str().unwrap().contains("recorded before the one of 19"), "{b}");
    assert!(b["cached_tokens"].as_u64().unwrap() >= a["usage"]["prompt_tokens"].as_u64().unwrap(), "{b}");

    // Streamed: tokens, then the turn's answer.
    let path = format!("/v1/patients/{MERVIN}/conversations/{cid}/ask");
    let body = serde_json::json!({"question": "When was it measured?", "model_only": true});
    let r = s.post(&path, &s.admin, body, "text/event-stream").await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let last = text.split("\n\n").filter(|b| !b.trim().is_empty()).last().unwrap();
    assert!(last.starts_with("event: answer"), "{last}");
    let data: Value =
        serde_json::from_str(last.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(data["turn"].as_u64(), Some(3));

    // Under another patient, for another key, or unknown: not found. Another key's patient:
    // forbidden, as everywhere.
    assert_eq!(s.ask(DONG, &cid, &s.admin, "and before that?").await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.ask(MERVIN, &cid, &s.other, "and before that?").await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.ask(MERVIN, &cid, &s.clinic, "and before that?").await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.ask(MERVIN, "0123abcd", &s.admin, "and before that?").await.0, StatusCode::NOT_FOUND);
    let dongs = s.open(DONG, &s.clinic).await;
    assert_eq!(s.ask(DONG, &dongs, &s.admin, "Any allergies?").await.0, StatusCode::NOT_FOUND);
    let r = s.post(&format!("/v1/patients/{MERVIN}/conversations"), &s.clinic, Value::Null, "*/*").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The conversation is untouched by the refused questions.
    let (st, d) = s.ask(MERVIN, &cid, &s.admin, "What was the value?").await;
    assert_eq!((st, d["turn"].as_u64()), (StatusCode::OK, Some(4)));

    // Documented.
    let r = reqwest::Client::new().get(format!("{}/openapi.json", s.base)).bearer_auth(&s.admin).send().await;
    let doc: Value = r.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/v1/patients/{id}/conversations"]["post"].is_object());
    assert!(doc["paths"]["/v1/patients/{id}/conversations/{cid}/ask"]["post"].is_object());
}

// ---- The CLI ----

#[test]
fn chat_reads_questions_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    assert!(ehrqa(dir.path(), &["ingest", fixture("fhir").to_str().unwrap()]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ehrqa"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--format", "json", "chat", "--patient", MERVIN, "--budget", "1024", "--max-tokens", "8"])
        .arg("--model-only")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"What was his latest potassium?\n\nand the one before?\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let turns: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(turns.len(), 2);
    assert_eq!(turns[0]["turn"], 1);
    assert_eq!((turns[1]["turn"].as_u64(), turns[1]["context_kept"].as_bool()), (Some(2), Some(true)));
    assert!(turns[1]["resolved_question"].as_str().unwrap().contains("recorded before the one of 19"));
    assert!(turns[1]["cached_tokens"].as_u64().unwrap() > 0);
}
