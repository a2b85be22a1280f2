//! The record index on disk: opening it, writing records into it, and committing in step with
//! the database.
//!
//! Every commit carries the id of the last database ingest it reflects as its payload, so a
//! process can tell at start-up whether the index is behind or ahead of the database (a crash
//! between the two commits) and rebuild it (`ingest::Workspace::open`).

use std::collections::HashMap;
use std::path::Path;

use tantivy::directory::MmapDirectory;
use tantivy::schema::Schema;
use tantivy::{DateTime, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument};

use super::keys::Keys;
use super::schema::{self, Fields, Key, KeyHash};
use super::IndexError;
use crate::fhir::Record;

/// Memory the writer may use before flushing a segment, split across its threads.
const WRITER_MEMORY: usize = 128 * 1024 * 1024;

/// Replacements held for one delete at most (a catch-up replaces every record behind). Each
/// delete reads every segment's key columns once at commit, and each held document is memory.
const REPLACEMENTS_AT_ONCE: usize = 10_000;

/// An open record index.
pub struct RecordIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl RecordIndex {
    /// Opens the index in `dir`, creating it if absent.
    pub fn open(dir: &Path) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Create { path: dir.to_owned(), source })?;
        let (schema, fields) = schema::build();
        let open =
            || MmapDirectory::open(dir).map_err(|source| IndexError::Open { path: dir.to_owned(), source });
        let index = match Index::open_or_create(open()?, schema.clone()) {
            Err(tantivy::TantivyError::SchemaError(reason)) => {
                tracing::warn!(%reason, "the search index was written with another schema; starting it anew");
                clear(dir)?;
                Index::create(open()?, schema, tantivy::IndexSettings::default())?
            }
            other => other?,
        };
        index.tokenizers().register(schema::TOKENIZER, super::stem::analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Self { index, reader, fields })
    }

    pub fn schema(&self) -> Schema {
        self.index.schema()
    }

    pub(super) fn fields(&self) -> Fields {
        self.fields
    }

    pub(super) fn index(&self) -> &Index {
        &self.index
    }

    pub(super) fn reader(&self) -> &IndexReader {
        &self.reader
    }

    /// The database ingest id the last commit reflects (0 for a new index).
    pub fn committed_ingest_id(&self) -> Result<i64, IndexError> {
        let metas = self.index.load_metas()?;
        Ok(metas.payload.and_then(|p| p.parse().ok()).unwrap_or(0))
    }

    /// The last commit's operation stamp: it changes with every commit, whoever made it.
    pub fn commit_stamp(&self) -> Result<i64, IndexError> {
        Ok(self.index.load_metas()?.opstamp as i64)
    }

    /// Every document's key (`Type/id`) in the last commit, for `ehrqa check`.
    pub fn committed_keys(&self) -> Result<Vec<String>, IndexError> {
        use tantivy::schema::Value;
        let reader = self.index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let searcher: tantivy::Searcher = IndexReader::searcher(&reader);
        let mut keys = Vec::with_capacity(searcher.num_docs() as usize);
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(64).map_err(tantivy::TantivyError::from)?;
            let alive = segment.alive_bitset();
            for doc in 0..segment.max_doc() {
                if alive.is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                let d: TantivyDocument = store.get(doc)?;
                if let Some(k) = d.get_first(self.fields.key).and_then(|v| v.as_str()) {
                    keys.push(k.to_owned());
                }
            }
        }
        Ok(keys)
    }

    /// Number of documents visible to searches.
    pub fn num_docs(&self) -> Result<u64, IndexError> {
        self.reader.reload()?;
        Ok(self.reader.searcher().num_docs())
    }

    /// Takes the index's single writer (an error if another process holds it).
    pub fn writer(&self) -> Result<IndexUpdater, IndexError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
        let writer = self.index.writer_with_num_threads(threads, WRITER_MEMORY).map_err(|e| match e {
            tantivy::TantivyError::LockFailure(..) => IndexError::Locked,
            other => IndexError::Tantivy(other),
        })?;
        Ok(IndexUpdater { writer, fields: self.fields, replacing: HashMap::new() })
    }

    /// Makes the latest commit visible to searches.
    pub fn reload(&self) -> Result<(), IndexError> {
        Ok(self.reader.reload()?)
    }
}

/// Empties an index directory written with another schema. The new index's tag is 0, so the
/// first process to take the write turn indexes every stored record again (`ingest::rebuild`):
/// the database is the source of truth.
fn clear(dir: &Path) -> Result<(), IndexError> {
    let fail = |source| IndexError::Create { path: dir.to_owned(), source };
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let path = entry.map_err(fail)?.path();
        if path.is_file() {
            std::fs::remove_file(&path).map_err(fail)?;
        }
    }
    Ok(())
}

/// The writing side: records in, commits tagged with an ingest id out.
pub struct IndexUpdater {
    writer: IndexWriter,
    fields: Fields,
    /// Records that replace documents, by key hash (the last one of a key wins), waiting for
    /// one delete of all their keys (`flush_replacements`).
    replacing: HashMap<KeyHash, TantivyDocument>,
}

impl IndexUpdater {
    /// Adds a record, replacing any earlier document for the same resource. Replacements wait
    /// (at most `REPLACEMENTS_AT_ONCE`, and none past `prepare`) so that one delete covers
    /// them all: each delete queued is a scan of every segment's key columns at commit.
    pub fn upsert(&mut self, rec: IndexedRecord<'_>) -> Result<(), IndexError> {
        let key = Key::of(&rec.record.rref);
        self.replacing.insert(key.hash, document(&self.fields, rec, key));
        if self.replacing.len() >= REPLACEMENTS_AT_ONCE {
            self.flush_replacements()?;
        }
        Ok(())
    }

    /// Adds the record of a resource new to the database. The index is in step with the
    /// database when a write begins, so it holds no document for it either, and no delete is
    /// needed. (A replacement of the same record that follows, its adoption by a patient in the
    /// same input, deletes this document when it is flushed, as its delete comes after.)
    pub fn add(&mut self, rec: IndexedRecord<'_>) -> Result<(), IndexError> {
        self.writer.add_document(document(&self.fields, rec, Key::of(&rec.record.rref)))?;
        Ok(())
    }

    /// Deletes every document of the waiting replacements' keys, then adds the replacements:
    /// the delete precedes them, so it reaches only documents added before.
    fn flush_replacements(&mut self) -> Result<(), IndexError> {
        if self.replacing.is_empty() {
            return Ok(());
        }
        let waiting = std::mem::take(&mut self.replacing);
        self.writer.delete_query(Box::new(Keys::new(waiting.keys().copied().collect())))?;
        for (_, doc) in waiting {
            self.writer.add_document(doc)?;
        }
        Ok(())
    }

    /// Removes every document (before a rebuild).
    pub fn clear(&mut self) -> Result<(), IndexError> {
        self.replacing.clear();
        self.writer.delete_all_documents()?;
        Ok(())
    }

    /// Flushes pending documents and prepares a commit tagged with `ingest_id`; nothing is
    /// visible until `PreparedCommit::commit`.
    pub fn prepare(&mut self, ingest_id: i64) -> Result<tantivy::indexer::PreparedCommit<'_>, IndexError> {
        self.flush_replacements()?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&ingest_id.to_string());
        Ok(prepared)
    }

    /// Drops everything added since the last commit.
    pub fn rollback(&mut self) -> Result<(), IndexError> {
        self.replacing.clear();
        self.writer.rollback()?;
        Ok(())
    }

    /// Waits for background merges; call once when done writing.
    pub fn finish(self) -> Result<(), IndexError> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

/// What the index stores of a record.
#[derive(Clone, Copy)]
pub struct IndexedRecord<'a> {
    pub record: &'a Record,
    /// `record` as JSON (already serialised by the caller).
    pub json: &'a str,
    pub tokens: Option<u32>,
}

fn document(f: &Fields, r: IndexedRecord<'_>, key: Key) -> TantivyDocument {
    let rec = r.record;
    let mut doc = TantivyDocument::default();
    doc.add_text(f.record, r.json);
    if let Some(t) = r.tokens {
        doc.add_u64(f.tokens, u64::from(t));
    }
    if let Some(s) = &rec.status {
        doc.add_text(f.status, s);
    }
    doc.add_u64(f.key_hi, key.hash.hi);
    doc.add_u64(f.key_lo, key.hash.lo);
    doc.add_text(f.key, key.text);
    if let Some(p) = &rec.patient {
        doc.add_text(f.patient, p);
    }
    doc.add_text(f.rtype, rec.rref.rtype());
    if let Some(d) = rec.date {
        doc.add_date(f.date, DateTime::from_timestamp_secs(d.timestamp()));
        doc.add_text(f.day, d.day_string());
    }
    for code in rec.all_codes() {
        doc.add_text(f.codes, code);
    }
    doc.add_text(f.text, &rec.text);
    if let Some(n) = &rec.note {
        doc.add_text(f.note, n);
    }
    doc
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tantivy::schema::Value;

    use super::*;
    use crate::fhir::input::{self, Format};
    use crate::fhir::{prepare, PreparedResource, Threads};

    /// One Observation per (id, code text), prepared as ingest prepares them.
    fn observations(of: &[(&str, &str)]) -> Vec<PreparedResource> {
        let entry: Vec<_> = of
            .iter()
            .map(|(id, text)| {
                json!({"resource": {"resourceType": "Observation", "id": id,
                "status": "final", "code": {"text": text}, "effectiveDateTime": "2020-01-02"}})
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "collection", "entry": entry});
        let raw = input::parse(&serde_json::to_vec(&bundle).unwrap(), Format::Json).unwrap();
        prepare(raw, None, Threads::One).unwrap().resources
    }

    fn doc(r: &PreparedResource) -> IndexedRecord<'_> {
        IndexedRecord { record: &r.record, json: &r.record_json, tokens: None }
    }

    /// Every live document's key and rendering, sorted.
    fn documents(index: &RecordIndex) -> Vec<(String, String)> {
        index.reload().unwrap();
        let searcher = index.reader().searcher();
        let f = index.fields();
        let mut out = Vec::new();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(0).unwrap();
            for id in segment.doc_ids_alive() {
                let d: TantivyDocument = store.get(id).unwrap();
                let text = |field| d.get_first(field).and_then(|v| v.as_str()).unwrap().to_owned();
                out.push((text(f.key), text(f.text)));
            }
        }
        out.sort();
        out
    }

    /// A record replaced once, twice in one commit, or added and then replaced in the same
    /// commit leaves exactly one document, the last one written; other documents stay.
    #[test]
    fn a_replaced_record_leaves_one_document_the_last_written() {
        let dir = tempfile::tempdir().unwrap();
        let index = RecordIndex::open(dir.path()).unwrap();
        let mut w = index.writer().unwrap();
        let first = observations(&[("a", "Heart rate"), ("b", "Body weight"), ("c", "Body height")]);
        first.iter().try_for_each(|r| w.add(doc(r))).unwrap();
        w.prepare(1).unwrap().commit().unwrap();
        let second = observations(&[("b", "Glucose"), ("d", "Pulse")]);
        let third = observations(&[("b", "Sodium"), ("d", "Potassium")]);
        w.upsert(doc(&second[0])).unwrap();
        w.add(doc(&second[1])).unwrap();
        w.upsert(doc(&third[0])).unwrap();
        w.upsert(doc(&third[1])).unwrap();
        w.prepare(2).unwrap().commit().unwrap();
        let texts: Vec<String> = documents(&index).into_iter().map(|(_, t)| t).collect();
        let rendered = |r: &PreparedResource| r.record.text.clone();
        assert_eq!(
            texts,
            vec![rendered(&first[0]), rendered(&third[0]), rendered(&first[2]), rendered(&third[1])]
        );
        // A replacement rolled back never reaches the index.
        w.upsert(doc(&second[0])).unwrap();
        w.rollback().unwrap();
        w.prepare(3).unwrap().commit().unwrap();
        assert_eq!(documents(&index).len(), 4);
        w.finish().unwrap();
    }
}
