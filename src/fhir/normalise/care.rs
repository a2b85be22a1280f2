//! CarePlan, CareTeam and Goal.

use serde_json::Value as Json;

use super::{join_labels, Parts, Source};
use crate::fhir::concept::Concept;
use crate::fhir::record::Record;

pub fn care_plan(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    let named: Vec<Concept> = rec
        .categories
        .iter()
        .filter(|c| c.codings.iter().any(|k| k.display.is_some()) || c.text.is_some())
        .cloned()
        .collect();
    rec.code = named.first().cloned();
    let label = join_labels(&named.iter().map(Concept::label).collect::<Vec<_>>(), 3);
    let activities: Vec<String> = src
        .obj()
        .get("activity")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.pointer("/detail/code").and_then(Concept::from_json))
        .map(|c| c.label())
        .collect();
    let mut detail = String::new();
    if !activities.is_empty() {
        detail.push_str(&format!(": {}", join_labels(&activities, 6)));
    }
    Parts { label, detail }
}

pub fn care_team(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    let reasons = src.concepts("reasonCode");
    rec.code = reasons.first().cloned();
    let members: Vec<String> = src
        .obj()
        .get("participant")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let role = p.pointer("/role/0").and_then(Concept::from_json).map(|c| c.label());
            let who = p.pointer("/member/display").and_then(Json::as_str);
            match (role, who) {
                (Some(r), Some(w)) => Some(format!("{w} ({r})")),
                (r, w) => r.or(w.map(str::to_owned)),
            }
        })
        .collect();
    let label = reasons.iter().map(Concept::label).collect::<Vec<_>>().join(", ");
    let mut detail = String::new();
    if !members.is_empty() {
        detail.push_str(&format!(" members: {}", join_labels(&members, 4)));
    }
    Parts { label, detail }
}

pub fn goal(src: &mut Source<'_>, rec: &mut Record) -> Parts {
    rec.code = src.concept("description");
    let mut detail = String::new();
    if let Some(a) = src.str("achievementStatus.text").or_else(|| src.str("achievementStatus.coding.code")) {
        detail.push_str(&format!(" ({a})"));
    }
    if let Some(s) = src.str("lifecycleStatus") {
        rec.status = Some(s.to_owned());
    }
    Parts { label: rec.code.as_ref().map(|c| c.label()).unwrap_or_default(), detail }
}
