//! Long texts are counted in pieces, cut where no Gemma 3 token can span the cut, so that the
//! count stays exact while the tokenizer's working memory stays bounded.
//!
//! Why pieces: the tokenizer's pre-tokenizer (a split on " ") never applies, because the normaliser
//! has already turned spaces into "▁"; so a text without newlines reaches BPE as one word, and BPE
//! holds about 200 bytes per byte of its word (a 6 MB rendering took 1.15 GB to count).
//!
//! Why the cuts are exact: newline and tab runs are added tokens made of nothing else, matched
//! before BPE; and the only vocabulary token holding "▁" after a character other than "▁" is
//! `>▁</`. So a cut just before a space or a newline, after a character that is neither
//! whitespace, "▁" nor ">", splits no token: BPE's merges on one side never see the other, and
//! the pieces' tokens are the whole text's tokens. `tests/it/tokens.rs` checks these facts against
//! the vocabulary, and piecewise counts against whole-text counts.
//!
//! A stretch longer than a piece with no such cut in it (a base64 blob, say) is not tokenized at
//! all: it is counted as its length in bytes, which bounds its tokens from above (every token,
//! byte fallback included, covers at least one byte). A count is therefore exact for text, and
//! never under the truth otherwise, which is what the context assembler needs when it adds up
//! its lines' counts against a budget (`tokens::context_line`).

/// Texts up to this many bytes are tokenized whole; longer ones in pieces of at most this size.
/// BPE then holds some 13 MB at a time.
pub const PIECE_BYTES: usize = 64 * 1024;

/// A piece of a longer text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Begins and ends at exact cuts (or the text's ends): its tokens are the text's there.
    Text(&'a str),
    /// Longer than a piece, with no exact cut inside: count its bytes, an upper bound.
    Unbroken(&'a str),
}

/// `text` in pieces of at most `max` bytes, except `Unbroken` stretches, which are as long as
/// they need to be. Concatenated, the pieces are `text`.
pub fn pieces(text: &str, max: usize) -> Pieces<'_> {
    Pieces { rest: text, max: max.max(1) }
}

pub struct Pieces<'a> {
    rest: &'a str,
    max: usize,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = Piece<'a>;

    fn next(&mut self) -> Option<Piece<'a>> {
        let rest = self.rest;
        if rest.is_empty() {
            return None;
        }
        if rest.len() <= self.max {
            self.rest = "";
            return Some(Piece::Text(rest));
        }
        let (piece, tail) = match last_cut_within(rest, self.max) {
            Some(cut) => (Piece::Text(&rest[..cut]), &rest[cut..]),
            None => {
                let cut = first_cut_after(rest, self.max).unwrap_or(rest.len());
                (Piece::Unbroken(&rest[..cut]), &rest[cut..])
            }
        };
        self.rest = tail;
        Some(piece)
    }
}

/// The last exact cut at or before byte `max` (never at 0, so every piece is non-empty).
fn last_cut_within(text: &str, max: usize) -> Option<usize> {
    (1..=max.min(text.len() - 1)).rev().find(|&i| is_exact_cut(text, i))
}

/// The first exact cut after byte `max`.
fn first_cut_after(text: &str, max: usize) -> Option<usize> {
    (max + 1..text.len()).find(|&i| is_exact_cut(text, i))
}

/// Whether no token can span byte `i`: a space or newline there, after a character that no token
/// joins to it (see the module's documentation).
fn is_exact_cut(text: &str, i: usize) -> bool {
    // An ASCII byte is always a character boundary, so the slice below cannot panic.
    matches!(text.as_bytes()[i], b' ' | b'\n')
        && text[..i].chars().next_back().is_some_and(|c| !c.is_whitespace() && c != '▁' && c != '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(ps: &[Piece<'a>]) -> Vec<&'a str> {
        ps.iter()
            .map(|p| match p {
                Piece::Text(t) | Piece::Unbroken(t) => *t,
            })
            .collect()
    }

    #[test]
    fn short_texts_are_one_piece() {
        assert_eq!(pieces("", 8).collect::<Vec<_>>(), vec![]);
        assert_eq!(pieces("a b c", 8).collect::<Vec<_>>(), vec![Piece::Text("a b c")]);
    }

    #[test]
    fn long_texts_are_cut_before_the_last_space_or_newline_that_fits() {
        let ps: Vec<_> = pieces("one two three\nfour five", 9).collect();
        assert_eq!(texts(&ps), ["one two", " three", "\nfour", " five"]);
        assert!(ps.iter().all(|p| matches!(p, Piece::Text(t) if t.len() <= 9)));
        assert_eq!(texts(&ps).concat(), "one two three\nfour five");
    }

    #[test]
    fn cuts_never_split_whitespace_runs_nor_follow_a_closing_bracket() {
        // Cuts inside "  ", "\n\n" or after ">" could split a token ("▁▁", "\n\n", ">▁</").
        let ps: Vec<_> = pieces("ab  cd\n\nef> gh", 5).collect();
        assert_eq!(ps, vec![Piece::Text("ab"), Piece::Text("  cd"), Piece::Unbroken("\n\nef> gh")]);
    }

    #[test]
    fn stretches_without_a_cut_are_unbroken_and_cuts_respect_characters() {
        let text = format!("start {} end", "é".repeat(20));
        let ps: Vec<_> = pieces(&text, 10).collect();
        assert_eq!(ps, vec![Piece::Text("start"), Piece::Unbroken(&text[5..46]), Piece::Text(" end")]);
        let blob = "x".repeat(30);
        assert_eq!(pieces(&blob, 10).collect::<Vec<_>>(), vec![Piece::Unbroken(&blob)]);
    }
}
