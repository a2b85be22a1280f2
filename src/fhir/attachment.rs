//! Attachments: clinical notes decoded to text, everything else kept with its size and hash.

use base64::Engine;
use serde::Serialize;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// One attachment of a resource (DocumentReference.content, DiagnosticReport.presentedForm, Media).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    /// Where it sits in the resource, e.g. `content[0].attachment`.
    pub path: String,
    pub content_type: Option<String>,
    pub title: Option<String>,
    /// Inline data size in bytes (0 for url-only attachments).
    pub size: usize,
    /// SHA-256 of the inline data, hex.
    pub sha256: Option<String>,
    pub url: Option<String>,
    /// Decoded text for `text/*` attachments.
    pub text: Option<String>,
    /// An image (or PDF) attachment: its bytes and what inspecting them found.
    #[serde(skip)]
    pub image: Option<ImageAttachment>,
}

/// An image attachment as received, and the outcome of checking it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageAttachment {
    pub original: Vec<u8>,
    pub check: super::image::ImageCheck,
}

/// An attachment whose inline data cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAttachment {
    pub path: String,
    pub reason: String,
}

/// Reads the attachments a resource carries. `lossy` collects notes that were not UTF-8 and were
/// read as Latin-1 instead (reported, never silently mangled).
pub fn extract(resource: &Json, lossy: &mut Vec<String>) -> Result<Vec<Attachment>, BadAttachment> {
    let mut out = Vec::new();
    for (path, att) in locate(resource) {
        out.push(read_one(path, att, lossy)?);
    }
    Ok(out)
}

fn locate(resource: &Json) -> Vec<(String, &Json)> {
    let mut found = Vec::new();
    let list = |key: &str| resource.get(key).and_then(Json::as_array).into_iter().flatten();
    for (i, c) in list("content").enumerate() {
        if let Some(a) = c.get("attachment") {
            found.push((format!("content[{i}].attachment"), a));
        } else if c.get("contentType").is_some() || c.get("data").is_some() {
            // Media.content is an Attachment itself.
            found.push((format!("content[{i}]"), c));
        }
    }
    if let Some(a) = resource.get("content").filter(|c| c.is_object()) {
        found.push(("content".to_owned(), a));
    }
    for (i, a) in list("presentedForm").enumerate() {
        found.push((format!("presentedForm[{i}]"), a));
    }
    found
}

fn read_one(path: String, att: &Json, lossy: &mut Vec<String>) -> Result<Attachment, BadAttachment> {
    let s = |k: &str| att.get(k).and_then(Json::as_str).map(str::to_owned);
    let content_type = s("contentType");
    let data = match att.get("data") {
        None => None,
        Some(Json::String(b64)) => {
            Some(decode_base64(b64).map_err(|reason| BadAttachment { path: path.clone(), reason })?)
        }
        Some(_) => return Err(BadAttachment { path, reason: "data is not a base64 string".into() }),
    };
    let is_text =
        content_type.as_deref().is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/"));
    let text = match (&data, is_text) {
        (Some(bytes), true) => Some(decode_text(bytes, &path, lossy)),
        _ => None,
    };
    let image = match &data {
        Some(bytes) if !is_text && super::image::is_candidate(content_type.as_deref(), bytes) => {
            Some(ImageAttachment {
                check: super::image::inspect(content_type.as_deref(), bytes),
                original: bytes.clone(),
            })
        }
        _ => None,
    };
    Ok(Attachment {
        size: data.as_ref().map_or(0, Vec::len),
        sha256: data.as_ref().map(|d| hex::encode(Sha256::digest(d))),
        path,
        content_type,
        title: s("title"),
        url: s("url"),
        text,
        image,
    })
}

fn decode_base64(b64: &str) -> Result<Vec<u8>, String> {
    // FHIR base64Binary may be wrapped across lines; whitespace is not data.
    let cleaned: String;
    let input = if b64.bytes().any(|b| b.is_ascii_whitespace()) {
        cleaned = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        cleaned.as_str()
    } else {
        b64
    };
    base64::engine::general_purpose::STANDARD.decode(input).map_err(|e| format!("invalid base64 ({e})"))
}

/// A note's text; NUL characters (which no note means, and PostgreSQL's text refuses) are
/// dropped.
fn decode_text(bytes: &[u8], path: &str, lossy: &mut Vec<String>) -> String {
    let text: String = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            lossy.push(format!("{path}: note is not UTF-8, read as Latin-1"));
            bytes.iter().map(|&b| b as char).collect()
        }
    };
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decodes_text_notes_and_hashes_binaries() {
        let doc = json!({"resourceType": "DocumentReference", "content": [
            {"attachment": {"contentType": "text/plain; charset=utf-8", "data": "SGVsbG8gbm90ZQ=="}},
            {"attachment": {"contentType": "image/png", "data": "iVBORw0KGgo="}}
        ]});
        let mut lossy = Vec::new();
        let atts = extract(&doc, &mut lossy).unwrap();
        assert_eq!(atts[0].text.as_deref(), Some("Hello note"));
        assert_eq!(atts[1].text, None);
        assert_eq!(atts[1].size, 8);
        assert_eq!(atts[1].sha256.as_ref().unwrap().len(), 64);
        assert!(lossy.is_empty());
    }

    #[test]
    fn refuses_invalid_base64_and_reads_latin1_notes() {
        let bad = json!({"presentedForm": [{"contentType": "text/plain", "data": "%%%"}]});
        let err = extract(&bad, &mut Vec::new()).unwrap_err();
        assert_eq!(err.path, "presentedForm[0]");
        let latin1 = json!({"presentedForm": [{"contentType": "text/plain", "data": "Y2Fm6Q=="}]});
        let mut lossy = Vec::new();
        let atts = extract(&latin1, &mut lossy).unwrap();
        assert_eq!(atts[0].text.as_deref(), Some("café"));
        assert_eq!(lossy.len(), 1);
    }
}
