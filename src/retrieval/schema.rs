//! The tantivy schema: one document per normalised record.
//!
//! A record is found for replacement by `key_hash`, not by its key's text (see `Fields`).
//! `patient` is a raw (untokenised) field that every query is forced through, so patient
//! isolation is a property of the query, not of post-filtering. `text` is the one-line rendering
//! (stored, shown in results) and `note` the decoded note text (indexed only; long).

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::Term;

/// The tokenizer for English clinical text: lower-casing plus Porter stemming.
pub const TOKENIZER: &str = "en_stem";

#[derive(Clone, Copy)]
pub struct Fields {
    /// `Type/id` (stored only: read back by `ehrqa check` and search results).
    pub key: Field,
    /// The term a record is replaced by (`Key::term`): the first 16 bytes of the key's SHA-256.
    /// Resource ids are mostly random UUIDs, and the term dictionary (an FST) shares nothing
    /// between the ends of random strings, so indexing the 40-50 character keys themselves
    /// was the costliest part of writing the index's segments at ingest (6.8% of its CPU;
    /// 2.9% with 16 bytes), and two distinct keys share them with a probability near 2^-128.
    pub key_hash: Field,
    pub patient: Field,
    pub rtype: Field,
    /// UTC start of the record's date (fast, for ranges and sorting).
    pub date: Field,
    /// The date as rendered (`2019-03-02`, or `2019` when that is all the source said).
    pub day: Field,
    /// Codes of the record (`4548-4`), untokenised.
    pub codes: Field,
    pub text: Field,
    pub note: Field,
    /// Status code (`active`, `final`...), untokenised: the header filters on it.
    pub status: Field,
    /// The whole normalised record as JSON (stored only): retrieval reads records from the
    /// index alone, without a database round trip.
    pub record: Field,
    /// Tokens of `text` under the model's tokenizer, counted once at ingest (stored only).
    pub tokens: Field,
}

/// A record's key (`Type/id`) and the hash its document is found by, computed once.
pub struct Key {
    pub text: String,
    /// The first 16 bytes of `text`'s SHA-256.
    pub hash: [u8; 16],
}

impl Key {
    pub fn of(rref: &crate::fhir::ResourceRef) -> Self {
        use sha2::{Digest, Sha256};
        let text = rref.to_string();
        let digest = Sha256::digest(text.as_bytes());
        let mut hash = [0; 16];
        hash.copy_from_slice(&digest[..16]);
        Self { text, hash }
    }

    /// The term that identifies the record's document.
    pub fn term(&self, fields: &Fields) -> Term {
        Term::from_field_bytes(fields.key_hash, &self.hash)
    }
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let english = |stored: bool| {
        let o = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        if stored {
            o.set_stored()
        } else {
            o
        }
    };
    let fields = Fields {
        key: b.add_text_field("key", STORED),
        key_hash: b.add_bytes_field("key_hash", INDEXED),
        patient: b.add_text_field("patient", STRING | STORED),
        rtype: b.add_text_field("type", STRING | STORED | FAST),
        date: b.add_date_field("date", INDEXED | STORED | FAST),
        day: b.add_text_field("day", STORED),
        codes: b.add_text_field("codes", STRING),
        text: b.add_text_field("text", english(true)),
        note: b.add_text_field("note", english(false)),
        status: b.add_text_field("status", STRING),
        record: b.add_text_field("record", STORED),
        tokens: b.add_u64_field("tokens", STORED),
    };
    (b.build(), fields)
}
