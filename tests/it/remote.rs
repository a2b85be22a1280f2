//! The remote backend against a real OpenAI-compatible server on loopback: llama.cpp's server
//! (`tools/llama_server.py`, from the wheel `scripts/setup` installs) serving the Gemma 3 270M
//! GGUF. What no real server does on demand (a character split across network writes, a 429
//! with `Retry-After`) is served by a scripted server.

use std::process::{Command, Stdio};
use std::time::Duration;

use ehrqa::llm::chat::Message;
use ehrqa::llm::{Generation, GenerationRequest, Generator, Prompt, RemoteConfig, RemoteGenerator};
use tokio::sync::mpsc;

use crate::helpers::{free_port, stderr, Process};
use crate::scripted::{self, chunked, fixed};

struct Server {
    _process: Process,
    url: String,
}

fn start(api_key: Option<&str>) -> Server {
    let cache = ehrqa::settings::default_cache_dir();
    let python = cache.join("venv-llamaserver/bin/python");
    let model = cache.join("models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf");
    assert!(python.is_file() && model.is_file(), "run scripts/setup first");
    let port = free_port();
    let mut cmd = Command::new(python);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/llama_server.py"))
        .args(["--host", "127.0.0.1", "--n_threads", "2", "--n_ctx", "2048"])
        .arg("--port")
        .arg(port.to_string())
        .arg("--model")
        .arg(&model)
        .arg("--model_alias")
        .arg("gemma-3-270m")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(k) = api_key {
        cmd.args(["--api_key", k]);
    }
    let child = cmd.spawn().expect("start llama.cpp server");
    let url = format!("http://127.0.0.1:{port}");
    // The port opens before the model has loaded; /health answers 200 once it has.
    wait_for_health(port, Duration::from_secs(120));
    Server { _process: Process { child }, url }
}

/// Waits until `GET /health` on the port answers 200.
fn wait_for_health(port: u16, within: Duration) {
    let started = std::time::Instant::now();
    loop {
        if health_status(port).is_some_and(|line| line.split(' ').nth(1) == Some("200")) {
            return;
        }
        assert!(started.elapsed() < within, "llama.cpp's server on port {port} is not healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status line of `GET /health`, if anything answered.
fn health_status(port: u16) -> Option<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line)
}

fn generate(server: &str, extra: &[&str], key: Option<&str>) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ehrqa"));
    cmd.arg("--data-dir").arg(dir.path()).args([
        "generate",
        "--llm-url",
        server,
        "--llm-model",
        "gemma-3-270m",
    ]);
    cmd.args(extra);
    match key {
        Some(k) => cmd.env("EHRQA_LLM_KEY", k),
        None => cmd.env_remove("EHRQA_LLM_KEY"),
    };
    cmd.output().unwrap()
}

#[test]
fn streams_from_a_real_openai_compatible_server() {
    let server = start(Some("test-key"));
    // Raw completion (/v1/completions) and chat (/v1/chat/completions), streamed.
    let out =
        generate(&server.url, &["--raw", "--max-tokens", "12", "The capital of France is"], Some("test-key"));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.to_lowercase().contains("france") || text.to_lowercase().contains("paris"), "{text:?}");
    assert!(
        stderr(&out).contains("12 generated") || stderr(&out).contains(" generated;"),
        "{}",
        stderr(&out)
    );
    // (The 270M base model may end its chat turn at once: the exchange itself is what is tested.)
    let out = generate(&server.url, &["--max-tokens", "8", "Say hello."], Some("test-key"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(" generated;"), "{}", stderr(&out));
    // A wrong key is refused with the server's status, on one line.
    let out = generate(&server.url, &["--max-tokens", "4", "Hi"], Some("wrong-key"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.contains("401"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = free_port();
    let out = generate(&format!("http://127.0.0.1:{port}"), &["--max-tokens", "4", "Hi"], None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error: remote model server: http://127.0.0.1:"), "{err}");
}

/// Generates against a server through the library, returning the generation and the pieces the
/// sink was sent.
async fn generate_from(url: &str) -> (Generation, Vec<String>) {
    let generator = RemoteGenerator::new(RemoteConfig::new(url, "m")).unwrap();
    let req = GenerationRequest {
        prompt: Prompt::Chat(vec![Message::user("Units?")]),
        max_tokens: 16,
        sampling: Default::default(),
        stop: Vec::new(),
        images: Vec::new(),
    };
    let (sink, mut pieces) = mpsc::channel(64);
    let g = generator.generate(req, sink).await.expect("generation");
    let mut shown = Vec::new();
    while let Ok(p) = pieces.try_recv() {
        shown.push(p);
    }
    (g, shown)
}

/// An OpenAI-style chat stream of "Café ≥ 5 µg 🩺" in which "é", "≥" and the emoji each arrive
/// in two network writes, and one event has two spaces after `data:`.
fn split_stream() -> scripted::Response {
    let delta = |content: &str| {
        format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{content}"}},"finish_reason":null}}]}}"#)
    };
    let end = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#;
    let body = format!(
        "data: {}\n\ndata:  {}\n\ndata: {end}\n\ndata: [DONE]\n\n",
        delta("Café ≥ 5"),
        delta(" µg 🩺")
    );
    // Cut inside "é" (two bytes), "≥" (three) and the emoji (four).
    let cuts: Vec<usize> =
        [("é", 1), ("≥", 2), ("🩺", 2)].iter().map(|(c, k)| body.find(c).unwrap() + k).collect();
    let b = body.as_bytes();
    chunked("text/event-stream", &[&b[..cuts[0]], &b[cuts[0]..cuts[1]], &b[cuts[1]..cuts[2]], &b[cuts[2]..]])
}

#[tokio::test(flavor = "multi_thread")]
async fn keeps_characters_split_across_network_writes() {
    let server = scripted::serve(vec![split_stream()]).await;
    let (g, shown) = generate_from(&server.url).await;
    assert_eq!(g.text, "Café ≥ 5 µg 🩺");
    assert_eq!(shown.concat(), g.text);
    assert_eq!((g.prompt_tokens, g.completion_tokens, g.finish), (9, 2, ehrqa::llm::Finish::Stop));
}

#[tokio::test(flavor = "multi_thread")]
async fn waits_exactly_what_retry_after_asks() {
    let busy = fixed("429 Too Many Requests", &[("Retry-After", "1")], "slow down");
    let server = scripted::serve(vec![busy, split_stream()]).await;
    let (g, _) = generate_from(&server.url).await;
    assert_eq!(g.text, "Café ≥ 5 µg 🩺");
    let at = server.arrivals();
    assert_eq!(at.len(), 2);
    let waited = at[1] - at[0];
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_millis(1300), "{waited:?}");
}
