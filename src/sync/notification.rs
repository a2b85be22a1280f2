//! What a subscription notification names: the patients whose records changed, or the changed
//! resources to look up for their patient. Read from an R4 rest-hook payload (the resource
//! itself) or a backport notification Bundle (its `notification-event` focus and context).
//!
//! Nothing of the body is stored or trusted beyond these references: the patient is then synced
//! from the server, which is the source of truth, so a notification can at most ask for a sync.

use serde_json::Value as Json;

use crate::fhir::reference::is_valid_id;
use crate::fhir::resource_type::is_known;

/// One thing a notification names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Named {
    Patient(String),
    /// A changed resource (`Type/id`) whose patient must be read from the server.
    Resource(String, String),
}

/// References to a patient that a resource carries (the compartment's usual links).
const PATIENT_LINKS: [&str; 5] = ["subject", "patient", "beneficiary", "for", "individual"];

/// What a notification body names; an empty list for a handshake, a heartbeat or an empty ping.
pub fn named(body: &Json) -> Vec<Named> {
    let mut out = Vec::new();
    if body["resourceType"] == "Bundle" && body["type"] == "history" {
        from_backport(body, &mut out);
    } else if body["resourceType"].is_string() {
        from_resource(body, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// The patient of a resource read from the server (for a `Named::Resource`).
pub fn patient_of(resource: &Json) -> Option<String> {
    let mut out = Vec::new();
    from_resource(resource, &mut out);
    out.into_iter().find_map(|n| match n {
        Named::Patient(p) => Some(p),
        Named::Resource(..) => None,
    })
}

fn from_resource(r: &Json, out: &mut Vec<Named>) {
    if r["resourceType"] == "Patient" {
        if let Some(id) = r["id"].as_str().filter(|id| is_valid_id(id)) {
            out.push(Named::Patient(id.to_owned()));
        }
        return;
    }
    for link in PATIENT_LINKS {
        if let Some(n) = r[link]["reference"].as_str().and_then(reference) {
            if matches!(n, Named::Patient(_)) {
                out.push(n);
            }
        }
    }
}

/// A backport notification: the first entry is its status (`Parameters`, or R4B's
/// `SubscriptionStatus`); each event names a focus and its context.
fn from_backport(bundle: &Json, out: &mut Vec<Named>) {
    let status = &bundle["entry"][0]["resource"];
    let events: Vec<&Json> = match status["resourceType"].as_str() {
        Some("Parameters") => status["parameter"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["name"] == "notification-event" || p["name"] == "notificationEvent")
            .flat_map(|p| p["part"].as_array().into_iter().flatten())
            .filter(|part| {
                ["focus", "additional-context", "additionalContext"]
                    .contains(&part["name"].as_str().unwrap_or(""))
            })
            .map(|part| &part["valueReference"])
            .collect(),
        Some("SubscriptionStatus") => status["notificationEvent"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| {
                std::iter::once(&e["focus"]).chain(e["additionalContext"].as_array().into_iter().flatten())
            })
            .collect(),
        _ => Vec::new(),
    };
    out.extend(events.into_iter().filter_map(|r| r["reference"].as_str()).filter_map(reference));
}

/// `Patient/1`, `http://server/fhir/Observation/2` (absolute, as backport events give them), or
/// with a `_history` tail.
fn reference(s: &str) -> Option<Named> {
    let s = s.split("/_history/").next()?;
    let mut parts = s.rsplit('/');
    let id = parts.next()?;
    let rtype = parts.next()?;
    if !is_known(rtype) || !is_valid_id(id) {
        return None;
    }
    Some(if rtype == "Patient" {
        Named::Patient(id.to_owned())
    } else {
        Named::Resource(rtype.to_owned(), id.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_resource_payload_names_its_patient() {
        let obs = json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}});
        assert_eq!(named(&obs), [Named::Patient("p1".into())]);
        assert_eq!(named(&json!({"resourceType": "Patient", "id": "p2"})), [Named::Patient("p2".into())]);
        // A reference that is not a patient's, or not an id, names nobody.
        let odd = json!({"resourceType": "Observation", "subject": {"reference": "Group/g"}, "patient": {"reference": "Patient/a b"}});
        assert!(named(&odd).is_empty());
    }

    #[test]
    fn a_backport_event_names_its_focus_and_context() {
        let bundle = json!({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
            "resourceType": "Parameters", "parameter": [
                {"name": "type", "valueCode": "event-notification"},
                {"name": "notification-event", "part": [
                    {"name": "event-number", "valueString": "1"},
                    {"name": "focus", "valueReference": {"reference": "http://s/fhir/DiagnosticReport/r1"}},
                    {"name": "additional-context", "valueReference": {"reference": "http://s/fhir/Patient/p1/_history/3"}}]}]}}]});
        assert_eq!(
            named(&bundle),
            [Named::Patient("p1".into()), Named::Resource("DiagnosticReport".into(), "r1".into())]
        );
        let handshake = json!({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {
            "resourceType": "Parameters", "parameter": [{"name": "type", "valueCode": "handshake"}]}}]});
        assert!(named(&handshake).is_empty());
    }
}
