//! What every case must satisfy, and the tally of what happened.
//!
//! Two paths per case. The pipeline path sends the input's bytes through `fhir::input::parse`
//! and `fhir::prepare`, which must refuse with an error or return a batch in which every resource
//! has a one-line rendering. The direct path calls each stage (references, attachments, every
//! normaliser, the date, reference and value types) on the mutated resources themselves, so that
//! a bug behind an earlier refusal (an invalid id, an unknown type) is still reached.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use ehrqa::fhir::attachment::{self, Attachment};
use ehrqa::fhir::concept::Concept;
use ehrqa::fhir::date::FhirDate;
use ehrqa::fhir::image::ImageCheck;
use ehrqa::fhir::input::{self, Format};
use ehrqa::fhir::normalise::patient::Demographics;
use ehrqa::fhir::normalise::{self, Ctx};
use ehrqa::fhir::reference::{is_valid_id, ResourceRef, Target};
use ehrqa::fhir::resolve::{self, InputIndex};
use ehrqa::fhir::value::{Quantity, ReferenceRange, Value};
use ehrqa::fhir::{prepare, InputError, PreparedBatch, Record, Threads};
use ehrqa::tokens::TokenCounter;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::seeds::Seed;

/// Refusals are shown to people and logged: a hostile input must not make them long.
const MAX_ERROR_BYTES: usize = 1024;

/// Counts of what the cases did, for the summary line.
#[derive(Debug, Default)]
pub struct Tally {
    pub cases: u64,
    pub accepted: u64,
    pub refused: BTreeMap<&'static str, u64>,
    pub resources: u64,
    pub with_issues: u64,
    pub duplicates: u64,
    pub direct: u64,
    /// Attachments of accepted resources: decoded notes, images decoded, images refused, PDFs.
    pub notes: u64,
    pub images: u64,
    pub images_refused: u64,
    pub pdfs: u64,
    pub slowest: Duration,
    /// The slowest case's plan, shortened, to tell which mutation costs the most.
    pub slowest_case: String,
    /// The longest refusal message, its length and its start.
    pub longest_error: usize,
    pub longest_error_start: String,
}

impl Tally {
    pub fn merge(&mut self, other: Tally) {
        self.cases += other.cases;
        self.accepted += other.accepted;
        for (k, n) in other.refused {
            *self.refused.entry(k).or_default() += n;
        }
        self.resources += other.resources;
        self.with_issues += other.with_issues;
        self.duplicates += other.duplicates;
        self.direct += other.direct;
        self.notes += other.notes;
        self.images += other.images;
        self.images_refused += other.images_refused;
        self.pdfs += other.pdfs;
        if other.slowest > self.slowest {
            (self.slowest, self.slowest_case) = (other.slowest, other.slowest_case);
        }
        if other.longest_error > self.longest_error {
            (self.longest_error, self.longest_error_start) = (other.longest_error, other.longest_error_start);
        }
    }

    pub fn refused_total(&self) -> u64 {
        self.refused.values().sum()
    }
}

/// A stand-in tokenizer, so that `prepare` runs its token-counting path.
struct Words;

impl TokenCounter for Words {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// The pipeline path: bytes -> parse -> prepare.
pub fn pipeline(bytes: &[u8], format: Format, tally: &mut Tally) -> Result<(), TestCaseError> {
    let batch = match input::parse(bytes, format) {
        Ok(b) => b,
        Err(e) => return refused(&e, tally),
    };
    let entries = batch.entries.len();
    prop_assert!(entries > 0, "parse returned an empty batch");
    match prepare(batch, Some(&Words), Threads::TwoIfLarge) {
        Ok(p) => accepted(&p, entries, tally),
        Err(e) => refused(&e, tally),
    }
}

fn refused(e: &InputError, tally: &mut Tally) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(!msg.contains('\n') && !msg.is_empty(), "an error is one line: {msg:?}");
    prop_assert!(
        msg.len() <= MAX_ERROR_BYTES,
        "an error of {} bytes: {:?}...",
        msg.len(),
        msg.chars().take(200).collect::<String>()
    );
    if msg.len() > tally.longest_error {
        tally.longest_error = msg.len();
        tally.longest_error_start = msg.chars().take(100).collect();
    }
    *tally.refused.entry(error_kind(e)).or_default() += 1;
    Ok(())
}

fn error_kind(e: &InputError) -> &'static str {
    match e {
        InputError::Io { .. } => "io",
        InputError::TooLarge { .. } => "too_large",
        InputError::NotUtf8 { .. } => "not_utf8",
        InputError::TooDeep(_) => "too_deep",
        InputError::NotJson(_) => "not_json",
        InputError::NotFhir(_) => "not_fhir",
        InputError::Entry { .. } => "entry",
        InputError::Empty => "empty",
    }
}

fn accepted(p: &PreparedBatch, entries: usize, tally: &mut Tally) -> Result<(), TestCaseError> {
    prop_assert_eq!(p.resources.len() + p.duplicates, entries, "every entry is kept or a duplicate");
    let mut seen = HashSet::new();
    for r in &p.resources {
        prop_assert!(seen.insert(&r.rref), "{} prepared twice", r.rref);
        prop_assert_eq!(&r.record.rref, &r.rref);
        rendered(&r.record)?;
        prop_assert_eq!(&r.hash, &hex::encode(Sha256::digest(r.raw.as_bytes())), "hash of raw");
        let back: Record = serde_json::from_str(&r.record_json)
            .map_err(|e| TestCaseError::fail(format!("{}: record_json does not read back: {e}", r.rref)))?;
        prop_assert_eq!(&back.text, &r.record.text);
        let line = ehrqa::tokens::context_line(&format!("[{}] {}", r.rref, r.record.text));
        prop_assert_eq!(r.tokens, Some(Words.count(&line) as u32));
        count_attachments(&r.attachments, tally);
    }
    tally.accepted += 1;
    tally.resources += p.resources.len() as u64;
    tally.with_issues += p.with_issues() as u64;
    tally.duplicates += p.duplicates as u64;
    Ok(())
}

fn count_attachments(attachments: &[Attachment], tally: &mut Tally) {
    for a in attachments {
        tally.notes += u64::from(a.text.is_some());
        match a.image.as_ref().map(|i| &i.check) {
            Some(ImageCheck::Image { .. }) => tally.images += 1,
            Some(ImageCheck::Refused(_)) => tally.images_refused += 1,
            Some(ImageCheck::Pdf) => tally.pdfs += 1,
            None => {}
        }
    }
}

/// A rendering: non-empty, naming the resource type, and on one line (a context line must not
/// break, or token counts and citations go wrong).
fn rendered(rec: &Record) -> Result<(), TestCaseError> {
    let text = &rec.text;
    prop_assert!(text.contains(rec.rref.rtype()), "{}: rendering {text:?} lacks the type", rec.rref);
    prop_assert!(!text.contains(['\n', '\r']), "{}: rendering {text:?} is not one line", rec.rref);
    Ok(())
}

/// The direct path: every stage on the mutated resources, whatever the pipeline thought of them.
pub fn direct(resources: &[Seed], as_type: Option<&str>, tally: &mut Tally) -> Result<(), TestCaseError> {
    let rrefs: Vec<ResourceRef> =
        resources.iter().enumerate().map(|(i, s)| identity(&s.resource, i)).collect();
    let mut index = InputIndex::default();
    for (s, r) in resources.iter().zip(&rrefs) {
        index.add(r.clone(), s.full_url.as_deref(), &s.resource);
    }
    for (s, rref) in resources.iter().zip(&rrefs) {
        let links = resolve::collect(&s.resource, &index);
        let mut lossy = Vec::new();
        let note = match attachment::extract(&s.resource, &mut lossy) {
            Ok(atts) => Some(atts.iter().filter_map(|a| a.text.clone()).collect::<Vec<_>>().join("\n\n")),
            Err(bad) => {
                prop_assert!(!bad.reason.is_empty() && !bad.reason.contains('\n'), "{bad:?}");
                None
            }
        };
        let ctx = Ctx { links: &links, index: &index };
        let rec = normalise::normalise(&s.resource, rref, None, note.clone(), &ctx);
        rendered(&rec)?;
        if let Some(other) = as_type.and_then(|t| ResourceRef::new(t, rref.id())) {
            rendered(&normalise::normalise(&s.resource, &other, None, note, &ctx))?;
        }
        let _ = Demographics::from_json(&s.resource);
        let _ = resolve::identifiers(&s.resource);
        every_value(&s.resource);
        tally.direct += 1;
    }
    Ok(())
}

/// The resource's identity when it has a usable one, else a stand-in, so that every resource
/// reaches the normalisers.
fn identity(resource: &Json, i: usize) -> ResourceRef {
    let rtype = resource.get("resourceType").and_then(Json::as_str).unwrap_or("Basic");
    let id = resource.get("id").and_then(Json::as_str).filter(|id| is_valid_id(id)).unwrap_or("fuzz");
    ResourceRef::new(rtype, id)
        .or_else(|| ResourceRef::new("Basic", id))
        .unwrap_or_else(|| ResourceRef::new("Basic", &format!("fuzz{i}")).expect("a valid id"))
}

/// Reads every string as a date and a reference, and every object as each value type, and
/// renders what reads.
fn every_value(v: &Json) {
    match v {
        Json::String(s) => {
            if let Some(d) = FhirDate::parse(s) {
                let ts = d.timestamp();
                let _ = (d.day_string(), d.end_timestamp(), FhirDate::instant_string(ts));
                let _ = FhirDate::from_timestamp(ts).day_string();
            }
            let _ = Target::parse(s);
            let _ = ResourceRef::parse(s).map(|r| r.to_string());
        }
        Json::Object(obj) => {
            if let Ok(Some(value)) = Value::from_parent(obj) {
                let _ = (value.to_string(), value.as_number());
            }
            let _ = Concept::from_json(v).map(|c| c.label());
            let _ = ReferenceRange::from_json(v).map(|r| r.to_string());
            let _ = Quantity::from_json(v).map(|q| q.to_string());
            obj.values().for_each(every_value);
        }
        Json::Array(items) => items.iter().for_each(every_value),
        _ => {}
    }
}
