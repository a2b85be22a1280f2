//! The tantivy schema: one document per normalised record.
//!
//! A record is found for replacement by its key's hash, not by its key's text (see `Fields`).
//! `patient` is a raw (untokenised) field that every query is forced through, so patient
//! isolation is a property of the query, not of post-filtering. `text` is the one-line rendering
//! (stored, shown in results) and `note` the decoded note text (indexed only; long).

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};

/// The tokenizer for English clinical text: lower-casing plus Porter stemming.
pub const TOKENIZER: &str = "en_stem";

#[derive(Clone, Copy)]
pub struct Fields {
    /// `Type/id` (stored only: read back by `ehrqa check` and search results).
    pub key: Field,
    /// The first and last 8 bytes of the first 16 of the key's SHA-256, as fast-field columns:
    /// what a replaced record's document is found by (`keys::Keys`). They had been one indexed
    /// bytes term per document: 100,000 random terms made the largest term dictionary and
    /// postings of a segment, about 5-6% of ingest's CPU (README "Ingest, 2026-12-07 (tenth
    /// session)"); a column is written without a dictionary. Two distinct keys share both
    /// halves with a probability near 2^-128.
    pub key_hi: Field,
    pub key_lo: Field,
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

/// The names of the key hash's two columns (`Fields::key_hi`, `key_lo`), which `keys` reads.
pub const KEY_HI: &str = "key_hi";
pub const KEY_LO: &str = "key_lo";

/// A record's key (`Type/id`) and the hash its document is found by, computed once.
pub struct Key {
    pub text: String,
    /// The first 16 bytes of `text`'s SHA-256, as two numbers (`Fields::key_hi`, `key_lo`).
    pub hash: KeyHash,
}

/// The first 16 bytes of a key's SHA-256, big-endian halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHash {
    pub hi: u64,
    pub lo: u64,
}

impl Key {
    pub fn of(rref: &crate::fhir::ResourceRef) -> Self {
        use sha2::{Digest, Sha256};
        let text = rref.to_string();
        let digest = Sha256::digest(text.as_bytes());
        let half = |at: usize| u64::from_be_bytes(digest[at..at + 8].try_into().expect("8 bytes"));
        Self { text, hash: KeyHash { hi: half(0), lo: half(8) } }
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
        key_hi: b.add_u64_field(KEY_HI, FAST),
        key_lo: b.add_u64_field(KEY_LO, FAST),
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
