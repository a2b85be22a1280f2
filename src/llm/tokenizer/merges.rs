//! The merge table, laid out for lookups that stay in cache: the merges of each left token
//! together, sorted by right token (a compressed sparse row), instead of a hash map whose half a
//! million entries are each a cache miss. Frequent left tokens' rows stay hot; a lookup is a
//! short search in one row. The table is kept sorted in the cache file, so loading it is a copy
//! and one pass to find the rows.

/// One merge: `left` then `right` become `merged`; lower `rank` merges first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merge {
    pub left: u32,
    pub right: u32,
    pub rank: u32,
    pub merged: u32,
}

/// The merges sorted by `(left, right)`, one per pair, from a list in rank order (`[left,
/// right, merged]` by rank). Where a pair is listed twice the later one holds, as it does in
/// `tokenizers` (whose map the later insert overwrites).
pub fn sorted(ranked: &[[u32; 3]]) -> Vec<Merge> {
    let mut all: Vec<Merge> = ranked
        .iter()
        .enumerate()
        .map(|(rank, &[left, right, merged])| Merge { left, right, rank: rank as u32, merged })
        .collect();
    all.sort_by_key(|m| (m.left, m.right, std::cmp::Reverse(m.rank)));
    all.dedup_by_key(|m| (m.left, m.right));
    all
}

pub struct Merges {
    /// Row `left` is `entries[rows[left]..rows[left + 1]]`.
    rows: Vec<u32>,
    entries: Vec<Merge>,
}

impl Merges {
    /// The table for a vocabulary of `tokens` ids; refuses entries that are not sorted and
    /// unique, or that name an id outside the vocabulary.
    pub fn new(entries: Vec<Merge>, tokens: usize) -> Result<Self, String> {
        let ordered = entries.windows(2).all(|w| (w[0].left, w[0].right) < (w[1].left, w[1].right));
        let known =
            entries.iter().all(|m| [m.left, m.right, m.merged].iter().all(|&id| (id as usize) < tokens));
        if !ordered || !known {
            return Err("the merge table is out of order or names unknown tokens".into());
        }
        let mut rows = vec![0u32; tokens + 1];
        entries.iter().for_each(|m| rows[m.left as usize + 1] += 1);
        for i in 1..rows.len() {
            rows[i] += rows[i - 1];
        }
        Ok(Self { rows, entries })
    }

    /// `(rank, merged)` of the pair, if it merges.
    #[inline]
    pub fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        let from = *self.rows.get(left as usize)? as usize;
        let row = &self.entries[from..self.rows[left as usize + 1] as usize];
        let at = if row.len() <= 8 {
            row.iter().position(|m| m.right == right)?
        } else {
            row.binary_search_by_key(&right, |m| m.right).ok()?
        };
        Some((row[at].rank, row[at].merged))
    }
}
