//! The preprocessed tokenizer: `Tables` in a compact binary file beside `tokenizer.json`, so
//! that a process starts without parsing 33 MB of JSON and half a million merge strings.
//!
//! The file is `<tokenizer.json>.ehrqa-tables`, written once (atomically: a temporary file
//! renamed into place) by the first process that reads the JSON and may write there. It is
//! trusted only while it names the JSON's size and modification time, parses whole and
//! holds a well-formed merge table (`Merges::new` checks); any
//! other file is ignored and rebuilt, so a stale or damaged cache costs one slow start, never a
//! wrong token.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::merges::Merge;
use super::vocabulary::{Added, Tables};

const MAGIC: &[u8; 8] = b"EHRQATK2";

/// Where the tables of `source` are cached.
pub fn path_for(source: &Path) -> PathBuf {
    let mut name = source.file_name().unwrap_or_default().to_owned();
    name.push(".ehrqa-tables");
    source.with_file_name(name)
}

/// What identifies the JSON a cache was made from: its size and modification time.
pub fn stamp(source: &Path) -> Option<[u64; 2]> {
    let meta = std::fs::metadata(source).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some([meta.len(), mtime.as_nanos() as u64])
}

/// The cached tables, if the cache exists, is whole and was made from this `stamp`.
pub fn read(path: &Path, stamp: [u64; 2]) -> Option<Tables> {
    let bytes = std::fs::read(path).ok()?;
    let mut r = Reader { bytes: &bytes, at: 0 };
    (r.take(8)? == MAGIC && r.u64()? == stamp[0] && r.u64()? == stamp[1]).then_some(())?;
    let pieces = (0..r.u32()?).map(|_| r.string()).collect::<Option<Vec<_>>>()?;
    let merges = (0..r.u32()?)
        .map(|_| Some(Merge { left: r.u32()?, right: r.u32()?, rank: r.u32()?, merged: r.u32()? }))
        .collect::<Option<Vec<_>>>()?;
    let added = (0..r.u32()?)
        .map(|_| Some(Added { id: r.u32()?, special: r.take(1)?[0] == 1, content: r.string()? }))
        .collect::<Option<Vec<_>>>()?;
    (r.at == bytes.len()).then_some(Tables { pieces, merges, added })
}

/// Writes the cache; a failure (a read-only directory, say) only means the next start parses
/// the JSON again.
pub fn write(path: &Path, stamp: [u64; 2], t: &Tables) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(16 << 20);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&stamp[0].to_le_bytes());
    out.extend_from_slice(&stamp[1].to_le_bytes());
    let u32 = |out: &mut Vec<u8>, x: usize| out.extend_from_slice(&(x as u32).to_le_bytes());
    let string = |out: &mut Vec<u8>, s: &str| {
        u32(out, s.len());
        out.extend_from_slice(s.as_bytes());
    };
    u32(&mut out, t.pieces.len());
    t.pieces.iter().for_each(|p| string(&mut out, p));
    u32(&mut out, t.merges.len());
    for m in &t.merges {
        [m.left, m.right, m.rank, m.merged].iter().for_each(|&x| u32(&mut out, x as usize));
    }
    u32(&mut out, t.added.len());
    for a in &t.added {
        u32(&mut out, a.id as usize);
        out.push(u8::from(a.special));
        string(&mut out, &a.content);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, &out)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}
