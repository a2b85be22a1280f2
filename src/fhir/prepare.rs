//! Raw entries -> resources ready to store: validated identities, references resolved within the
//! input, attachments decoded, records normalised, raw JSON canonicalised and hashed.
//!
//! Pure and synchronous (no I/O), so it runs on a blocking thread and is tested without a database.
//! Any problem that makes the input unacceptable is returned as an error here, before anything is
//! written, which is half of the all-or-nothing guarantee (the store's transaction is the other).

use foldhash::{HashMap, HashMapExt};

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::attachment::{self, Attachment};
use super::compartment;
use super::error::{EntryProblem, InputError};
use super::input::{RawBatch, RawEntry};
use super::normalise::patient::Demographics;
use super::normalise::{self, Ctx};
use super::record::Record;
use super::reference::{is_valid_id, ResourceRef};
use super::resolve::{self, InputIndex, RefLink};
use super::resource_type;
use crate::tokens::TokenCounter;

/// Inputs with at least this many resources are prepared on two threads when the caller allows
/// it (`Threads::TwoIfLarge`).
const PARALLEL_FROM: usize = 2_000;

/// How many threads prepare one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// The caller's thread alone: ingest's loaders already prepare one file each on every core,
    /// and a second thread per file made four threads share two cores, spawned a thread (with an
    /// empty allocator heap) per file, and delayed the first file the writer waits for.
    One,
    /// A second thread for half of a large input: an input prepared on its own (a posted bundle,
    /// a sync download, `ehrqa check` reading its inputs in turn) would otherwise leave a core
    /// idle while the caller waits for it.
    TwoIfLarge,
}

/// One resource, ready for the store and the index.
#[derive(Debug, Clone)]
pub struct PreparedResource {
    pub rref: ResourceRef,
    pub full_url: Option<String>,
    pub version_id: Option<String>,
    /// `meta.lastUpdated` as a UTC timestamp, to decide which of two versions is newer.
    pub last_updated: Option<i64>,
    /// SHA-256 of `raw`, hex: equal hashes mean an unchanged resource.
    pub hash: String,
    /// The resource as canonical compact JSON (keys sorted).
    pub raw: String,
    pub record: Record,
    /// `record` serialised, computed here so the writer does no CPU work.
    pub record_json: String,
    /// Tokens of the record's line in a context (`tokens::context_line`), when a tokenizer was
    /// given.
    pub tokens: Option<u32>,
    pub links: Vec<RefLink>,
    pub identifiers: Vec<(Option<String>, String)>,
    pub attachments: Vec<Attachment>,
    /// Set for Patient resources.
    pub demographics: Option<Demographics>,
}

/// A whole input, prepared. Storing it is all-or-nothing.
#[derive(Debug, Clone, Default)]
pub struct PreparedBatch {
    pub resources: Vec<PreparedResource>,
    /// Entries that repeated an earlier entry's identity (the last one is kept).
    pub duplicates: usize,
}

impl PreparedBatch {
    /// Resources whose normalisation noted something it could not read.
    pub fn with_issues(&self) -> usize {
        self.resources.iter().filter(|r| !r.record.issues.is_empty()).count()
    }
}

/// Validates, resolves and normalises a raw input; counts each rendering's tokens when given a
/// counter (stored, so a context of any size is assembled without re-tokenizing).
pub fn prepare(
    mut batch: RawBatch,
    counter: Option<&dyn TokenCounter>,
    threads: Threads,
) -> Result<PreparedBatch, InputError> {
    if batch.may_hold_nul {
        batch.entries.iter_mut().for_each(|e| drop_nul(&mut e.resource));
    }
    let identities = batch.entries.iter().map(identity).collect::<Result<Vec<_>, _>>()?;
    let (keep, duplicates) = last_of_each(&identities);
    let mut index = InputIndex::default();
    for &i in &keep {
        let e = &batch.entries[i];
        index.add(identities[i].clone(), e.full_url.as_deref(), &e.resource);
    }
    let one = |i: usize| prepare_one(&batch.entries[i], &identities[i], &index, counter);
    let resources = if threads == Threads::TwoIfLarge && keep.len() >= PARALLEL_FROM {
        let (a, b) = keep.split_at(keep.len() / 2);
        std::thread::scope(|s| {
            let second = s.spawn(|| prepare_all(b, b.len(), one));
            let mut first = prepare_all(a, keep.len(), one)?;
            first.extend(second.join().expect("preparing thread panicked")?);
            Ok::<_, InputError>(first)
        })?
    } else {
        prepare_all(&keep, keep.len(), one)?
    };
    Ok(PreparedBatch { resources, duplicates })
}

/// Prepares the entries `at`, into a vector made for `room` resources at once: collecting a
/// `Result` iterator cannot know its length, and growing a vector of these large structs by
/// doubling copied each several times and faulted in fresh pages for every copy.
fn prepare_all(
    at: &[usize],
    room: usize,
    one: impl Fn(usize) -> Result<PreparedResource, InputError>,
) -> Result<Vec<PreparedResource>, InputError> {
    let mut out = Vec::with_capacity(room);
    for &i in at {
        out.push(one(i)?);
    }
    Ok(out)
}

/// Drops NUL characters from every string of a resource. FHIR strings may not hold them, none
/// means anything, and PostgreSQL's text refuses them: an input with one is stored without it,
/// the same on either backend.
fn drop_nul(v: &mut Json) {
    match v {
        Json::String(s) if s.contains('\0') => *s = s.replace('\0', ""),
        Json::Array(items) => items.iter_mut().for_each(drop_nul),
        Json::Object(fields) => {
            if fields.keys().any(|k| k.contains('\0')) {
                *fields = std::mem::take(fields).into_iter().map(|(k, v)| (k.replace('\0', ""), v)).collect();
            }
            fields.values_mut().for_each(drop_nul);
        }
        _ => {}
    }
}

/// The resource's `Type/id`, taking the id from a `urn:uuid:` fullUrl or the content's hash when
/// the resource has none (POSTed transaction entries may omit it).
fn identity(e: &RawEntry) -> Result<ResourceRef, InputError> {
    let fail = |problem| InputError::Entry { at: e.at, problem };
    let obj = e.resource.as_object().ok_or_else(|| fail(EntryProblem::NotAnObject))?;
    let rtype = match obj.get("resourceType") {
        Some(Json::String(t)) => t.as_str(),
        _ => return Err(fail(EntryProblem::MissingType)),
    };
    if !resource_type::is_known(rtype) {
        return Err(fail(EntryProblem::UnknownType(rtype.to_owned())));
    }
    let id = match obj.get("id") {
        Some(Json::String(id)) if is_valid_id(id) => id.clone(),
        Some(other) => return Err(fail(EntryProblem::BadId(other.to_string()))),
        None => derived_id(e),
    };
    Ok(ResourceRef::new(rtype, &id).expect("type and id were validated"))
}

fn derived_id(e: &RawEntry) -> String {
    let from_url =
        e.full_url.as_deref().and_then(|u| u.strip_prefix("urn:uuid:")).filter(|id| is_valid_id(id));
    match from_url {
        Some(id) => id.to_owned(),
        None => hex::encode(&Sha256::digest(e.resource.to_string().as_bytes())[..16]),
    }
}

/// Indices of the entries to keep (the last occurrence of each identity), in input order.
fn last_of_each(ids: &[ResourceRef]) -> (Vec<usize>, usize) {
    let mut last: HashMap<&ResourceRef, usize> = HashMap::with_capacity(ids.len());
    for (i, r) in ids.iter().enumerate() {
        last.insert(r, i);
    }
    let keep: Vec<usize> = (0..ids.len()).filter(|&i| last[&ids[i]] == i).collect();
    let dups = ids.len() - keep.len();
    (keep, dups)
}

fn prepare_one(
    e: &RawEntry,
    rref: &ResourceRef,
    index: &InputIndex<'_>,
    counter: Option<&dyn TokenCounter>,
) -> Result<PreparedResource, InputError> {
    let links = resolve::collect(&e.resource, index);
    let mut lossy = Vec::new();
    let attachments = attachment::extract(&e.resource, &mut lossy).map_err(|bad| InputError::Entry {
        at: e.at,
        problem: EntryProblem::BadAttachment { path: bad.path, reason: bad.reason },
    })?;
    let note = note_text(&attachments);
    let patient = compartment::patient_of(rref, &links);
    let ctx = Ctx { links: &links, index };
    let mut record = normalise::normalise(&e.resource, rref, patient, note, &ctx);
    record.issues.extend(lossy);
    let raw = serde_json::to_string(&e.resource).expect("a JSON value serialises");
    let record_json = serde_json::to_string(&record).expect("a record serialises");
    let tokens =
        counter.map(|c| c.count(&crate::tokens::context_line(&format!("[{rref}] {}", record.text))) as u32);
    let meta = e.resource.get("meta");
    Ok(PreparedResource {
        rref: rref.clone(),
        full_url: e.full_url.clone(),
        version_id: meta.and_then(|m| m.get("versionId")).and_then(Json::as_str).map(str::to_owned),
        last_updated: meta
            .and_then(|m| m.get("lastUpdated"))
            .and_then(Json::as_str)
            .and_then(super::date::FhirDate::parse)
            .map(|d| d.timestamp()),
        hash: hex::encode(Sha256::digest(raw.as_bytes())),
        record_json,
        tokens,
        raw,
        record,
        identifiers: resolve::identifiers(&e.resource)
            .into_iter()
            .map(|(s, v)| (s.map(str::to_owned), v.to_owned()))
            .collect(),
        links,
        attachments,
        demographics: (rref.rtype() == "Patient").then(|| Demographics::from_json(&e.resource)).flatten(),
    })
}

/// The decoded text of the resource's text attachments (notes), joined.
fn note_text(attachments: &[Attachment]) -> Option<String> {
    let texts: Vec<&str> = attachments.iter().filter_map(|a| a.text.as_deref()).collect();
    (!texts.is_empty()).then(|| texts.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fhir::input::{self, Format};

    /// A bundle of one patient and `n` observations that refer to it by its `urn:uuid:`.
    fn bundle(n: usize) -> Vec<u8> {
        let patient = "urn:uuid:2a6c0c4e-0000-4000-8000-000000000000";
        let mut entry = vec![
            json!({"fullUrl": patient, "resource": {"resourceType": "Patient", "id": "2a6c0c4e-0000-4000-8000-000000000000"}}),
        ];
        entry.extend((0..n).map(|i| {
            json!({"resource": {"resourceType": "Observation", "id": format!("obs-{i}"), "status": "final",
                "code": {"text": "Heart rate"}, "subject": {"reference": patient},
                "effectiveDateTime": "2020-01-02", "valueQuantity": {"value": i, "unit": "/min"}}})
        }));
        serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "collection", "entry": entry})).unwrap()
    }

    /// What the writer and the index are given of each resource, in order.
    fn written(b: &PreparedBatch) -> Vec<(String, String, String, Option<String>)> {
        b.resources
            .iter()
            .map(|r| (r.rref.to_string(), r.hash.clone(), r.record_json.clone(), r.record.patient.clone()))
            .collect()
    }

    #[test]
    fn one_thread_or_two_prepare_a_large_input_alike_and_in_input_order() {
        let bytes = bundle(PARALLEL_FROM + 1);
        let prepared = |threads| prepare(input::parse(&bytes, Format::Json).unwrap(), None, threads).unwrap();
        let (one, two) = (prepared(Threads::One), prepared(Threads::TwoIfLarge));
        assert_eq!(one.resources.len(), PARALLEL_FROM + 2);
        assert_eq!(written(&one), written(&two));
        let last = one.resources.last().unwrap();
        assert_eq!(last.rref.to_string(), format!("Observation/obs-{PARALLEL_FROM}"));
        assert_eq!(last.record.patient.as_deref(), Some("2a6c0c4e-0000-4000-8000-000000000000"));
    }
}
