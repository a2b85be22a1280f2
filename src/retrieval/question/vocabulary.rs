//! The clinical vocabulary: phrases people use -> codes and resource types.
//!
//! The data lives in `data/vocabulary.json` (built by `tools/build_vocabulary.py` from the codes
//! that occur in Synthea data, merged with the hand-curated `data/synonyms.json`) and is embedded
//! in the binary, so a question is analysed the same way everywhere.

use std::collections::HashMap;
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
}

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
        let mut longest = 1;
        for (i, c) in file.concepts.iter().enumerate() {
            // Only terms name a concept: a generated concept whose display was too generic to be
            // a phrase ("Encounter", "LOINC Code") has none, and is reachable by code alone.
            for term in &c.terms {
                let w = words(term);
                if w.is_empty() {
                    continue;
                }
                longest = longest.max(w.len());
                let ids = by_phrase.entry(w.join(" ")).or_default();
                if !ids.contains(&i) {
                    ids.push(i);
                }
            }
        }
        Ok(Self { concepts: file.concepts, by_phrase, longest })
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

    /// Longest-first, left-to-right matching of vocabulary phrases in `tokens`.
    pub fn find(&self, tokens: &[String]) -> Vec<PhraseMatch> {
        let mut found = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            let max = self.longest.min(tokens.len() - i);
            let hit = (1..=max).rev().find_map(|n| self.lookup(&tokens[i..i + n]).map(|ids| (n, ids)));
            match hit {
                Some((n, ids)) => {
                    found.push(PhraseMatch { start: i, end: i + n, concepts: ids.clone() });
                    i += n;
                }
                None => i += 1,
            }
        }
        found
    }

    fn lookup(&self, words: &[String]) -> Option<&Vec<usize>> {
        let phrase = words.join(" ");
        self.by_phrase.get(&phrase).or_else(|| {
            let last = words.last()?;
            let single = singular(last)?;
            let mut w = words.to_vec();
            *w.last_mut()? = single;
            self.by_phrase.get(&w.join(" "))
        })
    }
}
