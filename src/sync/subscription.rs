//! The Subscription resources ehrqa asks a FHIR server for, and how it reads their state.
//!
//! Two kinds: an R4 rest-hook per resource type (`criteria: Observation?`), delivered with the
//! resource as payload; or, where the server offers topics, an R4 topic-based subscription
//! (Subscriptions Backport IG), delivered `id-only`. Either way the channel carries a header with
//! a secret ehrqa made, which is how its notification endpoint knows the sender. What a
//! notification carries is only a hint of which patient changed: ehrqa then syncs that patient
//! from the server itself.

use serde_json::{json, Value as Json};

const BACKPORT: &str = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition";

/// The header a notification proves itself with.
pub const SECRET_HEADER: &str = "X-Ehrqa-Notification-Secret";

/// What a subscription asks to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria {
    /// Every create or update of one resource type (R4 `criteria: Type?`).
    Type(String),
    /// A SubscriptionTopic's canonical URL (R4 backport).
    Topic(String),
}

impl Criteria {
    pub fn describe(&self) -> &str {
        match self {
            Self::Type(t) | Self::Topic(t) => t,
        }
    }
}

/// The Subscription resource to create.
pub fn resource(criteria: &Criteria, endpoint: &str, secret: &str) -> Json {
    let header = format!("{SECRET_HEADER}: {secret}");
    let reason = "ehrqa: sync the patient whose record changed";
    match criteria {
        Criteria::Type(t) => json!({
            "resourceType": "Subscription",
            "status": "requested",
            "reason": reason,
            "criteria": format!("{t}?"),
            "channel": {
                "type": "rest-hook",
                "endpoint": endpoint,
                "payload": "application/fhir+json",
                "header": [header],
            },
        }),
        Criteria::Topic(url) => json!({
            "resourceType": "Subscription",
            "meta": { "profile": [format!("{BACKPORT}/backport-subscription")] },
            "status": "requested",
            "reason": reason,
            "criteria": url,
            "channel": {
                "type": "rest-hook",
                "endpoint": endpoint,
                "payload": "application/fhir+json",
                "_payload": { "extension": [
                    { "url": format!("{BACKPORT}/backport-payload-content"), "valueCode": "id-only" }
                ] },
                "header": [header],
            },
        }),
    }
}

/// A subscription's state as the server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Active, or requested and not yet judged (a backport handshake in flight).
    Working,
    /// Off, in error, or gone: to be made again.
    Broken(String),
}

/// Reads a Subscription's `status` (and an R4 `error`, whose text is the server's and is not
/// kept: only that there was one).
pub fn health(subscription: &Json) -> Health {
    match subscription["status"].as_str() {
        Some("active" | "requested") => Health::Working,
        Some(s @ ("off" | "error")) => Health::Broken(format!("the server reports it {s}")),
        Some(other) => Health::Broken(format!("an unknown status {:?}", printable(other))),
        None => Health::Broken("no status".into()),
    }
}

fn printable(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic()).take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_carry_the_secret_and_ask_for_what_they_name() {
        let r = resource(&Criteria::Type("Observation".into()), "http://e/v1/notifications", "s3");
        assert_eq!(r["criteria"], "Observation?");
        assert_eq!(r["channel"]["header"][0], "X-Ehrqa-Notification-Secret: s3");
        let t = resource(&Criteria::Topic("http://t/encounter-complete".into()), "http://e", "s3");
        assert_eq!(t["criteria"], "http://t/encounter-complete");
        assert_eq!(t["channel"]["_payload"]["extension"][0]["valueCode"], "id-only");
    }

    #[test]
    fn off_error_and_unknown_statuses_are_broken() {
        assert_eq!(health(&json!({"status": "active"})), Health::Working);
        assert!(matches!(health(&json!({"status": "error", "error": "x"})), Health::Broken(_)));
        assert!(matches!(health(&json!({})), Health::Broken(_)));
    }
}
