//! Bearer API keys. Keys are kept as SHA-256 hashes (the keys file never holds a key itself);
//! each is allowed every patient or a list of patient ids. A handler that takes a `Caller` can
//! only run for a request whose key checks out.

use std::collections::BTreeSet;
use std::future::{ready, Ready};
use std::path::Path;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::AppState;

/// Which patients a key may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Patients(BTreeSet<String>),
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    hash: [u8; 32],
    pub scope: Scope,
}

/// The keys the server accepts, or none required (`--no-auth`, loopback only).
#[derive(Debug, Clone)]
pub enum Auth {
    Keys(Vec<ApiKey>),
    Open,
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read API keys file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("API keys file line {0}: expected `NAME sha256:<64 hex digits> *|ID,ID,...`")]
    Line(usize),
}

pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

impl Auth {
    /// Keys from a keys file (lines `NAME sha256:HEX SCOPE`, `#` comments) and from
    /// `EHRQA_API_KEY` (a plain key, all patients, hashed on reading).
    pub fn load(file: Option<&Path>, env_key: Option<String>) -> Result<Self, KeysError> {
        let mut keys = Vec::new();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|e| KeysError::Read(path.display().to_string(), e))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                keys.push(parse_line(line).ok_or(KeysError::Line(i + 1))?);
            }
        }
        if let Some(k) = env_key.filter(|k| !k.trim().is_empty()) {
            keys.push(ApiKey { name: "env".into(), hash: hash(&k), scope: Scope::All });
        }
        Ok(Auth::Keys(keys))
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Auth::Keys(k) if k.is_empty())
    }

    fn check(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let keys = match self {
            Auth::Open => return Ok(Caller { name: "anonymous".into(), scope: Scope::All }),
            Auth::Keys(keys) => keys,
        };
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .ok_or(ApiError::Unauthorized)?;
        let h = hash(presented);
        keys.iter()
            .find(|k| k.hash == h)
            .map(|k| Caller { name: k.name.clone(), scope: k.scope.clone() })
            .ok_or(ApiError::Unauthorized)
    }
}

fn parse_line(line: &str) -> Option<ApiKey> {
    let mut parts = line.split_whitespace();
    let name = parts.next()?.to_owned();
    let hex = parts.next()?.strip_prefix("sha256:")?;
    let scope = match parts.next()? {
        "*" => Scope::All,
        ids => Scope::Patients(ids.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect()),
    };
    let bytes = hex::decode(hex).ok()?;
    let hash: [u8; 32] = bytes.try_into().ok()?;
    parts.next().is_none().then_some(ApiKey { name, hash, scope })
}

/// The key holder a request was made by.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scope: Scope,
}

impl Caller {
    /// Refuses patients outside the key's scope.
    pub fn may_read(&self, patient: &str) -> Result<(), ApiError> {
        match &self.scope {
            Scope::All => Ok(()),
            Scope::Patients(ids) if ids.contains(patient) => Ok(()),
            Scope::Patients(_) => Err(ApiError::Forbidden(patient.to_owned())),
        }
    }

    /// Only keys for every patient may write or sync.
    pub fn may_write(&self) -> Result<(), ApiError> {
        match self.scope {
            Scope::All => Ok(()),
            Scope::Patients(_) => Err(ApiError::Forbidden("(this key is limited to some patients)".into())),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<AppState>>() {
            Some(state) => state.auth.check(req),
            None => Err(ApiError::Internal("no application state".into())),
        };
        ready(result)
    }
}

/// A new random key and the keys-file line that accepts it.
pub fn new_key(name: &str, scope: &str) -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    let key = format!("ehrqa_{}", hex::encode(bytes));
    let line = format!("{name} sha256:{} {scope}", hex::encode(hash(&key)));
    Ok((key, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_lines() {
        let (key, line) = new_key("clinic", "p1,p2").unwrap();
        let k = parse_line(&line).unwrap();
        assert_eq!(k.hash, hash(&key));
        assert_eq!(k.scope, Scope::Patients(["p1".to_owned(), "p2".to_owned()].into()));
        assert!(parse_line("x sha256:zz *").is_none());
        assert!(parse_line("x plain *").is_none());
        assert_eq!(parse_line(&format!("ops sha256:{} *", "ab".repeat(32))).unwrap().scope, Scope::All);
    }
}
