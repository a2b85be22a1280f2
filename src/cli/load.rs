//! `ehrqa bench http`: an HTTP load generator for the service (N concurrent clients in a loop
//! for a fixed time), reporting requests/s and latency percentiles, so the numbers come from the
//! same binary on any machine without installing another tool.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::Serialize;

use super::output::{print_json, OutputFormat};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The URL to load. Given several times (the same route on several replicas), the clients
    /// are spread over them in turn, as a balancing proxy would.
    #[arg(long, required = true)]
    pub url: Vec<String>,
    /// A JSON body: the requests are POSTs.
    #[arg(long)]
    pub body: Option<String>,
    /// The API key, from a file (or EHRQA_API_KEY).
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Seconds of load (after one warm-up request per client).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    /// The first URL loaded; `urls` has them all.
    pub url: String,
    pub urls: Vec<String>,
    pub method: &'static str,
    pub concurrency: usize,
    pub seconds: f64,
    pub requests: usize,
    pub errors: usize,
    pub requests_per_sec: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p90: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// To the response's head (status and headers); `latency_*` is to the end of its body.
    pub first_byte_ms_p50: f64,
    pub first_byte_ms_p99: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The `p` quantile of sorted values (nearest rank), 0 when there are none.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0)
}

pub async fn run(args: Args, format: OutputFormat) -> anyhow::Result<bool> {
    if args.concurrency == 0 || args.duration == 0 {
        bail!("--concurrency and --duration must be positive");
    }
    let key = match &args.key_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("EHRQA_API_KEY").ok(),
    };
    let client = reqwest::Client::builder().pool_max_idle_per_host(args.concurrency).build()?;
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency {
        let url = args.url[i % args.url.len()].clone();
        let (client, body, key) = (client.clone(), args.body.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let send = || {
                let rb = match &body {
                    Some(b) => client.post(&url).header("content-type", "application/json").body(b.clone()),
                    None => client.get(&url),
                };
                let rb = match &key {
                    Some(k) => rb.bearer_auth(k),
                    None => rb,
                };
                // Success, and milliseconds to the response head (first byte) and to its end.
                async move {
                    let t = Instant::now();
                    let Ok(r) = rb.send().await else { return (false, ms(t), ms(t)) };
                    let head = ms(t);
                    let ok = r.status().is_success();
                    let ok = r.bytes().await.is_ok() && ok;
                    (ok, head, ms(t))
                }
            };
            let _ = send().await;
            let (mut first, mut lat) = (Vec::new(), Vec::new());
            let mut errors = 0;
            while Instant::now() < deadline {
                let (ok, head, total) = send().await;
                errors += usize::from(!ok);
                first.push(head);
                lat.push(total);
            }
            (first, lat, errors)
        }));
    }
    let (mut first, mut lat) = (Vec::new(), Vec::new());
    let mut errors = 0;
    for t in tasks {
        let (f, l, e) = t.await?;
        first.extend(f);
        lat.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    let pct = |p: f64| percentile(&lat, p);
    let report = LoadReport {
        url: args.url[0].clone(),
        urls: args.url,
        method: if args.body.is_some() { "POST" } else { "GET" },
        concurrency: args.concurrency,
        seconds,
        requests: lat.len(),
        errors,
        requests_per_sec: lat.len() as f64 / seconds,
        latency_ms_p50: pct(0.5),
        latency_ms_p90: pct(0.9),
        latency_ms_p99: pct(0.99),
        latency_ms_max: lat.last().copied().unwrap_or(0.0),
        first_byte_ms_p50: percentile(&first, 0.5),
        first_byte_ms_p99: percentile(&first, 0.99),
    };
    match format {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => println!(
            "{} {}: {} clients, {} requests in {:.1} s ({} errors): {:.0} req/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; first byte p50 {:.1} ms, p99 {:.1} ms",
            report.method,
            report.url,
            report.concurrency,
            report.requests,
            report.seconds,
            report.errors,
            report.requests_per_sec,
            report.latency_ms_p50,
            report.latency_ms_p90,
            report.latency_ms_p99,
            report.latency_ms_max,
            report.first_byte_ms_p50,
            report.first_byte_ms_p99
        ),
    }
    Ok(report.errors == 0)
}
