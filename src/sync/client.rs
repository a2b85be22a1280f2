//! A FHIR REST client, mostly for reading (it also creates and deletes Subscriptions and ends
//! exports): JSON over reqwest, bearer tokens (static, or fetched with OAuth client credentials,
//! see [`super::token`]; a refused one is fetched anew once), retries on 429, 5xx and timeouts
//! (the shared [`RetryPolicy`], as the remote model's), and paging through `Bundle.link[next]`
//! whatever shape the server gives its links.
//!
//! Every request stays on the server's origin: a `next` link or a redirect elsewhere is refused,
//! not followed, so the token goes nowhere else. A refusal's body is not repeated in errors (they
//! reach job reports and logs; a server's reply is not ours to echo).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value as Json;

pub use super::token::ServerAuth;
use super::token::Tokens;
use crate::outgoing::{same_origin_redirects, Origin};
use crate::retry::{self, Failure, RetryPolicy, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url}: cannot reach the server: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}: the server refused the credentials (401)")]
    Unauthorized(String),
    #[error("{0}: not found ({1})")]
    NotFound(String, u16),
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: on another origin than the server {server}; not followed")]
    OtherOrigin { url: String, server: String },
    #[error("{url}: HTTP {status}, a redirect to another origin; not followed")]
    Redirected { url: String, status: u16 },
    #[error("{0}: the server did not return FHIR JSON: {1}")]
    Garbage(String, String),
    #[error("token endpoint {0}: {1}")]
    Token(String, String),
}

pub struct FhirClient {
    base: String,
    origin: Origin,
    http: reqwest::Client,
    tokens: Tokens,
    retry: RetryPolicy,
}

/// The kinds of request a sync makes.
#[derive(Debug, Clone, Copy)]
enum Call<'a> {
    Get,
    /// A new resource (`POST`), the body its JSON.
    Create(&'a [u8]),
    /// A GET that starts an asynchronous operation (`Prefer: respond-async`).
    KickOff,
    Delete,
    /// An operation's output file (NDJSON), with the bearer token or without.
    Download {
        token: bool,
    },
}

/// Where an asynchronous operation stands.
#[derive(Debug)]
pub enum Poll {
    /// Still working: the server's `X-Progress` (printable characters only, at most 100) and
    /// its `Retry-After`.
    Running { progress: Option<String>, retry_after: Option<Duration> },
    /// Finished: the completion manifest.
    Done(Json),
}

/// A server's progress text as shown: printable, short (it reaches a terminal).
fn progress_text(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// Pages followed at most for one search (a server whose next links loop is cut off).
const MAX_PAGES: usize = 100_000;

impl FhirClient {
    pub fn new(base: &str, auth: ServerAuth, timeout: Duration) -> Result<Self, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable { url: base.into(), reason };
        let origin = Origin::of(base).ok_or_else(|| unreachable("not an http(s) URL".into()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(timeout)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            origin,
            http,
            tokens: Tokens::new(auth),
            retry: RetryPolicy::default(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// How many access tokens this client fetched from the token endpoint so far.
    pub fn tokens_fetched(&self) -> usize {
        self.tokens.fetched()
    }

    /// An absolute URL for a path relative to the base; an absolute URL (a `next` link, a status
    /// URL) only when it is on the server's origin.
    pub fn url(&self, path: &str) -> Result<String, ClientError> {
        if !is_absolute(path) {
            return Ok(format!("{}/{}", self.base, path.trim_start_matches('/')));
        }
        match Origin::of(path) {
            Some(o) if o == self.origin => Ok(path.to_owned()),
            _ => Err(ClientError::OtherOrigin {
                url: path.to_owned(),
                server: self.origin.as_str().to_owned(),
            }),
        }
    }

    /// GETs a FHIR JSON resource, retried as the shared policy says.
    pub async fn get(&self, path: &str) -> Result<Json, ClientError> {
        let url = self.url(path)?;
        self.retry.run(&url, || self.get_once(&url)).await
    }

    /// One attempt. A 401 with fetched tokens fetches a fresh one and asks once more (tokens
    /// expire, servers restart); any other refusal, and a 404, are final.
    async fn get_once(&self, url: &str) -> Result<Json, Failure<ClientError>> {
        let resp = self.attempt(Call::Get, url).await?;
        let bytes = resp.bytes().await.map_err(|e| transport_failure(url, &e))?;
        parse(url, &bytes).map_err(Failure::fatal)
    }

    /// One request, its refusals mapped: a success (2xx) comes back as it is.
    async fn attempt(&self, call: Call<'_>, url: &str) -> Result<reqwest::Response, Failure<ClientError>> {
        let mut resp = self.send(call, url).await?;
        if resp.status() == 401 && self.tokens.auth().fetches_tokens() {
            self.tokens.refused().await;
            resp = self.send(call, url).await?;
        }
        let status = resp.status();
        match status.as_u16() {
            200..=299 => Ok(resp),
            401 | 403 => Err(Failure::fatal(ClientError::Unauthorized(url.into()))),
            404 | 410 => Err(Failure::fatal(ClientError::NotFound(url.into(), status.as_u16()))),
            // Redirects on the origin are followed by the client; one left is to elsewhere.
            code @ 300..=399 => {
                Err(Failure::fatal(ClientError::Redirected { url: url.into(), status: code }))
            }
            code => match retry::status_verdict(status, resp.headers()) {
                Verdict::Final => Err(Failure::fatal(ClientError::Status { url: url.into(), status: code })),
                verdict => {
                    let reason = format!("HTTP {code}");
                    Err(Failure::new(ClientError::Unreachable { url: url.into(), reason }, verdict))
                }
            },
        }
    }

    async fn send(&self, call: Call<'_>, url: &str) -> Result<reqwest::Response, Failure<ClientError>> {
        let rb = match call {
            // No cached search results (HAPI reuses a search's results for 60 s by default, so
            // an incremental sync would miss what changed in that minute).
            Call::Get => self
                .http
                .get(url)
                .header("Accept", "application/fhir+json")
                .header("Cache-Control", "no-cache"),
            Call::KickOff => self.http.get(url).header("Accept", "application/fhir+json"),
            Call::Create(body) => self
                .http
                .post(url)
                .header("Accept", "application/fhir+json")
                .header("Content-Type", "application/fhir+json")
                .header("Prefer", "return=representation")
                .body(body.to_vec()),
            Call::Delete => self.http.delete(url).header("Accept", "application/fhir+json"),
            Call::Download { .. } => self.http.get(url).header("Accept", "application/fhir+ndjson"),
        };
        let rb = match call {
            Call::KickOff => rb.header("Prefer", "respond-async"),
            _ => rb,
        };
        let token = self.tokens.bearer(&self.http, &self.base).await.map_err(Failure::fatal)?;
        let rb = match (call, token) {
            (Call::Download { token: false }, _) | (_, None) => rb,
            (_, Some(t)) => rb.bearer_auth(t),
        };
        rb.send().await.map_err(|e| transport_failure(url, &e))
    }

    /// Starts an asynchronous operation (`$export`): the status URL it answers 202 with, which
    /// must be on the server's origin.
    pub async fn kick_off(&self, path: &str) -> Result<String, ClientError> {
        let url = self.url(path)?;
        let resp = self.retry.run(&url, || self.attempt(Call::KickOff, &url)).await?;
        if resp.status() != 202 {
            let status = resp.status().as_u16();
            return Err(ClientError::Garbage(
                url,
                format!("HTTP {status} where an asynchronous 202 was expected"),
            ));
        }
        let location = resp.headers().get("Content-Location").and_then(|v| v.to_str().ok());
        let location =
            location.ok_or_else(|| ClientError::Garbage(url.clone(), "no Content-Location".into()))?;
        self.url(location)
    }

    /// Asks an asynchronous operation how it is going.
    pub async fn poll(&self, status_url: &str) -> Result<Poll, ClientError> {
        let url = self.url(status_url)?;
        let resp = self.retry.run(&url, || self.attempt(Call::Get, &url)).await?;
        if resp.status() == 202 {
            let progress = resp.headers().get("X-Progress").and_then(|v| v.to_str().ok()).map(progress_text);
            let retry_after = retry::retry_after(resp.headers(), std::time::SystemTime::now());
            return Ok(Poll::Running { progress, retry_after });
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        serde_json::from_slice(&bytes).map(Poll::Done).map_err(|e| ClientError::Garbage(url, e.to_string()))
    }

    /// A file an operation produced, with the token only when the server says it needs one.
    pub async fn download(&self, file_url: &str, token: bool) -> Result<Vec<u8>, ClientError> {
        let url = self.url(file_url)?;
        let call = Call::Download { token };
        let resp = self.retry.run(&url, || self.attempt(call, &url)).await?;
        let bytes =
            resp.bytes().await.map_err(|e| ClientError::Unreachable { url, reason: e.to_string() })?;
        Ok(bytes.to_vec())
    }

    /// Creates a resource (`POST {base}/{type}`) and returns the server's copy, with the id it
    /// was given. Made once, not retried: a create is not idempotent.
    pub async fn create(&self, resource: &Json) -> Result<Json, ClientError> {
        let rtype = resource["resourceType"].as_str().unwrap_or_default();
        let url = self.url(rtype)?;
        let body =
            serde_json::to_vec(resource).map_err(|e| ClientError::Garbage(url.clone(), e.to_string()))?;
        let resp = self.attempt(Call::Create(&body), &url).await.map_err(|f| f.error)?;
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Unreachable { url: url.clone(), reason: e.to_string() })?;
        parse(&url, &bytes)
    }

    /// Deletes what a URL names: an asynchronous operation (its files go), a Subscription. One
    /// already gone is fine.
    pub async fn delete(&self, status_url: &str) -> Result<(), ClientError> {
        let url = self.url(status_url)?;
        match self.retry.run(&url, || self.attempt(Call::Delete, &url)).await {
            Ok(_) | Err(ClientError::NotFound(..)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every resource of a search or operation, following `next` links page after page (empty
    /// pages included: some servers return them before the end).
    pub async fn all_pages(&self, first: &str) -> Result<Vec<Json>, ClientError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut next = Some(self.url(first)?);
        while let Some(url) = next.take() {
            if !seen.insert(url.clone()) || seen.len() > MAX_PAGES {
                break;
            }
            let bundle = self.get(&url).await?;
            if bundle["resourceType"] != "Bundle" {
                return Err(ClientError::Garbage(url, "expected a Bundle".into()));
            }
            for e in bundle["entry"].as_array().into_iter().flatten() {
                // Search bundles may carry OperationOutcomes as `outcome` entries.
                if e["resource"].is_object() && e["search"]["mode"] != "outcome" {
                    out.push(e["resource"].clone());
                }
            }
            next = bundle["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(|u| self.url(&json_format(u)))
                .transpose()?;
        }
        Ok(out)
    }
}

pub(super) fn is_absolute(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// A transport error, retried when it is transient.
fn transport_failure(url: &str, e: &reqwest::Error) -> Failure<ClientError> {
    let error = ClientError::Unreachable { url: url.into(), reason: e.to_string() };
    Failure::new(error, retry::error_verdict(e))
}

/// A `next` link asking for JSON: HAPI's links repeat the `_format` a search was made with (or
/// one a proxy added), and `_format` outranks the Accept header.
fn json_format(url: &str) -> String {
    let Some((path, query)) = url.split_once('?') else { return url.to_owned() };
    let params: Vec<&str> =
        query.split('&').filter(|p| !p.starts_with("_format=") && *p != "_format").collect();
    if params.len() == query.split('&').count() {
        return url.to_owned();
    }
    let mut out = format!("{path}?{}", params.join("&"));
    out.push_str(if params.is_empty() { "_format=json" } else { "&_format=json" });
    out
}

fn parse(url: &str, bytes: &[u8]) -> Result<Json, ClientError> {
    let json: Json =
        serde_json::from_slice(bytes).map_err(|e| ClientError::Garbage(url.into(), e.to_string()))?;
    if json["resourceType"].as_str().is_none() {
        return Err(ClientError::Garbage(url.into(), "no resourceType".into()));
    }
    Ok(json)
}

/// `application/x-www-form-urlencoded` escaping.
pub(super) fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Query-string escaping for values (ids, instants).
pub fn query_escape(s: &str) -> String {
    form_escape(s)
}

#[cfg(test)]
mod tests {
    use super::json_format;

    #[test]
    fn next_links_ask_for_json_whatever_format_they_carry() {
        let hapi = "http://h/fhir?_getpages=ab&_getpagesoffset=20&_count=20&_format=xml&_pretty=true";
        assert_eq!(
            json_format(hapi),
            "http://h/fhir?_getpages=ab&_getpagesoffset=20&_count=20&_pretty=true&_format=json"
        );
        assert_eq!(json_format("http://h/fhir?_format=xml"), "http://h/fhir?_format=json");
        let plain = "http://h/fhir/Observation?patient=1&_count=5";
        assert_eq!(json_format(plain), plain);
    }
}
