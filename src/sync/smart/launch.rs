//! The SMART App Launch (EHR launch and standalone) as authorization code with PKCE S256.
//!
//! `begin` discovers the issuer's endpoints and makes the authorization URL: a one-time `state`
//! and a PKCE verifier kept here (never sent to the browser), the scopes, `aud` (the issuer) and,
//! for an EHR launch, the `launch` handle. `finish` takes the `state` back (once: a replayed or
//! forged one finds nothing), exchanges the code with the verifier, and reads the launch context
//! from the token response: the `patient` it is for, and `encounter` and `need_patient_banner`
//! when given. The access token is returned to the caller to sync with; it is never stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Url;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::clients::SmartClient;
use super::discovery::discover;
use super::oauth::{oauth_code, post_form};
use crate::fhir::reference::is_valid_id;
use crate::outgoing::same_origin_redirects;

/// How long a user has to sign in before the launch is forgotten.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Launches waiting at once; the oldest go first beyond this (a flood of `/smart/launch` calls
/// cannot grow memory).
const MAX_PENDING: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Server(String),
    #[error("unknown or expired launch state; start the launch again")]
    UnknownState,
    #[error("the authorization server refused: {0}")]
    Refused(String),
    #[error("no randomness")]
    Random,
}

/// A launch between the redirect to the authorization server and its return.
#[derive(Debug, Clone)]
pub struct PendingLaunch {
    pub client: SmartClient,
    verifier: String,
    token_endpoint: String,
    started: Instant,
}

/// What a finished launch gives: a token for the issuer and the patient it is for.
#[derive(Debug, Clone)]
pub struct Launched {
    pub client: SmartClient,
    pub access_token: String,
    pub patient: String,
    pub encounter: Option<String>,
    pub need_patient_banner: bool,
    pub expires_in: Option<Duration>,
}

#[derive(Default)]
pub struct Launches {
    pending: Mutex<HashMap<String, PendingLaunch>>,
}

impl Launches {
    /// The URL to send the browser to.
    pub async fn begin(&self, client: &SmartClient, launch: Option<&str>) -> Result<String, LaunchError> {
        let config =
            discover(&http()?, &client.issuer).await.map_err(|e| LaunchError::Server(e.to_string()))?;
        let authorize = config.authorization_endpoint.clone().ok_or_else(|| {
            LaunchError::Server(format!("{} offers no authorization_endpoint (user launches)", client.issuer))
        })?;
        let state = random(16)?;
        let verifier = random(32)?;
        let context = if launch.is_some() { "launch" } else { "launch/patient" };
        let scope = format!("{context} openid fhirUser {}", config.read_scope("patient"));
        let mut url = Url::parse(&authorize).map_err(|e| LaunchError::Server(format!("{authorize}: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &client.client_id)
                .append_pair("redirect_uri", &client.redirect_uri)
                .append_pair("scope", &scope)
                .append_pair("state", &state)
                .append_pair("aud", &client.issuer)
                .append_pair("code_challenge", &challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(l) = launch {
                q.append_pair("launch", l);
            }
        }
        let pending = PendingLaunch {
            client: client.clone(),
            verifier,
            token_endpoint: config.token_endpoint,
            started: Instant::now(),
        };
        self.keep(state, pending);
        Ok(url.into())
    }

    fn keep(&self, state: String, pending: PendingLaunch) {
        let mut map = self.pending.lock().expect("launches lock");
        map.retain(|_, p| p.started.elapsed() < PENDING_FOR);
        if map.len() >= MAX_PENDING {
            if let Some(oldest) = map.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(state, pending);
    }

    /// The launch a `state` started, taken (a state works once).
    pub fn take(&self, state: &str) -> Result<PendingLaunch, LaunchError> {
        let mut map = self.pending.lock().expect("launches lock");
        map.remove(state).filter(|p| p.started.elapsed() < PENDING_FOR).ok_or(LaunchError::UnknownState)
    }

    /// Exchanges the code for a token and the launch context.
    pub async fn finish(&self, pending: PendingLaunch, code: &str) -> Result<Launched, LaunchError> {
        let url = &pending.token_endpoint;
        let server = |m: String| LaunchError::Server(format!("token endpoint {url}: {m}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &pending.client.redirect_uri),
            ("client_id", &pending.client.client_id),
            ("code_verifier", &pending.verifier),
        ];
        let (status, json) = post_form(&http()?, url, &form).await.map_err(|e| server(e.to_string()))?;
        if !status.is_success() {
            return Err(LaunchError::Refused(format!(
                "HTTP {status} {}",
                oauth_code(json["error"].as_str()).unwrap_or("")
            )));
        }
        context(pending.client, &json).map_err(server)
    }
}

/// The launch context of a token response.
fn context(client: SmartClient, json: &Json) -> Result<Launched, String> {
    let access_token = json["access_token"].as_str().ok_or("no access_token")?.to_owned();
    let patient = json["patient"]
        .as_str()
        .filter(|p| is_valid_id(p))
        .ok_or("no patient in the token response (was the launch/patient scope granted?)")?
        .to_owned();
    let encounter = json["encounter"].as_str().filter(|e| is_valid_id(e)).map(str::to_owned);
    Ok(Launched {
        client,
        access_token,
        patient,
        encounter,
        need_patient_banner: json["need_patient_banner"].as_bool().unwrap_or(true),
        expires_in: json["expires_in"].as_u64().map(Duration::from_secs),
    })
}

fn http() -> Result<reqwest::Client, LaunchError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(same_origin_redirects())
        .build()
        .map_err(|e| LaunchError::Server(e.to_string()))
}

fn random(bytes: usize) -> Result<String, LaunchError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|_| LaunchError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// PKCE S256: base64url(SHA-256(verifier)).
fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_pkce_challenge_follows_rfc_7636() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn a_state_works_once() {
        let launches = Launches::default();
        let client = SmartClient {
            issuer: "http://a/fhir".into(),
            client_id: "c".into(),
            redirect_uri: "http://e/cb".into(),
        };
        let pending = PendingLaunch {
            client,
            verifier: "v".into(),
            token_endpoint: "http://a/token".into(),
            started: Instant::now(),
        };
        launches.keep("s1".into(), pending);
        assert!(launches.take("s1").is_ok());
        assert!(matches!(launches.take("s1"), Err(LaunchError::UnknownState)));
        assert!(matches!(launches.take("forged"), Err(LaunchError::UnknownState)));
    }

    #[test]
    fn a_token_response_without_a_patient_is_refused() {
        let client = SmartClient {
            issuer: "http://a/fhir".into(),
            client_id: "c".into(),
            redirect_uri: "http://e/cb".into(),
        };
        let ok = context(
            client.clone(),
            &json!({"access_token": "t", "patient": "p1", "need_patient_banner": false}),
        )
        .unwrap();
        assert_eq!((ok.patient.as_str(), ok.need_patient_banner), ("p1", false));
        assert!(context(client.clone(), &json!({"access_token": "t"})).is_err());
        assert!(context(client, &json!({"access_token": "t", "patient": "../x"})).is_err());
    }
}
