//! A server's `.well-known/smart-configuration`: where to authorize, where to get tokens, and
//! whether it speaks SMART v2 scopes (`patient/*.rs`) or only v1 (`patient/*.read`).

use serde_json::Value as Json;

use crate::sync::client::{is_absolute, ClientError};

/// What ehrqa needs of a server's SMART configuration.
#[derive(Debug, Clone)]
pub struct SmartConfiguration {
    /// Absent on servers that only serve backends (client credentials).
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub v2_scopes: bool,
}

impl SmartConfiguration {
    /// `patient/*.rs` where the server offers SMART v2 permissions, else v1's `patient/*.read`
    /// (and likewise for `system/`).
    pub fn read_scope(&self, context: &str) -> String {
        format!("{context}/*.{}", if self.v2_scopes { "rs" } else { "read" })
    }
}

/// Reads `{base}/.well-known/smart-configuration`. Its endpoints must be absolute http(s) URLs.
pub async fn discover(http: &reqwest::Client, base: &str) -> Result<SmartConfiguration, ClientError> {
    let url = format!("{}/.well-known/smart-configuration", base.trim_end_matches('/'));
    let err = |m: String| ClientError::Token(url.clone(), m);
    let resp = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| err(format!("cannot read the SMART configuration: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(err(format!("HTTP {status}: no SMART configuration")));
    }
    let doc: Json = resp.json().await.map_err(|e| err(format!("not JSON: {e}")))?;
    parse(&doc).map_err(err)
}

fn parse(doc: &Json) -> Result<SmartConfiguration, String> {
    let endpoint = |name: &str| doc[name].as_str().filter(|u| is_absolute(u)).map(str::to_owned);
    let token_endpoint = endpoint("token_endpoint").ok_or("no absolute token_endpoint")?;
    let capabilities = doc["capabilities"].as_array().into_iter().flatten();
    let v2_scopes = capabilities.filter_map(Json::as_str).any(|c| c == "permission-v2");
    Ok(SmartConfiguration {
        authorization_endpoint: endpoint("authorization_endpoint"),
        token_endpoint,
        v2_scopes,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn v1_servers_get_v1_scopes_and_endpoints_must_be_absolute() {
        let v1 =
            parse(&json!({"token_endpoint": "https://a/token", "capabilities": ["permission-v1"]})).unwrap();
        assert_eq!(v1.read_scope("patient"), "patient/*.read");
        assert!(v1.authorization_endpoint.is_none());
        let v2 =
            parse(&json!({"token_endpoint": "https://a/token", "authorization_endpoint": "https://a/auth",
            "capabilities": ["permission-v2"]}))
            .unwrap();
        assert_eq!(v2.read_scope("system"), "system/*.rs");
        assert!(parse(&json!({"token_endpoint": "/token"})).is_err());
    }
}
