//! Grounding: every number, date and unit a sentence states must be held by a record the
//! sentence cites, and every record it cites must hold something the sentence states. What a
//! record holds is read from the context the model was given: the record's own line, and the
//! clauses of computed facts and series summaries that name it (`latest 6.2 % on
//! 2019-03-02 [ref]` holds 6.2 % and that day for `ref`; the numbers of a clause naming no
//! record, such as the count of `12 results from 2001-02-03 to 2019-05-06`, hold for every
//! record of its item).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::citation_grammar;
use super::tags::own_reference;
use super::values::{self, Stated};
use crate::retrieval::context::ItemKind;
use crate::retrieval::{Context, ContextItem};

/// What each record of a context holds.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    by_ref: HashMap<String, Vec<Stated>>,
    /// Measured numbers of a series clause that cites no record (a change: `change +0.3 %`),
    /// with the records of its item: held by a sentence citing two of them (its ends), as a
    /// reader checks a difference.
    joint: Vec<(Vec<String>, Vec<Stated>)>,
}

/// A sentence taken out of an answer because a value it states is held by no record it cites
/// nor by exactly one record of the context, or an answer taken out whole because it cites no
/// record at all (then `values` is empty). A JSON contract: the answer's `ungrounded`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ungrounded {
    /// The sentence as the model wrote it, citations removed.
    pub sentence: String,
    /// The values no record holds, as written.
    pub values: Vec<String>,
}

/// How one sentence's citations stand after grounding.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Keep the sentence: `drop` are cited records that hold nothing it states, `add` records
    /// that hold what nothing cited did.
    Keep { drop: Vec<String>, add: Vec<String> },
    /// Take the sentence out: these values are held by nothing it could cite.
    Remove { values: Vec<String> },
}

impl Evidence {
    pub fn of(ctx: &Context) -> Self {
        // Only what the context shows: a record summarised in a series line was not shown whole,
        // so its own rendering holds nothing the model could have read.
        let mut by_ref: HashMap<String, Vec<Stated>> = HashMap::new();
        let mut joint = Vec::new();
        for item in &ctx.items {
            for (owners, stated) in clauses(item) {
                match owners {
                    Owners::Each(rs) => {
                        for r in rs {
                            by_ref.entry(r).or_default().extend(stated.iter().cloned());
                        }
                    }
                    Owners::Together(rs) => joint.push((rs, stated)),
                }
            }
        }
        Self { by_ref, joint }
    }

    /// Whether `v` is a measured number of a clause citing no record, and the sentence cites
    /// two records of its item.
    fn holds_jointly(&self, cited: &[String], v: &Stated) -> bool {
        self.joint.iter().any(|(refs, stated)| {
            cited.iter().filter(|r| refs.contains(r)).count() >= 2 && stated.iter().any(|h| v.held_by(h))
        })
    }

    fn holds(&self, rref: &str, v: &Stated) -> bool {
        self.by_ref.get(rref).is_some_and(|held| held.iter().any(|h| v.held_by(h)))
    }

    /// The records of the context that hold every one of `vs`, in a stable order.
    fn holders(&self, vs: &[&Stated]) -> Vec<&str> {
        let mut out: Vec<&str> =
            self.by_ref.keys().map(String::as_str).filter(|r| vs.iter().all(|v| self.holds(r, v))).collect();
        out.sort_unstable();
        out
    }

    /// Judges one sentence (its text without citations) and the records it cites.
    pub fn judge(&self, sentence: &str, cited: &[String]) -> Verdict {
        let claims = values::read(sentence);
        if claims.is_empty() {
            return Verdict::Keep { drop: Vec::new(), add: Vec::new() };
        }
        let counted = claims.iter().any(|v| is_count_of(v, cited.len()));
        // A citation must hold what the sentence is about: its measured values when it states
        // any (a record of the same day does not state 6.2 %), else its dates.
        let measured: Vec<&Stated> = claims
            .iter()
            .filter(|v| matches!(v, Stated::Number { .. }) && !is_count_of(v, cited.len()))
            .collect();
        let primary: Vec<&Stated> = if measured.is_empty() { claims.iter().collect() } else { measured };
        let drop: Vec<String> = if counted {
            Vec::new()
        } else {
            cited.iter().filter(|r| !primary.iter().any(|v| self.holds(r, v))).cloned().collect()
        };
        // What the dropped records held is no longer cited: a date copied from another record
        // of the context must be held by what stays.
        let kept: Vec<String> = cited.iter().filter(|r| !drop.contains(r)).cloned().collect();
        let held = |v: &Stated| {
            kept.iter().any(|r| self.holds(r, v))
                || is_count_of(v, cited.len())
                || self.holds_jointly(&kept, v)
        };
        let unheld: Vec<&Stated> = claims.iter().filter(|v| !held(v)).collect();
        let mut add: Vec<String> = Vec::new();
        let mut missing = Vec::new();
        // A record dropped for not stating the measured values does not come back to hold the
        // rest: "6.2 % on 1938-06-21" with the day taken from another record is a miscopy.
        let fresh = |hs: Option<Vec<String>>| hs.filter(|hs| !hs.iter().any(|h| drop.contains(h)));
        if !unheld.is_empty() {
            match fresh(self.few_holders(&unheld, MAX_TOGETHER)) {
                Some(all) => add.extend(all),
                None => {
                    for v in &unheld {
                        match fresh(self.few_holders(&[*v], 1)) {
                            Some(hs) => {
                                add.extend(hs.into_iter().filter(|h| !add.contains(h)).collect::<Vec<_>>())
                            }
                            None => missing.push(v.text()),
                        }
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Verdict::Remove { values: missing };
        }
        Verdict::Keep { drop, add }
    }

    /// The records holding all of `vs` when there are one to `max`; none when no record does
    /// or so many do that the sentence does not say which.
    fn few_holders(&self, vs: &[&Stated], max: usize) -> Option<Vec<String>> {
        let hs = self.holders(vs);
        (1..=max).contains(&hs.len()).then(|| hs.into_iter().map(str::to_owned).collect())
    }
}

/// Values no cited record holds are cited to the records of the context that hold all of them
/// together (at most this many: a panel and its component state the same measurement), else
/// each to the one record that holds it; held by more, the sentence does not say which record,
/// and it is not grounded.
const MAX_TOGETHER: usize = 3;

/// A whole number equal to how many records the sentence cites ("3 visits [1][2][3]").
fn is_count_of(v: &Stated, cited: usize) -> bool {
    matches!(v, Stated::Number { value, decimals: 0, unit: None, .. } if cited > 1 && *value == cited as f64)
}

/// Whom a clause's values are held by.
enum Owners {
    /// Each of these records holds them.
    Each(Vec<String>),
    /// Only these records cited together (two or more) hold them.
    Together(Vec<String>),
}

/// What an item's parts state and whom: a record, note or header line states everything for
/// its own record; a fact or summary is read clause by clause (`; `), each clause for the
/// records it cites. A clause citing none states its counts (whole numbers without a unit) for
/// each of the item's records, and its measured numbers (a change) for them together. Only the
/// item's own references count (`tags::own_reference`): a reference written inside record text
/// names nothing.
fn clauses(item: &ContextItem) -> Vec<(Owners, Vec<Stated>)> {
    let parts: Vec<&str> = match item.kind {
        ItemKind::Fact | ItemKind::Summary => item.text.split("; ").collect(),
        ItemKind::Header | ItemKind::Record | ItemKind::Note => vec![item.text.as_str()],
    };
    let mut out = Vec::new();
    for part in parts {
        let groups = citation_grammar::groups(part);
        let mut owners: Vec<String> = Vec::new();
        let mut text = String::with_capacity(part.len());
        let mut from = 0;
        for g in &groups {
            text.push_str(&part[from..g.start]);
            text.push(' ');
            if let Some(r) = own_reference(item, g) {
                owners.push(r.to_owned());
            }
            from = g.end;
        }
        text.push_str(&part[from..]);
        let stated = values::read(&text);
        match item.kind {
            // `12 results from 2001-02-03 to 2019-05-06; ...; change +0.3 %`: the count is the
            // series', the change its ends' together, and each day is its own record's, which
            // the clauses citing it state.
            ItemKind::Fact | ItemKind::Summary if owners.is_empty() => {
                let refs: Vec<String> = item.all_refs().map(str::to_owned).collect();
                let (counts, measured): (Vec<Stated>, Vec<Stated>) = stated
                    .into_iter()
                    .filter(|v| matches!(v, Stated::Number { .. }))
                    .partition(|v| matches!(v, Stated::Number { decimals: 0, unit: None, .. }));
                out.push((Owners::Each(refs.clone()), counts));
                out.push((Owners::Together(refs), measured));
            }
            ItemKind::Fact | ItemKind::Summary => out.push((Owners::Each(owners), stated)),
            _ => out.push((Owners::Each(vec![item.rref.clone()]), stated)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(pairs: &[(&str, &str)]) -> Evidence {
        let mut e = Evidence::default();
        for (r, text) in pairs {
            e.by_ref.entry((*r).to_owned()).or_default().extend(values::read(text));
        }
        e
    }

    fn cited(rs: &[&str]) -> Vec<String> {
        rs.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn keeps_what_the_cited_record_holds() {
        let e = evidence(&[("A", "2019-03-02 A1c = 6.2 %"), ("B", "2019-03-02 Hemoglobin = 13.1 g/dL")]);
        let v = e.judge("A1c was 6.20 % on March 2, 2019.", &cited(&["A"]));
        assert_eq!(v, Verdict::Keep { drop: vec![], add: vec![] });
    }

    #[test]
    fn moves_a_citation_to_the_one_record_holding_the_value() {
        let e = evidence(&[("A", "2019-03-02 A1c = 6.2 %"), ("B", "2019-03-02 Hemoglobin = 13.1 g/dL")]);
        // B holds the day but not the value: it is not what the sentence says.
        let v = e.judge("A1c was 6.2 % on 2019-03-02.", &cited(&["B"]));
        assert_eq!(v, Verdict::Keep { drop: vec!["B".into()], add: vec!["A".into()] });
    }

    #[test]
    fn removes_a_value_no_record_holds() {
        let e = evidence(&[("A", "1984-07-17 A1c = 6.2 %")]);
        let v = e.judge("A1c was 6.4 % on 2023-11-20.", &cited(&["A"]));
        assert_eq!(v, Verdict::Remove { values: vec!["2023-11-20".into(), "6.4 %".into()] });
        // The right value in the wrong unit is not grounded either.
        let v = e.judge("A1c was 6.2 mg/dL.", &cited(&["A"]));
        assert_eq!(v, Verdict::Remove { values: vec!["6.2 mg/dl".into()] });
    }

    #[test]
    fn a_date_held_only_by_a_dropped_citation_is_not_grounded() {
        let e = evidence(&[
            ("T", "2006-01-17 Temperature = 35.658 C"),
            ("T2", "2010-05-01 Temperature = 35.658 C"),
            ("H", "1997-03-30 Heart rate = 80 /min"),
        ]);
        // H holds the day but not the value, and is dropped; no record holds both.
        let v = e.judge("Temperature was 35.658 C on 1997-03-30.", &cited(&["T", "H"]));
        assert_eq!(v, Verdict::Remove { values: vec!["1997-03-30".into()] });
    }

    #[test]
    fn a_change_needs_both_ends_cited() {
        let mut e = evidence(&[("A", "2019-01-02 A1c = 5.9 %"), ("B", "2020-01-02 A1c = 6.2 %")]);
        e.joint.push((cited(&["A", "B"]), values::read("change +0.3 %")));
        let said = "A1c went from 5.9 % to 6.2 %, up 0.3 %.";
        assert_eq!(e.judge(said, &cited(&["A", "B"])), Verdict::Keep { drop: vec![], add: vec![] });
        assert_eq!(
            e.judge("A1c is 6.2 %, up 0.3 %.", &cited(&["B"])),
            Verdict::Remove { values: vec!["0.3 %".into()] }
        );
    }

    #[test]
    fn a_count_is_grounded_by_the_records_it_counts() {
        let e = evidence(&[("A", "2019-03-02 Visit"), ("B", "2020-01-05 Visit")]);
        let v = e.judge("He had 2 visits.", &cited(&["A", "B"]));
        assert_eq!(v, Verdict::Keep { drop: vec![], add: vec![] });
    }
}
