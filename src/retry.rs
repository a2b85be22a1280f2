//! One retry policy for every outgoing HTTP client (the FHIR sync client, the remote model), so
//! they agree on what is worth retrying and for how long.
//!
//! Built on `backon`: exponential backoff with jitter, a bounded number of attempts and a bound
//! on the total time since the first attempt. Connection errors, timeouts, 429 and 5xx are
//! retried. When the server says when to come back (`Retry-After`, in seconds or as an HTTP
//! date), that wait replaces the backoff's, capped, rather than being added to it: a server that
//! asks for one second gets the next request after one second.
//!
//! Callers keep their own errors: an attempt fails with a [`Failure`] that carries the caller's
//! error and a [`Verdict`], and [`RetryPolicy::run`] hands the last error back when it gives up.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// What one failed attempt says about the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not worth another try (a refusal, a 404, a malformed request).
    Final,
    /// Transient: try again after the policy's backoff.
    Backoff,
    /// The server said when to come back: try again after exactly this long (capped).
    After(Duration),
}

/// A failed attempt: the caller's error and whether to try again.
#[derive(Debug)]
pub struct Failure<E> {
    pub error: E,
    pub verdict: Verdict,
}

impl<E> Failure<E> {
    pub fn new(error: E, verdict: Verdict) -> Self {
        Self { error, verdict }
    }

    /// A failure no retry can fix.
    pub fn fatal(error: E) -> Self {
        Self::new(error, Verdict::Final)
    }
}

/// How many times and how long to keep trying.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least one is made).
    pub attempts: u32,
    /// The first backoff; each next one doubles, with up to as much again added as jitter.
    pub min_delay: Duration,
    /// The longest single backoff (before jitter).
    pub max_delay: Duration,
    /// No retry starts later than this after the first attempt began.
    pub max_total: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_total: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts or the time run out; the
    /// error is the last attempt's.
    pub async fn run<T, E, F, Fut>(&self, what: &str, op: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure<E>>>,
        E: std::fmt::Display,
    {
        let started = Instant::now();
        op.retry(self.backoff())
            .when(|f: &Failure<E>| f.verdict != Verdict::Final)
            .adjust(|f: &Failure<E>, next| self.wait(f.verdict, next, started.elapsed()))
            .notify(|f: &Failure<E>, wait| tracing::debug!(?wait, "{what}: retrying after: {}", f.error))
            .await
            .map_err(|f| f.error)
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.max(1) as usize - 1)
    }

    /// The wait before the next attempt, or `None` to give up: `next` is the backoff's proposal
    /// (`None` once the attempts are spent), which a server's own wait replaces.
    fn wait(&self, verdict: Verdict, next: Option<Duration>, elapsed: Duration) -> Option<Duration> {
        let wait = match verdict {
            Verdict::Final => return None,
            Verdict::Backoff => next?,
            Verdict::After(d) => next.map(|_| d.min(self.max_retry_after))?,
        };
        (elapsed + wait <= self.max_total).then_some(wait)
    }
}

/// What a response's status says: 429 and 5xx are transient (after the server's `Retry-After`
/// when it sends one), anything else is final.
pub fn status_verdict(status: StatusCode, headers: &HeaderMap) -> Verdict {
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return Verdict::Final;
    }
    match retry_after(headers, SystemTime::now()) {
        Some(d) => Verdict::After(d),
        None => Verdict::Backoff,
    }
}

/// What a transport error says: connection failures, timeouts and connections dropped mid-request
/// are transient; a request that cannot be built or a redirect loop is not.
pub fn error_verdict(e: &reqwest::Error) -> Verdict {
    if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() {
        Verdict::Backoff
    } else {
        Verdict::Final
    }
}

/// `Retry-After` as a wait from `now`: delay-seconds or an HTTP date (a date in the past is no
/// wait). Unreadable values are ignored, leaving the backoff in charge.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn reads_retry_after_as_seconds_or_an_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(retry_after(&headers("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(&headers(" 0 "), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:28:07 GMT"), now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("Wed, 21 Oct 2015 07:27:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-3"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn only_429_and_5xx_are_retried() {
        let none = HeaderMap::new();
        assert_eq!(status_verdict(StatusCode::TOO_MANY_REQUESTS, &none), Verdict::Backoff);
        assert_eq!(status_verdict(StatusCode::BAD_GATEWAY, &none), Verdict::Backoff);
        assert_eq!(
            status_verdict(StatusCode::SERVICE_UNAVAILABLE, &headers("2")),
            Verdict::After(Duration::from_secs(2))
        );
        for s in [StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::NOT_FOUND] {
            assert_eq!(status_verdict(s, &headers("2")), Verdict::Final);
        }
    }

    #[test]
    fn the_servers_wait_replaces_the_backoff_within_bounds() {
        let p = RetryPolicy::default();
        let (next, zero) = (Some(Duration::from_millis(700)), Duration::ZERO);
        assert_eq!(p.wait(Verdict::After(Duration::from_secs(1)), next, zero), Some(Duration::from_secs(1)));
        assert_eq!(p.wait(Verdict::After(Duration::from_secs(3600)), next, zero), Some(p.max_retry_after));
        assert_eq!(p.wait(Verdict::Backoff, next, zero), next);
        // Attempts spent, a final error, or past the total time: no more tries.
        assert_eq!(p.wait(Verdict::After(Duration::from_secs(1)), None, zero), None);
        assert_eq!(p.wait(Verdict::Final, next, zero), None);
        assert_eq!(p.wait(Verdict::Backoff, next, p.max_total), None);
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_final_errors_stop_at_once() {
        let p =
            RetryPolicy { min_delay: Duration::from_millis(1), ..RetryPolicy::default() }.with_attempts(3);
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = p
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure::new("busy", Verdict::Backoff))
            })
            .await;
        assert_eq!((r, calls.swap(0, Ordering::SeqCst)), (Err("busy"), 3));
        let r: Result<(), &str> = p
            .run("test", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure::fatal("refused"))
            })
            .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Err("refused"), 1));
    }
}
