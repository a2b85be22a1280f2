//! Observation-style values: `value[x]`, components, reference ranges and interpretation.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::concept::Concept;
use super::date::FhirDate;

/// A measured amount with its unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantity {
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparator: Option<String>,
}

impl Quantity {
    pub fn from_json(v: &Json) -> Option<Self> {
        let obj = v.as_object()?;
        let value = obj.get("value")?.as_f64()?;
        let unit = obj.get("unit").or_else(|| obj.get("code")).and_then(Json::as_str).map(str::to_owned);
        let comparator = obj.get("comparator").and_then(Json::as_str).map(str::to_owned);
        Some(Self { value, unit, comparator })
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.comparator {
            f.write_str(c)?;
        }
        write!(f, "{}", format_number(self.value))?;
        match self.unit.as_deref() {
            Some(u) if !u.is_empty() && u != "1" && u != "{score}" => write!(f, " {u}"),
            _ => Ok(()),
        }
    }
}

/// Numbers as a person writes them: no trailing `.0`, at most 4 decimals.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The value of an observation (or component), whatever `value[x]` type it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Value {
    Quantity(Quantity),
    Concept { concept: Concept },
    Text { text: String },
    Boolean { value: bool },
    Integer { value: i64 },
    Range { low: Option<Quantity>, high: Option<Quantity> },
    Ratio { numerator: Quantity, denominator: Quantity },
    DateTime { date: FhirDate },
}

impl Value {
    /// Reads `value[x]` from an object that has one (Observation, component, ...).
    /// Returns `Err(key)` when a value key is present but its content cannot be read.
    pub fn from_parent(obj: &Map<String, Json>) -> Result<Option<Self>, String> {
        let Some((key, v)) = obj.iter().find(|(k, _)| k.starts_with("value")) else {
            return Ok(None);
        };
        let parsed = match key.as_str() {
            "valueQuantity" | "valueAge" | "valueDuration" | "valueCount" | "valueDistance"
            | "valueMoney" => Quantity::from_json(v).map(Value::Quantity),
            "valueCodeableConcept" | "valueCoding" => {
                Concept::from_json(v).map(|concept| Value::Concept { concept })
            }
            "valueString" | "valueMarkdown" | "valueCode" | "valueId" | "valueUri" => {
                v.as_str().map(|s| Value::Text { text: s.to_owned() })
            }
            "valueBoolean" => v.as_bool().map(|value| Value::Boolean { value }),
            "valueInteger" | "valuePositiveInt" | "valueUnsignedInt" => {
                v.as_i64().map(|value| Value::Integer { value })
            }
            "valueRange" => v.as_object().map(|r| Value::Range {
                low: r.get("low").and_then(Quantity::from_json),
                high: r.get("high").and_then(Quantity::from_json),
            }),
            "valueRatio" => {
                let r = v.as_object();
                let num = r.and_then(|r| r.get("numerator")).and_then(Quantity::from_json);
                let den = r.and_then(|r| r.get("denominator")).and_then(Quantity::from_json);
                num.zip(den).map(|(numerator, denominator)| Value::Ratio { numerator, denominator })
            }
            "valueDateTime" | "valueInstant" | "valueDate" => {
                v.as_str().and_then(FhirDate::parse).map(|date| Value::DateTime { date })
            }
            "valuePeriod" => v
                .get("start")
                .and_then(Json::as_str)
                .and_then(FhirDate::parse)
                .map(|date| Value::DateTime { date }),
            // valueSampledData, valueAttachment, valueReference...: kept raw, not rendered.
            _ => return Ok(None),
        };
        parsed.map(Some).ok_or_else(|| key.clone())
    }

    /// The numeric value when there is one (for computed facts and comparisons).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Quantity(q) => Some(q.value),
            Value::Integer { value } => Some(*value as f64),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Quantity(q) => write!(f, "{q}"),
            Value::Concept { concept } => f.write_str(&concept.label()),
            Value::Text { text } => f.write_str(text),
            Value::Boolean { value } => f.write_str(if *value { "yes" } else { "no" }),
            Value::Integer { value } => write!(f, "{value}"),
            Value::Range { low, high } => {
                let show = |q: &Option<Quantity>| q.as_ref().map(|q| q.to_string()).unwrap_or_default();
                write!(f, "{}-{}", show(low), show(high))
            }
            Value::Ratio { numerator, denominator } => write!(f, "{numerator}/{denominator}"),
            Value::DateTime { date } => write!(f, "{date}"),
        }
    }
}

/// One component of a multi-part observation (systolic/diastolic...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub code: Concept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// An observation's reference range: numbers when given, else its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ReferenceRange {
    pub fn from_json(v: &Json) -> Option<Self> {
        let obj = v.as_object()?;
        let num = |k: &str| obj.get(k).and_then(|q| q.get("value")).and_then(Json::as_f64);
        let r = Self {
            low: num("low"),
            high: num("high"),
            text: obj.get("text").and_then(Json::as_str).map(str::to_owned),
        };
        (r.low.is_some() || r.high.is_some() || r.text.is_some()).then_some(r)
    }
}

impl fmt::Display for ReferenceRange {
    /// Both bounds with the same number of decimals (`4.0-5.6`), as lab reports print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = [self.low, self.high]
            .iter()
            .flatten()
            .map(|v| format_number(*v).split('.').nth(1).map_or(0, str::len))
            .max()
            .unwrap_or(0);
        let show = |v: f64| format!("{v:.decimals$}");
        match (self.low, self.high) {
            (Some(l), Some(h)) => write!(f, "{}-{}", show(l), show(h)),
            (Some(l), None) => write!(f, ">={}", show(l)),
            (None, Some(h)) => write!(f, "<={}", show(h)),
            (None, None) => f.write_str(self.text.as_deref().unwrap_or("")),
        }
    }
}

/// Interpretation flags in words (`H` -> `high`), from the v3 ObservationInterpretation codes.
pub fn interpretation_word(concept: &Concept) -> String {
    let word = concept.codings.iter().find_map(|c| {
        Some(match c.code.as_str() {
            "H" => "high",
            "HH" | "HU" => "critical high",
            "L" => "low",
            "LL" | "LU" => "critical low",
            "N" => "normal",
            "A" => "abnormal",
            "AA" => "critical",
            "POS" => "positive",
            "NEG" => "negative",
            _ => return None,
        })
    });
    word.map(str::to_owned).unwrap_or_else(|| concept.label().to_lowercase())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_numbers_like_a_person() {
        assert_eq!(format_number(6.2), "6.2");
        assert_eq!(format_number(120.0), "120");
        assert_eq!(format_number(0.123456), "0.1235");
    }

    #[test]
    fn reads_value_x_forms() {
        let obj = json!({"valueQuantity": {"value": 6.2, "unit": "%"}});
        let v = Value::from_parent(obj.as_object().unwrap()).unwrap().unwrap();
        assert_eq!(v.to_string(), "6.2 %");
        assert_eq!(v.as_number(), Some(6.2));
        let obj = json!({"valueBoolean": true});
        assert_eq!(Value::from_parent(obj.as_object().unwrap()).unwrap().unwrap().to_string(), "yes");
        let broken = json!({"valueQuantity": {"value": "six"}});
        assert_eq!(Value::from_parent(broken.as_object().unwrap()), Err("valueQuantity".into()));
    }
}
