//! Prometheus metrics, rendered by hand (a few counters and histograms do not need a crate):
//! requests and latency per route template (never the concrete path, which names patients),
//! ingest counters, tokens generated, generation queue depth.
//!
//! Every label takes values from a bounded set, because each new value is a series kept for
//! the life of the process and any client could otherwise add them: methods from a closed enum,
//! routes only as the templates routing matched, statuses as their three-digit numbers.

use std::borrow::Cow;
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

/// The request methods counted by name; every other method (HTTP allows any token) is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MethodLabel {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
    Other,
}

impl MethodLabel {
    /// The label of a method as sent (methods are case-sensitive: `get` is not `GET`).
    pub fn of(method: &str) -> Self {
        match method {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "PATCH" => Self::Patch,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Patch => "PATCH",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
            Self::Other => "other",
        }
    }
}

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// A label value as the Prometheus text format needs it: backslash, double quote and line feed
/// escaped (`\\`, `\"`, `\n`), so no value can end its label or line early.
pub fn escape_label(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(MethodLabel, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    pub ingested_resources: AtomicU64,
    pub ingest_requests: AtomicU64,
    pub answers: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
}

impl Metrics {
    /// One request: `route` is the template routing matched (`None`: no route did, counted as
    /// `unmatched`), never a concrete path, which would name patients and grow without end.
    pub fn observe(&self, method: MethodLabel, route: Option<&str>, status: u16, seconds: f64) {
        let route = route.unwrap_or(UNMATCHED);
        let key = (method, route.to_owned(), status);
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
            let (m, r) = (m.as_str(), escape_label(r));
            let _ =
                writeln!(out, "ehrqa_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}");
        }
        out.push_str("# TYPE ehrqa_http_request_duration_seconds histogram\n");
        for (r, h) in self.latency.lock().expect("metrics lock").iter() {
            let r = escape_label(r);
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
        m.observe(MethodLabel::Get, Some("/v1/patients"), 200, 0.003);
        m.observe(MethodLabel::Get, Some("/v1/patients"), 200, 0.2);
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

    #[test]
    fn methods_outside_the_common_seven_share_one_label() {
        let m = Metrics::default();
        for method in ["GET", "FOOBAR", "X1", "get", "PROPFIND"] {
            m.observe(MethodLabel::of(method), None, 405, 0.001);
        }
        let t = m.render(0);
        assert!(t.contains("ehrqa_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"405\"} 1"));
        assert!(
            t.contains("ehrqa_http_requests_total{method=\"other\",route=\"unmatched\",status=\"405\"} 4")
        );
        assert_eq!(t.matches("ehrqa_http_requests_total{").count(), 2, "{t}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("/v1/patients/{id}"), "/v1/patients/{id}");
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        let m = Metrics::default();
        m.observe(MethodLabel::Post, Some("/x\"}\nfake 1"), 200, 0.001);
        let t = m.render(0);
        assert!(t.contains("route=\"/x\\\"}\\nfake 1\""), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("fake")), "{t}");
    }
}
