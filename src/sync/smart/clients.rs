//! The FHIR servers that may launch ehrqa (`serve --smart-client FILE`): for each, the issuer
//! (its FHIR base URL, as `iss` names it), the client id ehrqa was registered with there, and
//! the redirect URI registered with it. A launch from any other `iss` is refused before any
//! request leaves, so a link cannot make the service fetch from, or send a user to, a server of
//! the link's choosing.
//!
//! The file is JSON: `[{"issuer": "https://ehr.example/fhir", "client_id": "ehrqa",
//! "redirect_uri": "https://ehrqa.example/smart/callback"}]`.

use std::path::Path;

use serde::Deserialize;

use crate::sync::origin::normalise_base;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmartClient {
    pub issuer: String,
    pub client_id: String,
    pub redirect_uri: String,
}

#[derive(Debug, Clone, Default)]
pub struct SmartClients(Vec<SmartClient>);

impl SmartClients {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let list: Vec<SmartClient> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: expected [{{\"issuer\", \"client_id\", \"redirect_uri\"}}, ...]: {e}",
                path.display()
            )
        })?;
        Self::new(list).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn new(list: Vec<SmartClient>) -> Result<Self, String> {
        let mut out = Vec::new();
        for mut c in list {
            c.issuer = normalise_base(&c.issuer)
                .ok_or_else(|| format!("issuer {:?} is not an http(s) base URL", c.issuer))?;
            if normalise_base(&c.redirect_uri).is_none() {
                return Err(format!("redirect_uri {:?} is not an http(s) URL", c.redirect_uri));
            }
            if c.client_id.is_empty() {
                return Err(format!("{}: empty client_id", c.issuer));
            }
            if out.iter().any(|o: &SmartClient| o.issuer == c.issuer) {
                return Err(format!("issuer {} is listed twice", c.issuer));
            }
            out.push(c);
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The registration for the server an `iss` names, compared as a base URL.
    pub fn for_issuer(&self, iss: &str) -> Option<&SmartClient> {
        let iss = normalise_base(iss)?;
        self.0.iter().find(|c| c.issuer == iss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(issuer: &str) -> SmartClient {
        SmartClient {
            issuer: issuer.into(),
            client_id: "ehrqa".into(),
            redirect_uri: "http://e/smart/callback".into(),
        }
    }

    #[test]
    fn only_listed_issuers_launch_and_they_compare_as_bases() {
        let clients = SmartClients::new(vec![client("http://EHR.example:80/fhir/")]).unwrap();
        assert!(clients.for_issuer("http://ehr.example/fhir").is_some());
        assert!(clients.for_issuer("http://ehr.example/fhir2").is_none());
        assert!(clients.for_issuer("http://ehr.example.evil/fhir").is_none());
        assert!(SmartClients::new(vec![client("ftp://x/fhir")]).is_err());
        assert!(SmartClients::new(vec![client("http://a/fhir"), client("http://a/fhir/")]).is_err());
    }
}
