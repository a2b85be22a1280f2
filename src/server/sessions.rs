//! Sessions a SMART launch opens: the browser that launched ehrqa from an EHR may read the
//! patient the EHR launched it for, and no other, until the session expires. The session is an
//! HttpOnly, SameSite=Lax cookie holding a random key (only its hash is kept here); the page's
//! requests to `/v1` carry it without the page's code ever seeing it, and the FHIR server's
//! access token stays on the server side.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;

use super::auth::{Caller, KeyId, Scope};

pub const COOKIE: &str = "ehrqa_session";
/// The longest a session lasts, whatever the FHIR server's token says.
const LONGEST: Duration = Duration::from_secs(8 * 3600);
const DEFAULT: Duration = Duration::from_secs(3600);
/// Sessions held at once; the one nearest its end goes first beyond this.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    name: String,
    patient: String,
    until: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_key: Mutex<HashMap<KeyId, Session>>,
}

impl Sessions {
    /// A new session for one patient, as the cookie that carries it.
    pub fn open(
        &self,
        name: &str,
        patient: &str,
        lasts: Option<Duration>,
    ) -> Result<Cookie<'static>, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let key = format!("ehrqa_session_{}", hex::encode(bytes));
        let lasts = lasts.unwrap_or(DEFAULT).min(LONGEST);
        let mut map = self.by_key.lock().expect("sessions lock");
        map.retain(|_, s| s.until > Instant::now());
        if map.len() >= MAX_SESSIONS {
            if let Some(first) = map.iter().min_by_key(|(_, s)| s.until).map(|(k, _)| *k) {
                map.remove(&first);
            }
        }
        let session =
            Session { name: name.to_owned(), patient: patient.to_owned(), until: Instant::now() + lasts };
        map.insert(KeyId::of_key(&key), session);
        Ok(Cookie::build(COOKIE, key)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(lasts.as_secs() as i64))
            .finish())
    }

    /// The caller a request's session cookie makes, if it holds a live session.
    pub fn caller(&self, req: &HttpRequest) -> Option<Caller> {
        let cookie = req.cookie(COOKIE)?;
        let id = KeyId::of_key(cookie.value());
        let map = self.by_key.lock().expect("sessions lock");
        let s = map.get(&id).filter(|s| s.until > Instant::now())?;
        Some(Caller { name: s.name.clone(), scope: Scope::Patients(BTreeSet::from([s.patient.clone()])), id })
    }
}
