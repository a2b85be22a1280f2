//! Prometheus metrics, rendered by hand (a few counters and histograms do not need a crate):
//! requests and latency per route template (never the concrete path, which names patients),
//! ingest counters, tokens generated, generation queue depth.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    n: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub ingested_resources: AtomicU64,
    pub ingest_requests: AtomicU64,
    pub answers: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let key = (method.to_owned(), route.to_owned(), status);
        *self.requests.lock().expect("metrics lock").entry(key).or_default() += 1;
        let mut lat = self.latency.lock().expect("metrics lock");
        let h = lat.entry(route.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.n += 1;
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn render(&self, queue_depth: usize) -> String {
        let mut out = String::new();
        out.push_str("# TYPE ehrqa_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ =
                writeln!(out, "ehrqa_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}");
        }
        out.push_str("# TYPE ehrqa_http_request_duration_seconds histogram\n");
        for (r, h) in self.latency.lock().expect("metrics lock").iter() {
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "ehrqa_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "ehrqa_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
                h.n
            );
            let _ = writeln!(out, "ehrqa_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(out, "ehrqa_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.n);
        }
        let counters = [
            ("ehrqa_ingest_requests_total", &self.ingest_requests),
            ("ehrqa_ingested_resources_total", &self.ingested_resources),
            ("ehrqa_answers_total", &self.answers),
            ("ehrqa_prompt_tokens_total", &self.prompt_tokens),
            ("ehrqa_generated_tokens_total", &self.generated_tokens),
        ];
        for (name, c) in counters {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", c.load(Ordering::Relaxed));
        }
        let _ = writeln!(
            out,
            "# TYPE ehrqa_generation_queue_depth gauge\nehrqa_generation_queue_depth {queue_depth}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.observe("GET", "/v1/patients", 200, 0.003);
        m.observe("GET", "/v1/patients", 200, 0.2);
        Metrics::add(&m.generated_tokens, 12);
        let t = m.render(2);
        assert!(
            t.contains("ehrqa_http_requests_total{method=\"GET\",route=\"/v1/patients\",status=\"200\"} 2")
        );
        assert!(
            t.contains("ehrqa_http_request_duration_seconds_bucket{route=\"/v1/patients\",le=\"0.005\"} 1")
        );
        assert!(t.contains("ehrqa_http_request_duration_seconds_count{route=\"/v1/patients\"} 2"));
        assert!(t.contains("ehrqa_generated_tokens_total 12"));
        assert!(t.contains("ehrqa_generation_queue_depth 2"));
    }
}
