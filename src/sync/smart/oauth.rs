//! What every OAuth token request shares: a form POST answered with JSON, and the error code of
//! a refusal (a short word; the server's description is its own text and is not repeated).

use serde_json::Value as Json;

use crate::sync::client::form_escape;

/// POSTs `form` (`application/x-www-form-urlencoded`) and reads the JSON answer (`null` when it
/// is not JSON), whatever the status.
pub async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<(reqwest::StatusCode, Json), reqwest::Error> {
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", form_escape(v))).collect();
    let resp = http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(body.join("&"))
        .send()
        .await?;
    let status = resp.status();
    Ok((status, resp.json().await.unwrap_or(Json::Null)))
}

/// An OAuth error code, if the text is one.
pub fn oauth_code(error: Option<&str>) -> Option<&str> {
    error.filter(|c| {
        !c.is_empty() && c.len() <= 40 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}
