//! Byte-pair merging of one word, exactly as the `tokenizers` crate does it
//! (`models::bpe::word::Word::merge_all`): the lowest-ranked mergeable pair first, the leftmost
//! among equals, with stale queue entries skipped. `tests/it/tokenizer.rs` checks the ids
//! against that crate.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::merges::Merges;

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: i32,
    next: i32,
    /// False once merged into its left neighbour.
    alive: bool,
}

#[derive(PartialEq, Eq)]
struct Candidate {
    pos: u32,
    rank: u32,
    new_id: u32,
}

impl Ord for Candidate {
    /// A max-heap that pops the lowest rank, then the lowest position.
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank.cmp(&self.rank).then(other.pos.cmp(&self.pos))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Merges `ids` (a word's initial symbols) and calls `out` with each final token id, in order.
pub fn merge(ids: &[u32], merges: &Merges, mut out: impl FnMut(u32)) {
    if ids.len() < 2 {
        ids.iter().for_each(|&id| out(id));
        return;
    }
    let n = ids.len() as i32;
    let mut symbols: Vec<Symbol> = (0..n)
        .map(|i| Symbol {
            id: ids[i as usize],
            prev: i - 1,
            next: if i + 1 < n { i + 1 } else { -1 },
            alive: true,
        })
        .collect();
    let mut queue: BinaryHeap<Candidate> = ids
        .windows(2)
        .enumerate()
        .filter_map(|(pos, w)| {
            merges.get(w[0], w[1]).map(|(rank, new_id)| Candidate { pos: pos as u32, rank, new_id })
        })
        .collect();
    while let Some(top) = queue.pop() {
        let pos = top.pos as usize;
        if !symbols[pos].alive || symbols[pos].next < 0 {
            continue;
        }
        let next = symbols[pos].next as usize;
        let right = symbols[next];
        // An entry is stale when either side has since been merged into something else.
        if merges.get(symbols[pos].id, right.id).is_none_or(|(_, id)| id != top.new_id) {
            continue;
        }
        symbols[pos].id = top.new_id;
        symbols[pos].next = right.next;
        symbols[next].alive = false;
        if right.next >= 0 {
            symbols[right.next as usize].prev = pos as i32;
        }
        let current = symbols[pos];
        if current.prev >= 0 {
            let prev = current.prev as usize;
            if let Some((rank, new_id)) = merges.get(symbols[prev].id, current.id) {
                queue.push(Candidate { pos: prev as u32, rank, new_id });
            }
        }
        if current.next >= 0 {
            if let Some((rank, new_id)) = merges.get(current.id, symbols[current.next as usize].id) {
                queue.push(Candidate { pos: top.pos, rank, new_id });
            }
        }
    }
    symbols.iter().filter(|s| s.alive).for_each(|s| out(s.id));
}
