//! Reference resolution within one input.
//!
//! Synthea writes `urn:uuid:` fullUrls, bulk exports write `Type/id`, Java Synthea writes
//! conditional references (`Practitioner?identifier=...|...`) whose targets arrive in other
//! bundles, and EOBs point at `#contained` resources. Everything that can be resolved inside the
//! input is resolved here; what cannot is left pending with enough information for the store to
//! resolve it later, whatever order the inputs arrive in (`store/resolve.rs`).

use foldhash::HashMap;

use serde_json::Value as Json;

use super::reference::{ResourceRef, Target};

/// The kind of reference, stored with it so the store knows how to resolve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Literal,
    Urn,
    Conditional,
    Contained,
    Unparseable,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Literal => "literal",
            RefKind::Urn => "urn",
            RefKind::Conditional => "conditional",
            RefKind::Contained => "contained",
            RefKind::Unparseable => "unparseable",
        }
    }
}

/// One reference found in a resource, with what is known of its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLink {
    /// Dotted path of the element holding the reference, e.g. `participant.individual`.
    pub path: String,
    pub raw: String,
    pub kind: RefKind,
    /// The target's identity when known (literal refs, or resolved ones).
    pub target: Option<ResourceRef>,
    /// True once the target is known to exist (in this input or, later, in the store).
    pub resolved: bool,
    /// For conditional references: the target type and the identifier searched for.
    pub conditional: Option<Conditional>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditional {
    pub rtype: String,
    pub system: Option<String>,
    pub value: String,
}

/// Resources of one type by identifier value, with the identifier's system.
type ByValue<'a> = HashMap<&'a str, Vec<(Option<&'a str>, ResourceRef)>>;

/// What an input offers to resolve references against.
#[derive(Default)]
pub struct InputIndex<'a> {
    by_full_url: HashMap<&'a str, ResourceRef>,
    by_identifier: HashMap<&'a str, ByValue<'a>>,
    by_ref: HashMap<ResourceRef, &'a Json>,
}

impl<'a> InputIndex<'a> {
    /// Registers one resource of the input.
    pub fn add(&mut self, rref: ResourceRef, full_url: Option<&'a str>, resource: &'a Json) {
        if let Some(url) = full_url {
            self.by_full_url.insert(url, rref.clone());
        }
        for (system, value) in identifiers(resource) {
            self.by_identifier
                .entry(rtype_str(resource))
                .or_default()
                .entry(value)
                .or_default()
                .push((system, rref.clone()));
        }
        self.by_ref.insert(rref, resource);
    }

    /// The resource of this input with that identity, if present.
    pub fn get(&self, rref: &ResourceRef) -> Option<&'a Json> {
        self.by_ref.get(rref).copied()
    }

    fn by_identifier(&self, c: &Conditional) -> Option<&ResourceRef> {
        let candidates = self.by_identifier.get(c.rtype.as_str())?.get(c.value.as_str())?;
        candidates
            .iter()
            .find(|(system, _)| c.system.is_none() || *system == c.system.as_deref())
            .map(|(_, r)| r)
    }
}

fn rtype_str(resource: &Json) -> &str {
    resource.get("resourceType").and_then(Json::as_str).unwrap_or("")
}

/// The `identifier` entries of a resource as (system, value).
pub fn identifiers(resource: &Json) -> Vec<(Option<&str>, &str)> {
    let Some(list) = resource.get("identifier").and_then(Json::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|i| {
            let value = i.get("value")?.as_str()?;
            Some((i.get("system").and_then(Json::as_str), value))
        })
        .collect()
}

/// Finds and resolves every reference in `resource` (including inside contained resources).
pub fn collect(resource: &Json, index: &InputIndex<'_>) -> Vec<RefLink> {
    let contained: Vec<&str> = resource
        .get("contained")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id").and_then(Json::as_str))
        .collect();
    let mut out = Vec::new();
    walk(resource, &mut Vec::new(), &mut |keys, raw| {
        out.push(resolve_one(keys.join("."), raw, index, &contained));
    });
    out
}

/// Calls `found` with the keys leading to every `reference` string, an object's own before
/// those nested in it. Ingest walks every node of every resource here, so an object's entries
/// are scanned once for its reference (string equality checks the length first) and again only
/// when something is nested in it, and the dotted path is joined only for a reference found.
/// Searching each object with `get("reference")` (a string comparison per key) and rebuilding
/// the path at every nested node made the walk 6.5% of ingest's CPU on `synthea-java`; this
/// way it is 4.2-5.3% (`perf`).
fn walk<'a>(v: &'a Json, keys: &mut Vec<&'a str>, found: &mut impl FnMut(&[&'a str], &'a str)) {
    match v {
        Json::Object(obj) => {
            let mut nested = false;
            for (k, child) in obj {
                match child {
                    Json::String(raw) if k == "reference" => found(keys, raw),
                    Json::Object(_) | Json::Array(_) => nested = true,
                    _ => {}
                }
            }
            if !nested {
                return;
            }
            for (k, child) in obj {
                if matches!(child, Json::Object(_) | Json::Array(_)) && k != "reference" {
                    keys.push(k);
                    walk(child, keys, found);
                    keys.pop();
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|i| walk(i, keys, found)),
        _ => {}
    }
}

fn resolve_one(path: String, raw: &str, index: &InputIndex<'_>, contained: &[&str]) -> RefLink {
    let link = |kind, target: Option<ResourceRef>, resolved, conditional| RefLink {
        path,
        raw: raw.to_owned(),
        kind,
        target,
        resolved,
        conditional,
    };
    match Target::parse(raw) {
        Target::Literal(r) => {
            let here = index.by_ref.contains_key(&r);
            link(RefKind::Literal, Some(r), here, None)
        }
        Target::Urn(urn) => match index.by_full_url.get(urn.as_str()) {
            Some(r) => link(RefKind::Urn, Some(r.clone()), true, None),
            None => link(RefKind::Urn, None, false, None),
        },
        Target::Conditional { rtype, system, value } => {
            let c = Conditional { rtype, system, value };
            match index.by_identifier(&c) {
                Some(r) => link(RefKind::Conditional, Some(r.clone()), true, Some(c)),
                None => link(RefKind::Conditional, None, false, Some(c)),
            }
        }
        Target::Contained(id) => {
            let present = contained.contains(&id.as_str());
            link(RefKind::Contained, None, present, None)
        }
        Target::Unparseable => link(RefKind::Unparseable, None, false, None),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn resolves_urns_conditionals_and_contained_within_the_input() {
        let practitioner = json!({"resourceType": "Practitioner", "id": "pr1",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "42"}]});
        let patient = json!({"resourceType": "Patient", "id": "p1"});
        let eob = json!({"resourceType": "ExplanationOfBenefit", "id": "e1",
            "contained": [{"resourceType": "Coverage", "id": "coverage"}],
            "patient": {"reference": "urn:uuid:aaaa"},
            "provider": {"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|42"},
            "insurance": [{"coverage": {"reference": "#coverage"}}],
            "facility": {"reference": "Location?identifier=x|missing"},
            "claim": {"reference": "Claim/c9"}});
        let mut index = InputIndex::default();
        index.add(ResourceRef::new("Practitioner", "pr1").unwrap(), None, &practitioner);
        index.add(ResourceRef::new("Patient", "p1").unwrap(), Some("urn:uuid:aaaa"), &patient);
        let links = collect(&eob, &index);
        let by_path = |p: &str| links.iter().find(|l| l.path == p).unwrap();
        assert_eq!(by_path("patient").target.as_ref().unwrap().to_string(), "Patient/p1");
        assert!(by_path("provider").resolved);
        assert_eq!(by_path("provider").target.as_ref().unwrap().id(), "pr1");
        assert!(by_path("insurance.coverage").resolved);
        assert!(!by_path("facility").resolved);
        assert_eq!(by_path("facility").conditional.as_ref().unwrap().value, "missing");
        let claim = by_path("claim");
        assert_eq!((claim.kind, claim.resolved), (RefKind::Literal, false));
    }

    /// An object's own reference comes before those nested in it, whatever its keys sort
    /// after, and a nested one's path names every key on the way (arrays add none).
    #[test]
    fn references_are_found_outer_first_with_their_dotted_paths() {
        let obs = json!({"resourceType": "Observation", "id": "o1",
            "subject": {"reference": "Patient/p1", "display": "x",
                "extension": [{"url": "u", "valueReference": {"reference": "Practitioner/d1"}}]},
            "code": {"coding": [{"system": "s", "code": "c"}]},
            "performer": [{"reference": "Practitioner/d2"}, {"display": "no reference"}]});
        let links = collect(&obs, &InputIndex::default());
        let found: Vec<(&str, &str)> = links.iter().map(|l| (l.path.as_str(), l.raw.as_str())).collect();
        assert_eq!(
            found,
            [
                ("performer", "Practitioner/d2"),
                ("subject", "Patient/p1"),
                ("subject.extension.valueReference", "Practitioner/d1"),
            ]
        );
    }
}
