//! Where outgoing requests may go. Every client the service runs (a FHIR server's, a model
//! server's) talks to one configured server: the links it follows and the redirects it takes stay
//! on that server's origin (scheme, host, port), so neither a request nor a credential leaves for
//! a place the configuration did not name.

use reqwest::Url;

/// A URL's origin, `scheme://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// The origin of an absolute http(s) URL.
    pub fn of(url: &str) -> Option<Self> {
        let u = Url::parse(url).ok()?;
        matches!(u.scheme(), "http" | "https").then(|| Origin(u.origin().ascii_serialization()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Redirects are followed while they stay on the origin of the request that started them (at
/// most 10); any other is returned as it came, for the caller to refuse.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        if attempt.previous().len() < 10 && first.as_ref() == Some(&attempt.url().origin()) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}
