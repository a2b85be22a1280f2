//! Finding documents by their key's hash, to delete them when their records are replaced.
//!
//! The hash lives in two fast-field columns (`schema::Fields::key_hi`, `key_lo`), not in an
//! indexed term: one random term per document made the largest term dictionary of every
//! segment. A delete is therefore a query that reads the columns: one query for all the keys
//! an input replaces (`IndexUpdater`), since tantivy runs each queued delete against every
//! segment at commit.

use std::collections::HashSet;

use tantivy::query::{ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED};

use super::schema::{KeyHash, KEY_HI, KEY_LO};

/// Matches every document whose key hash is one of `hashes`.
#[derive(Debug, Clone)]
pub struct Keys {
    hashes: HashSet<KeyHash>,
}

impl Keys {
    pub fn new(hashes: HashSet<KeyHash>) -> Self {
        Self { hashes }
    }

    /// Whether a document of the segment has one of the keys asked for.
    fn asked<'a>(&'a self, reader: &SegmentReader) -> tantivy::Result<impl Fn(DocId) -> bool + 'a> {
        let (hi, lo) = (reader.fast_fields().u64(KEY_HI)?, reader.fast_fields().u64(KEY_LO)?);
        Ok(move |doc| match (hi.first(doc), lo.first(doc)) {
            (Some(hi), Some(lo)) => self.hashes.contains(&KeyHash { hi, lo }),
            _ => false,
        })
    }
}

impl Query for Keys {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for Keys {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let asked = self.asked(reader)?;
        let docs: Vec<DocId> = (0..reader.max_doc()).filter(|&doc| asked(doc)).collect();
        Ok(Box::new(ConstScorer::new(Found { docs, at: 0 }, boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        match self.asked(reader)?(doc) {
            true => Ok(Explanation::new("key hash", 1.0)),
            false => {
                Err(tantivy::TantivyError::InvalidArgument(format!("document {doc} has no key asked for")))
            }
        }
    }
}

/// The documents a scan found, in order (tantivy's own list of documents is for its tests).
struct Found {
    docs: Vec<DocId>,
    at: usize,
}

impl DocSet for Found {
    fn advance(&mut self) -> DocId {
        self.at = (self.at + 1).min(self.docs.len());
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        self.docs.len() as u32
    }
}
