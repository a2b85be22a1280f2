//! Access tokens for a FHIR server: static, or fetched from its token endpoint with OAuth client
//! credentials, either a shared secret or a SMART Backend Services client assertion (a JWT signed
//! with the backend's private key, `jti` unique, five minutes to live). A fetched token is reused
//! until shortly before it expires, and dropped when the server refuses it.
//!
//! The token endpoint comes from configuration or from the server's
//! `.well-known/smart-configuration`. It may be on another origin (an authorization server): it is
//! sent the client's own credentials, never the access token.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value as Json};
use tokio::sync::Mutex;

use super::client::{is_absolute, ClientError};
use super::signing::SigningKey;
use super::smart::discovery::discover;
use super::smart::oauth::{oauth_code, post_form};

/// How to authenticate to the FHIR server.
#[derive(Debug, Clone, Default)]
pub enum ServerAuth {
    #[default]
    None,
    Bearer(String),
    /// OAuth client credentials with a shared secret.
    ClientCredentials {
        client_id: String,
        client_secret: String,
        /// Discovered from `.well-known/smart-configuration` when not given.
        token_url: Option<String>,
        scope: Option<String>,
    },
    /// SMART Backend Services: client credentials proven by a signed JWT (`private_key_jwt`).
    Backend {
        client_id: String,
        key: Arc<SigningKey>,
        token_url: Option<String>,
        /// By default `system/*.rs`, or `system/*.read` where the server offers only SMART v1 scopes.
        scope: Option<String>,
    },
}

impl ServerAuth {
    /// Whether tokens come from a token endpoint (and a refused one is worth fetching anew).
    pub fn fetches_tokens(&self) -> bool {
        matches!(self, Self::ClientCredentials { .. } | Self::Backend { .. })
    }
}

/// How long before its expiry a token is no longer sent (clocks and transit differ).
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// A client assertion's lifetime; SMART allows at most five minutes.
const ASSERTION_LIFETIME: u64 = 300;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone)]
struct Token {
    value: String,
    expires: Option<Instant>,
}

impl Token {
    fn usable(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| now + EXPIRY_MARGIN < e)
    }
}

/// The token a client sends, kept between requests.
pub(super) struct Tokens {
    auth: ServerAuth,
    current: Mutex<Option<Token>>,
    fetched: std::sync::atomic::AtomicUsize,
}

impl Tokens {
    pub(super) fn new(auth: ServerAuth) -> Self {
        let current = match &auth {
            ServerAuth::Bearer(t) => Some(Token { value: t.clone(), expires: None }),
            _ => None,
        };
        Self { auth, current: Mutex::new(current), fetched: Default::default() }
    }

    pub(super) fn auth(&self) -> &ServerAuth {
        &self.auth
    }

    /// How many tokens were fetched from the token endpoint.
    pub(super) fn fetched(&self) -> usize {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets a fetched token the server refused; a static one stays (it is all there is).
    pub(super) async fn refused(&self) {
        if self.auth.fetches_tokens() {
            *self.current.lock().await = None;
        }
    }

    /// The token to send, fetched when there is none or it is about to expire.
    pub(super) async fn bearer(
        &self,
        http: &reqwest::Client,
        base: &str,
    ) -> Result<Option<String>, ClientError> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref().filter(|t| t.usable(Instant::now())) {
            return Ok(Some(t.value.clone()));
        }
        if !self.auth.fetches_tokens() {
            return Ok(None);
        }
        let token = fetch(http, base, &self.auth).await?;
        self.fetched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let value = token.value.clone();
        *current = Some(token);
        Ok(Some(value))
    }
}

/// One token from the token endpoint.
async fn fetch(http: &reqwest::Client, base: &str, auth: &ServerAuth) -> Result<Token, ClientError> {
    let (token_url, scope) = match auth {
        ServerAuth::ClientCredentials { token_url, scope, .. }
        | ServerAuth::Backend { token_url, scope, .. } => (token_url, scope),
        ServerAuth::None | ServerAuth::Bearer(_) => {
            return Err(ClientError::Token(base.into(), "this kind of auth fetches no tokens".into()))
        }
    };
    // The configuration tells the token endpoint and, for a backend, which scope version to ask.
    let needs_discovery =
        token_url.is_none() || (scope.is_none() && matches!(auth, ServerAuth::Backend { .. }));
    let discovered = if needs_discovery {
        Some(discover(http, base).await.map_err(|e| match e {
            ClientError::Token(u, m) => ClientError::Token(u, format!("{m}; give --token-url")),
            e => e,
        })?)
    } else {
        None
    };
    let url = match (token_url, &discovered) {
        (Some(u), _) if is_absolute(u) => u.clone(),
        (Some(u), _) => format!("{base}/{}", u.trim_start_matches('/')),
        (None, Some(d)) => d.token_endpoint.clone(),
        (None, None) => {
            return Err(ClientError::Token(base.into(), "no token endpoint; give --token-url".into()))
        }
    };
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    match auth {
        ServerAuth::ClientCredentials { client_id, client_secret, .. } => {
            form.push(("client_id", client_id.clone()));
            form.push(("client_secret", client_secret.clone()));
        }
        ServerAuth::Backend { client_id, key, .. } => {
            let assertion = client_assertion(client_id, key, &url)?;
            form.push(("client_assertion_type", JWT_BEARER.to_owned()));
            form.push(("client_assertion", assertion));
        }
        ServerAuth::None | ServerAuth::Bearer(_) => {}
    }
    let default_scope = match (auth, &discovered) {
        (ServerAuth::Backend { .. }, Some(d)) => Some(d.read_scope("system")),
        (ServerAuth::Backend { .. }, None) => Some("system/*.rs".to_owned()),
        _ => None,
    };
    if let Some(s) = scope.clone().or(default_scope) {
        form.push(("scope", s));
    }
    request(http, &url, &form, matches!(auth, ServerAuth::Backend { .. })).await
}

/// The signed JWT that proves the client: issued by and about the client, for this token
/// endpoint, unique, short-lived.
fn client_assertion(client_id: &str, key: &SigningKey, token_url: &str) -> Result<String, ClientError> {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut jti = [0u8; 16];
    getrandom::fill(&mut jti).map_err(|_| ClientError::Token(token_url.into(), "no randomness".into()))?;
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + ASSERTION_LIFETIME,
        "jti": hex::encode(jti),
    });
    key.sign_jwt(&claims).map_err(|e| ClientError::Token(token_url.into(), e.to_string()))
}

async fn request(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, String)],
    asserted: bool,
) -> Result<Token, ClientError> {
    let err = |m: String| ClientError::Token(url.into(), m);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, json) = post_form(http, url, &pairs).await.map_err(|e| err(e.to_string()))?;
    if !status.is_success() {
        return Err(err(refusal(status.as_u16(), &json, asserted)));
    }
    let value =
        json["access_token"].as_str().ok_or_else(|| err(format!("HTTP {status}: no access_token")))?;
    let expires = json["expires_in"].as_u64().map(|s| Instant::now() + Duration::from_secs(s));
    Ok(Token { value: value.to_owned(), expires })
}

/// A token endpoint's refusal: its OAuth error code (a short word, checked as such; the
/// description is the server's text and is not repeated), with what to check.
fn refusal(status: u16, json: &Json, asserted: bool) -> String {
    let code = oauth_code(json["error"].as_str());
    let hint = match code {
        Some("invalid_client") if asserted => {
            ": the client assertion was not accepted; check the client id and that the server holds \
             the public key printed by `ehrqa key jwks --private-key FILE`"
        }
        Some("invalid_client") => ": check the client id and secret",
        Some("invalid_scope") => ": the client may not have the scopes asked for (see --scope)",
        _ => "",
    };
    match code {
        Some(c) => format!("HTTP {status} {c}{hint}"),
        None => format!("HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_reused_until_just_before_it_expires() {
        let now = Instant::now();
        let token = |secs| Token { value: "t".into(), expires: Some(now + Duration::from_secs(secs)) };
        assert!(token(3600).usable(now));
        assert!(!token(20).usable(now), "within the margin");
        assert!(Token { value: "t".into(), expires: None }.usable(now));
    }

    #[test]
    fn refusals_name_the_oauth_code_only() {
        let j = json!({ "error": "invalid_client", "error_description": "secret <script>" });
        let r = refusal(401, &j, true);
        assert!(r.starts_with("HTTP 401 invalid_client: the client assertion"), "{r}");
        assert!(!r.contains("script"));
        assert_eq!(refusal(400, &json!({ "error": "bad code\nwith lines" }), false), "HTTP 400");
    }
}
