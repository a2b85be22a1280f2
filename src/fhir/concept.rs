//! Codes: FHIR `Coding` and `CodeableConcept`, read leniently and named for people.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One code from one code system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    /// Short name of the code system for renderings (`LOINC`, `SNOMED`, ...).
    pub fn system_name(&self) -> Option<&'static str> {
        self.system.as_deref().and_then(system_name)
    }
}

/// A `CodeableConcept`: free text plus any number of codings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concept {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub codings: Vec<Coding>,
}

impl Concept {
    /// Reads a CodeableConcept object; also accepts a bare Coding (some producers write one).
    pub fn from_json(v: &Json) -> Option<Self> {
        let obj = v.as_object()?;
        let text = obj.get("text").and_then(Json::as_str).map(str::to_owned);
        let mut codings: Vec<Coding> = match obj.get("coding") {
            Some(Json::Array(list)) => list.iter().filter_map(coding_from_json).collect(),
            _ => Vec::new(),
        };
        if codings.is_empty() {
            codings.extend(coding_from_json(v));
        }
        (text.is_some() || !codings.is_empty()).then_some(Self { text, codings })
    }

    /// Reads an array of CodeableConcepts (category, reasonCode, ...).
    pub fn list_from_json(v: Option<&Json>) -> Vec<Self> {
        match v {
            Some(Json::Array(list)) => list.iter().filter_map(Self::from_json).collect(),
            Some(other) => Self::from_json(other).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The best human label: the text, else the first display, else the first code.
    pub fn label(&self) -> String {
        if let Some(t) = self.text.as_deref().filter(|t| !t.trim().is_empty()) {
            return t.to_owned();
        }
        self.codings
            .iter()
            .find_map(|c| c.display.clone())
            .or_else(|| self.codings.first().map(|c| c.code.clone()))
            .unwrap_or_default()
    }

    /// True when any coding has this code (in any system).
    pub fn has_code(&self, code: &str) -> bool {
        self.codings.iter().any(|c| c.code == code)
    }
}

fn coding_from_json(v: &Json) -> Option<Coding> {
    let obj = v.as_object()?;
    let code = match obj.get("code")? {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(Coding {
        system: obj.get("system").and_then(Json::as_str).map(str::to_owned),
        code,
        display: obj.get("display").and_then(Json::as_str).map(str::to_owned),
    })
}

/// Short names for the code systems that matter clinically.
pub fn system_name(url: &str) -> Option<&'static str> {
    Some(match url {
        "http://loinc.org" => "LOINC",
        "http://snomed.info/sct" => "SNOMED",
        "http://www.nlm.nih.gov/research/umls/rxnorm" => "RxNorm",
        "http://hl7.org/fhir/sid/cvx" => "CVX",
        "http://hl7.org/fhir/sid/icd-10-cm" | "http://hl7.org/fhir/sid/icd-10" => "ICD-10",
        "http://www.ama-assn.org/go/cpt" => "CPT",
        "http://unitsofmeasure.org" => "UCUM",
        "http://dicom.nema.org/resources/ontology/DCM" => "DICOM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_codeable_concepts_and_labels_them() {
        let c = Concept::from_json(&json!({
            "coding": [{"system": "http://loinc.org", "code": "4548-4",
                        "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]
        }))
        .unwrap();
        assert_eq!(c.label(), "Hemoglobin A1c/Hemoglobin.total in Blood");
        assert_eq!(c.codings[0].system_name(), Some("LOINC"));
        assert!(c.has_code("4548-4"));
        let text_only = Concept::from_json(&json!({"text": "Penicillin"})).unwrap();
        assert_eq!(text_only.label(), "Penicillin");
        assert!(Concept::from_json(&json!({"coding": "oops"})).is_none());
    }
}
