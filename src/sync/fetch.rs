//! One patient's resources from a FHIR server: `Patient/{id}/$everything` when the server has
//! it, per-type searches otherwise, with `_since` / `_lastUpdated` for incremental syncs (and a
//! client-side filter, because some servers ignore them), de-duplicated by type and id.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;

use super::client::{query_escape, ClientError, FhirClient};
use crate::fhir::date::FhirDate;

/// How the resources were fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Everything,
    Search,
}

/// Types searched by `patient=` when `$everything` is not available (the patient compartment's
/// clinical types Synthea and most servers hold).
pub const COMPARTMENT_TYPES: [&str; 23] = [
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Claim",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "ExplanationOfBenefit",
    "Goal",
    "ImagingStudy",
    "Immunization",
    "Media",
    "MedicationAdministration",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "Provenance",
    "ServiceRequest",
    "SupplyDelivery",
];

pub async fn patient_resources(
    client: &FhirClient,
    id: &str,
    since: Option<&str>,
    page: usize,
    try_everything: bool,
) -> Result<(Vec<Json>, Method), ClientError> {
    if !try_everything {
        return Ok((dedup(filter_since(by_type(client, id, since, page).await?, since)), Method::Search));
    }
    let since_q = since.map(|s| format!("&_since={}", query_escape(s))).unwrap_or_default();
    let everything = format!("Patient/{}/$everything?_count={page}{since_q}", query_escape(id));
    let (found, method) = match client.all_pages(&everything).await {
        // Only the Patient back: a server without the compartment definition (or one that
        // ignores it); searching by type tells the difference.
        Ok(res) if res.iter().any(|r| r["resourceType"] != "Patient") => (res, Method::Everything),
        Ok(_) | Err(ClientError::Status { .. }) | Err(ClientError::NotFound(..)) => {
            (by_type(client, id, since, page).await?, Method::Search)
        }
        Err(e) => return Err(e),
    };
    Ok((dedup(filter_since(found, since)), method))
}

async fn by_type(
    client: &FhirClient,
    id: &str,
    since: Option<&str>,
    page: usize,
) -> Result<Vec<Json>, ClientError> {
    let mut out = vec![client.get(&format!("Patient/{}", query_escape(id))).await?];
    let since_q = since.map(|s| format!("&_lastUpdated=ge{}", query_escape(s))).unwrap_or_default();
    for t in COMPARTMENT_TYPES {
        let url = format!("{t}?patient={}&_count={page}{since_q}", query_escape(id));
        match client.all_pages(&url).await {
            Ok(res) => out.extend(res),
            // A type the server does not have.
            Err(ClientError::NotFound(..)) | Err(ClientError::Status { status: 400, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Keeps resources updated at or after `since` (and the Patient, which anchors the rest).
fn filter_since(found: Vec<Json>, since: Option<&str>) -> Vec<Json> {
    let Some(since) = since.and_then(FhirDate::parse).map(|d| d.timestamp()) else { return found };
    found
        .into_iter()
        .filter(|r| {
            r["resourceType"] == "Patient"
                || r["meta"]["lastUpdated"]
                    .as_str()
                    .and_then(FhirDate::parse)
                    .is_none_or(|d| d.timestamp() >= since)
        })
        .collect()
}

/// One resource per type and id (pages can overlap when data changes while paging).
fn dedup(found: Vec<Json>) -> Vec<Json> {
    let mut by_key: BTreeMap<(String, String), Json> = BTreeMap::new();
    for r in found {
        let key =
            (r["resourceType"].as_str().unwrap_or("").to_owned(), r["id"].as_str().unwrap_or("").to_owned());
        by_key.insert(key, r);
    }
    by_key.into_values().collect()
}

/// Fetches attachments given by `url` (a `Binary` on the same server) into `data`, so notes
/// stored as Binaries are decoded and indexed like inline ones.
pub async fn inline_binaries(client: &FhirClient, resources: &mut [Json]) -> Result<usize, ClientError> {
    let mut fetched = 0;
    for r in resources.iter_mut() {
        let slots: Vec<&mut Json> = match r["resourceType"].as_str() {
            Some("DocumentReference") | Some("Media") => {
                r["content"].as_array_mut().into_iter().flatten().map(|c| &mut c["attachment"]).collect()
            }
            Some("DiagnosticReport") => r["presentedForm"].as_array_mut().into_iter().flatten().collect(),
            _ => Vec::new(),
        };
        for a in slots {
            let Some(url) = a["url"].as_str().filter(|_| a["data"].is_null()) else { continue };
            let same_server =
                url.starts_with("Binary/") || url.starts_with(&format!("{}/Binary/", client.base()));
            if !same_server {
                continue;
            }
            let binary = client.get(url).await?;
            if let Some(data) = binary["data"].as_str() {
                a["data"] = Json::String(data.to_owned());
                if a["contentType"].is_null() {
                    a["contentType"] = binary["contentType"].clone();
                }
                fetched += 1;
            }
        }
    }
    Ok(fetched)
}

/// The resources as one collection Bundle: one all-or-nothing ingest input.
pub fn bundle(client: &FhirClient, resources: Vec<Json>) -> Vec<u8> {
    let entry: Vec<Json> = resources
        .into_iter()
        .map(|r| {
            let full = format!(
                "{}/{}/{}",
                client.base(),
                r["resourceType"].as_str().unwrap_or(""),
                r["id"].as_str().unwrap_or("")
            );
            serde_json::json!({ "fullUrl": full, "resource": r })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "resourceType": "Bundle", "type": "collection", "entry": entry }))
        .expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_and_dedups() {
        let rs = vec![
            json!({"resourceType": "Patient", "id": "p", "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}}),
            json!({"resourceType": "Observation", "id": "a", "meta": {"lastUpdated": "2020-01-01T00:00:00Z"}}),
            json!({"resourceType": "Observation", "id": "b", "meta": {"lastUpdated": "2024-05-01T10:00:00+02:00"}}),
            json!({"resourceType": "Observation", "id": "b", "meta": {"lastUpdated": "2024-05-01T10:00:00+02:00"}}),
        ];
        let kept = dedup(filter_since(rs, Some("2024-01-01T00:00:00Z")));
        let ids: Vec<&str> = kept.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["b", "p"]);
    }
}
