//! Bearer API keys. Keys are kept as SHA-256 hashes (the keys file never holds a key itself);
//! each is allowed every patient or a list of patient ids. A handler that takes a `Caller` can
//! only run for a request whose key checks out.
//!
//! A key's identity is its hash (`KeyId`): what a key owns, such as its sync jobs, belongs to
//! that, which no other key can have. Its name is for people (the audit log, messages) and must
//! be unique in the keys file too, or two keys would read alike in the audit log.

use std::collections::{BTreeSet, HashMap};
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

/// Who a key is: the SHA-256 of the key, which only its holder can present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 32]);

impl KeyId {
    /// Everyone, when the service runs without keys (`--no-auth`): no key hashes to it.
    pub const ANONYMOUS: KeyId = KeyId([0; 32]);

    /// The identity of a presented key.
    pub fn of_key(key: &str) -> Self {
        KeyId(hash(key))
    }

    /// The identity as the store keeps it (hex), e.g. as a job's owner.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    id: KeyId,
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
    #[error(
        "API keys: the name {name:?} is given to two keys ({first} and {second}); key names must be unique"
    )]
    DuplicateName { name: String, first: String, second: String },
    #[error("API keys: {first} and {second} hold the same key; each key must be listed once")]
    DuplicateKey { first: String, second: String },
}

pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

impl Auth {
    /// Keys from a keys file (lines `NAME sha256:HEX SCOPE`, `#` comments) and from
    /// `EHRQA_API_KEY` (a plain key named `env`, all patients, hashed on reading). Refused when
    /// two keys share a name or one key is listed twice.
    pub fn load(file: Option<&Path>, env_key: Option<String>) -> Result<Self, KeysError> {
        // Each key with where it was found, for messages.
        let mut keys = Vec::new();
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).map_err(|e| KeysError::Read(path.display().to_string(), e))?;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                keys.push((format!("line {}", i + 1), parse_line(line).ok_or(KeysError::Line(i + 1))?));
            }
        }
        if let Some(k) = env_key.filter(|k| !k.trim().is_empty()) {
            let key = ApiKey { name: "env".into(), id: KeyId::of_key(&k), scope: Scope::All };
            keys.push(("EHRQA_API_KEY".into(), key));
        }
        check_unique(&keys)?;
        Ok(Auth::Keys(keys.into_iter().map(|(_, k)| k).collect()))
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Auth::Keys(k) if k.is_empty())
    }

    /// Whether a key has this name.
    pub fn has_name(&self, name: &str) -> bool {
        matches!(self, Auth::Keys(keys) if keys.iter().any(|k| k.name == name))
    }

    fn check(&self, req: &HttpRequest) -> Result<Caller, ApiError> {
        let keys = match self {
            Auth::Open => {
                return Ok(Caller { name: "anonymous".into(), scope: Scope::All, id: KeyId::ANONYMOUS })
            }
            Auth::Keys(keys) => keys,
        };
        let presented = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .ok_or(ApiError::Unauthorized)?;
        let id = KeyId::of_key(presented);
        keys.iter()
            .find(|k| k.id == id)
            .map(|k| Caller { name: k.name.clone(), scope: k.scope.clone(), id })
            .ok_or(ApiError::Unauthorized)
    }
}

/// Refuses two keys with one name, and one key listed twice (it would have two scopes, and which
/// applied would depend on the order of lines).
fn check_unique(keys: &[(String, ApiKey)]) -> Result<(), KeysError> {
    let (mut names, mut ids) = (HashMap::new(), HashMap::new());
    for (at, key) in keys {
        if let Some(first) = names.insert(key.name.as_str(), at) {
            let (first, second) = (first.clone(), at.clone());
            return Err(KeysError::DuplicateName { name: key.name.clone(), first, second });
        }
        if let Some(first) = ids.insert(key.id, at) {
            return Err(KeysError::DuplicateKey { first: first.clone(), second: at.clone() });
        }
    }
    Ok(())
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
    let id = KeyId(bytes.try_into().ok()?);
    parts.next().is_none().then_some(ApiKey { name, id, scope })
}

/// The key holder a request was made by.
#[derive(Debug, Clone)]
pub struct Caller {
    /// For people: the audit log and messages.
    pub name: String,
    pub scope: Scope,
    /// Who the caller is, for what it owns.
    pub id: KeyId,
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
            // A key when one is presented; else a SMART launch's session cookie, if any.
            Some(state) => state.auth.check(req).or_else(|refused| {
                if req.headers().contains_key(actix_web::http::header::AUTHORIZATION) {
                    return Err(refused);
                }
                state.sessions.caller(req).ok_or(refused)
            }),
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
        assert_eq!(k.id, KeyId::of_key(&key));
        assert_eq!(k.scope, Scope::Patients(["p1".to_owned(), "p2".to_owned()].into()));
        assert!(parse_line("x sha256:zz *").is_none());
        assert!(parse_line("x plain *").is_none());
        assert_eq!(parse_line(&format!("ops sha256:{} *", "ab".repeat(32))).unwrap().scope, Scope::All);
    }

    fn keys_file(lines: &[&str]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), format!("# keys\n{}\n", lines.join("\n"))).unwrap();
        file
    }

    #[test]
    fn refuses_two_keys_with_one_name() {
        let (_, admin) = new_key("admin", "*").unwrap();
        let (_, lookalike) = new_key("admin", "p1").unwrap();
        let err = Auth::load(Some(keys_file(&[&admin, &lookalike]).path()), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "API keys: the name \"admin\" is given to two keys (line 2 and line 3); key names must be unique"
        );
        let (_, env) = new_key("env", "*").unwrap();
        let err = Auth::load(Some(keys_file(&[&env]).path()), Some("plain".into())).unwrap_err();
        assert!(err.to_string().contains("(line 2 and EHRQA_API_KEY)"), "{err}");
        // One key twice, under two names.
        let again = admin.replacen("admin", "ops", 1);
        let err = Auth::load(Some(keys_file(&[&admin, &again]).path()), None).unwrap_err();
        assert!(matches!(err, KeysError::DuplicateKey { .. }), "{err}");
        assert!(Auth::load(Some(keys_file(&[&admin, &env]).path()), None).is_ok());
    }
}
