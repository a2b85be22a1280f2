//! The clinical vocabulary: phrases people use -> codes and resource types.
//!
//! The data lives in `data/vocabulary.json` (built by `tools/build_vocabulary.py` from the codes
//! that occur in Synthea data, merged with the hand-curated `data/synonyms.json`) and is embedded
//! in the binary, so a question is analysed the same way everywhere.
//!
//! A word the vocabulary does not know that is one typing slip away from a word it does know
//! (`platlets`, `potasium`, `cholestrol`, `colonscopy`) is read as that word, but only where the
//! question matches no phrase as written.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;

use super::text::{singular, words};

/// One concept: the phrases that name it and what it maps to in the record.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct VocabConcept {
    pub name: String,
    pub terms: Vec<String>,
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub types: Vec<String>,
}

#[derive(Deserialize)]
struct VocabFile {
    concepts: Vec<VocabConcept>,
}

/// A phrase of the question that names concepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseMatch {
    /// Word positions `[start, end)` in the question.
    pub start: usize,
    pub end: usize,
    pub concepts: Vec<usize>,
}

pub struct Vocabulary {
    concepts: Vec<VocabConcept>,
    by_phrase: HashMap<String, Vec<usize>>,
    longest: usize,
    /// Every word of every term, for reading misspellings.
    known: HashSet<String>,
}

/// Misspellings are read only in words at least this long (shorter ones are too often another
/// real word one letter away: `cut`/`cat`, `shot`/`shoe`).
const MIN_SLIP_LEN: usize = 7;

impl Vocabulary {
    /// The vocabulary embedded from `data/vocabulary.json`.
    pub fn embedded() -> &'static Vocabulary {
        static VOCAB: OnceLock<Vocabulary> = OnceLock::new();
        VOCAB.get_or_init(|| {
            Self::from_json(include_str!("../../../data/vocabulary.json"))
                .expect("data/vocabulary.json is valid (tested)")
        })
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let file: VocabFile = serde_json::from_str(json)?;
        let mut by_phrase: HashMap<String, Vec<usize>> = HashMap::new();
        let mut known = HashSet::new();
        let mut longest = 1;
        for (i, c) in file.concepts.iter().enumerate() {
            // Only terms name a concept: a generated concept whose display was too generic to be
            // a phrase ("Encounter", "LOINC Code") has none, and is reachable by code alone.
            for term in &c.terms {
                let mut w: Vec<String> = words(term).into_iter().filter(|w| !is_filler(w)).collect();
                if w.is_empty() {
                    continue;
                }
                longest = longest.max(w.len());
                known.extend(w.iter().cloned());
                let mut keys = vec![key(&w)];
                // "white blood cells" also names "white blood cell level"'s "white blood cell"
                // (one-word plurals stay plural: "readings" is not every "reading").
                if let Some(one) = w.last().filter(|_| w.len() > 1).and_then(|l| singular(l)) {
                    *w.last_mut().expect("not empty") = one;
                    keys.push(key(&w));
                }
                for k in keys {
                    let ids = by_phrase.entry(k).or_default();
                    if !ids.contains(&i) {
                        ids.push(i);
                    }
                }
            }
        }
        Ok(Self { concepts: file.concepts, by_phrase, longest, known })
    }

    pub fn concept(&self, i: usize) -> &VocabConcept {
        &self.concepts[i]
    }

    pub fn len(&self) -> usize {
        self.concepts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.concepts.is_empty()
    }

    /// Concepts that list `code`, the curated (no `count`) ones first.
    pub fn with_code<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a VocabConcept> + 'a {
        self.concepts.iter().filter(move |c| c.codes.iter().any(|k| k == code))
    }

    /// Longest-first, left-to-right matching of vocabulary phrases in `tokens`; where nothing
    /// matches as written, the same with misspelt words read as the known words they slip from.
    /// Possessives inside a phrase are passed over ("reason for his appointment" is "reason for
    /// appointment"), and hyphens are spaces ("high-density" is "high density").
    pub fn find(&self, tokens: &[String]) -> Vec<PhraseMatch> {
        let kept: Vec<usize> = (0..tokens.len()).filter(|&i| !is_filler(&tokens[i])).collect();
        let view: Vec<String> = kept.iter().map(|&i| tokens[i].clone()).collect();
        let corrected: Vec<String> =
            view.iter().map(|t| self.correct(t).unwrap_or_else(|| t.clone())).collect();
        let slips = corrected != view;
        let mut found = Vec::new();
        let mut i = 0;
        while i < view.len() {
            let max = self.longest.min(view.len() - i);
            let hit = (1..=max).rev().find_map(|n| self.lookup(&view[i..i + n]).map(|ids| (n, ids))).or_else(
                || {
                    let fixed = slips.then_some(&corrected)?;
                    (1..=max).rev().find_map(|n| self.lookup(&fixed[i..i + n]).map(|ids| (n, ids)))
                },
            );
            match hit {
                Some((n, ids)) => {
                    let (start, end) = (kept[i], kept[i + n - 1] + 1);
                    found.push(PhraseMatch { start, end, concepts: ids.clone() });
                    i += n;
                }
                None => i += 1,
            }
        }
        found
    }

    /// The known word an unknown `w` is one slip from (a letter added, dropped, changed, or two
    /// neighbours swapped), when exactly one known word is.
    fn correct(&self, w: &str) -> Option<String> {
        // Inflected verbs and adverbs are real words, not slips ("diagnosed" is not "diagnoses").
        if w.chars().count() < MIN_SLIP_LEN
            || ["ed", "ing", "ly"].iter().any(|s| w.ends_with(s))
            || !w.chars().all(char::is_alphabetic)
            || self.known.contains(w)
            || singular(w).is_some_and(|s| self.known.contains(&s))
        {
            return None;
        }
        let mut best: Option<&String> = None;
        for k in &self.known {
            if k.len().abs_diff(w.len()) <= 1 && k.chars().count() >= MIN_SLIP_LEN - 1 && one_slip(w, k) {
                if best.is_some_and(|b| b != k) {
                    return None;
                }
                best = Some(k);
            }
        }
        best.cloned()
    }

    fn lookup(&self, words: &[String]) -> Option<&Vec<usize>> {
        self.by_phrase.get(&key(words)).or_else(|| {
            let last = words.last()?;
            let single = singular(last)?;
            let mut w = words.to_vec();
            *w.last_mut()? = single;
            self.by_phrase.get(&key(&w))
        })
    }
}

/// The lookup key of a phrase: its words, with hyphens read as spaces.
fn key(words: &[String]) -> String {
    words.join(" ").replace('-', " ")
}

/// Possessives, which never tell one concept from another.
fn is_filler(w: &str) -> bool {
    matches!(w, "his" | "her" | "their" | "my" | "your" | "its")
}

/// Whether `a` and `b` differ by one edit: a character inserted, deleted or replaced, or two
/// adjacent characters transposed.
fn one_slip(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (ra, rb) = (&a[prefix..], &b[prefix..]);
    match ra.len().cmp(&rb.len()) {
        std::cmp::Ordering::Equal => {
            ra[1..] == rb[1..] || (ra.len() >= 2 && ra[0] == rb[1] && ra[1] == rb[0] && ra[2..] == rb[2..])
        }
        std::cmp::Ordering::Less => ra[..] == rb[1..],
        std::cmp::Ordering::Greater => ra[1..] == rb[..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(q: &str) -> Vec<String> {
        let v = Vocabulary::embedded();
        v.find(&words(q)).iter().flat_map(|m| m.concepts.iter().map(|&i| v.concept(i).name.clone())).collect()
    }

    #[test]
    fn one_slip_is_one_edit() {
        assert!(one_slip("platlets", "platelets"));
        assert!(one_slip("potasium", "potassium"));
        assert!(one_slip("diabetis", "diabetes"));
        assert!(one_slip("hemoglboin", "hemoglobin"));
        assert!(!one_slip("glucose", "glucose"));
        assert!(!one_slip("platlet", "platelets"));
        assert!(!one_slip("abcdef", "badcfe"));
    }

    #[test]
    fn reads_common_misspellings() {
        for (q, name) in [
            ("latest platlets", "platelets"),
            ("where is her potasium now", "potassium"),
            ("when did his migranes start", "migraine"),
            ("has he ever had a colonscopy", "colonoscopy"),
            ("any history of hypertention", "hypertension"),
            ("what is his cholestrol", "total cholesterol"),
        ] {
            assert!(names(q).iter().any(|n| n == name), "{q}: {:?}", names(q));
        }
        // Known words are never "corrected", and short words are left alone.
        assert!(Vocabulary::embedded().correct("glucose").is_none());
        assert!(Vocabulary::embedded().correct("sugr").is_none());
        assert!(Vocabulary::embedded().correct("diagnosed").is_none());
    }

    #[test]
    fn knows_consumer_brand_and_british_words() {
        for (q, name) in [
            ("how is his sugar control", "hemoglobin a1c"),
            ("latest haemoglobin", "hemoglobin"),
            ("has she had a water infection", "urinary tract infection"),
            ("is he on a blood thinner", "blood thinners"),
            ("is she taking a water pill", "hydrochlorothiazide"),
            ("when was her last flu jab", "flu shot"),
            ("is he on eliquis", "apixaban"),
            ("any hep c", "hepatitis c"),
            ("high-density lipoprotein result", "hdl cholesterol"),
            ("highest white blood cell level", "white blood cell count"),
            ("what was the reason for his appointment", "clinical notes"),
        ] {
            assert!(names(q).iter().any(|n| n == name), "{q}: {:?}", names(q));
        }
    }
}
