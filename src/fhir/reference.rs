//! FHIR references, parsed once into types.
//!
//! A reference string can mean five different things in the data we ingest, and each needs a
//! different resolution strategy (see `resolve.rs`), so the parse keeps them apart instead of
//! passing strings around.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::resource_type;

/// The identity of a stored resource: its type and logical id (`Observation/8f2c...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourceRef {
    rtype: String,
    id: String,
}

impl ResourceRef {
    /// Builds a reference from a known resource type and a valid FHIR id.
    pub fn new(rtype: &str, id: &str) -> Option<Self> {
        (resource_type::is_known(rtype) && is_valid_id(id))
            .then(|| Self { rtype: rtype.to_owned(), id: id.to_owned() })
    }

    pub fn rtype(&self) -> &str {
        &self.rtype
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Parses `Type/id` (the form used in citations and the CLI).
    pub fn parse(s: &str) -> Option<Self> {
        let (rtype, id) = s.split_once('/')?;
        Self::new(rtype, id)
    }
}

impl fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rtype, self.id)
    }
}

impl From<ResourceRef> for String {
    fn from(r: ResourceRef) -> Self {
        r.to_string()
    }
}

impl TryFrom<String> for ResourceRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("not a resource reference: {s}"))
    }
}

/// FHIR ids: 1 to 64 characters of `[A-Za-z0-9.-]`. We also accept `_` (some servers emit it)
/// but nothing that could break a `Type/id` path or a query.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// What a `reference` string points at, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `Type/id`, `Type/id/_history/v`, or an absolute URL ending in one of those.
    Literal(ResourceRef),
    /// `urn:uuid:...` (or `urn:oid:`): a bundle-local fullUrl.
    Urn(String),
    /// `Type?system|value`-style conditional reference (Java Synthea writes these).
    Conditional { rtype: String, system: Option<String>, value: String },
    /// `#id`: a resource contained in the referring resource.
    Contained(String),
    /// Anything else; kept and reported as unresolved.
    Unparseable,
}

impl Target {
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if let Some(local) = raw.strip_prefix('#') {
            return Self::Contained(local.to_owned());
        }
        if raw.starts_with("urn:uuid:") || raw.starts_with("urn:oid:") {
            return Self::Urn(raw.to_owned());
        }
        if let Some((rtype, query)) = raw.split_once('?') {
            return parse_conditional(rtype, query).unwrap_or(Self::Unparseable);
        }
        parse_literal(raw).map_or(Self::Unparseable, Self::Literal)
    }
}

fn parse_conditional(rtype: &str, query: &str) -> Option<Target> {
    let rtype = rtype.rsplit('/').next()?;
    if !resource_type::is_known(rtype) {
        return None;
    }
    let token = query.split('&').find_map(|kv| kv.strip_prefix("identifier="))?;
    let (system, value) = match token.split_once('|') {
        Some((s, v)) => ((!s.is_empty()).then(|| s.to_owned()), v.to_owned()),
        None => (None, token.to_owned()),
    };
    (!value.is_empty()).then(|| Target::Conditional { rtype: rtype.to_owned(), system, value })
}

fn parse_literal(raw: &str) -> Option<ResourceRef> {
    let parts: Vec<&str> = raw.trim_end_matches('/').split('/').collect();
    // Strip a trailing `_history/<version>`.
    let parts = match parts.as_slice() {
        [head @ .., "_history", _] => head,
        all => all,
    };
    match parts {
        [.., rtype, id] => ResourceRef::new(rtype, id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_reference_form() {
        assert_eq!(
            Target::parse("Patient/123"),
            Target::Literal(ResourceRef::new("Patient", "123").unwrap())
        );
        assert_eq!(
            Target::parse("http://hapi.example/fhir/Observation/9/_history/2"),
            Target::Literal(ResourceRef::new("Observation", "9").unwrap())
        );
        assert_eq!(Target::parse("urn:uuid:7e58e78c-ba17"), Target::Urn("urn:uuid:7e58e78c-ba17".into()));
        assert_eq!(Target::parse("#coverage"), Target::Contained("coverage".into()));
        assert_eq!(
            Target::parse("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999977"),
            Target::Conditional {
                rtype: "Practitioner".into(),
                system: Some("http://hl7.org/fhir/sid/us-npi".into()),
                value: "9999977".into()
            }
        );
        assert_eq!(Target::parse("Nonsense/1"), Target::Unparseable);
        assert_eq!(Target::parse("just text"), Target::Unparseable);
    }

    #[test]
    fn resource_ref_round_trips_through_strings() {
        let r = ResourceRef::parse("Observation/abc-1").unwrap();
        assert_eq!(r.to_string(), "Observation/abc-1");
        assert!(ResourceRef::parse("Observation/has space").is_none());
        assert!(ResourceRef::parse("Observation").is_none());
    }
}
