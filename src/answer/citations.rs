//! Citation checking and grounding. The model's tags are parsed and mapped to references; a tag
//! outside the context is dropped from the text and reported. Then each sentence is grounded
//! (`grounding`): a cited record that holds nothing the sentence states is dropped, a value no
//! cited record holds gets the record of the context that holds it, and a sentence stating a
//! value that no record holds is taken out and reported as ungrounded. The answer's tags are
//! renumbered to index its citations.

use super::citation_grammar;
use super::grounding::{Evidence, Ungrounded, Verdict};
use super::tags::Tagged;

/// An answer with checked citations.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The answer, its tags renumbered `[1]..` in the order of `cited`.
    pub text: String,
    /// Cited references, in order of first citation, each once.
    pub cited: Vec<String>,
    /// Citations as the model wrote them that the context did not hold, and cited records that
    /// hold nothing their sentence states.
    pub invalid: Vec<String>,
    /// Sentences taken out because a value they state is in no record they could cite.
    pub ungrounded: Vec<Ungrounded>,
}

/// One piece of a sentence: text, or a citation group (its references).
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Cite(Vec<String>),
}

/// Checks a model's answer: citations mapped and every sentence grounded.
pub fn check(answer: &str, tagged: &Tagged, evidence: &Evidence) -> Checked {
    check_with(answer, tagged, Some(evidence))
}

/// Checks an answer stated from the computed facts: citations mapped and renumbered. Its
/// values were taken from the records it cites (`answer::computed`), and the period it names
/// comes from the question, so it is not read for grounding.
pub fn check_computed(answer: &str, tagged: &Tagged) -> Checked {
    check_with(answer, tagged, None)
}

fn check_with(answer: &str, tagged: &Tagged, evidence: Option<&Evidence>) -> Checked {
    let mut out =
        Checked { text: String::new(), cited: Vec::new(), invalid: Vec::new(), ungrounded: Vec::new() };
    let mut kept: Vec<Vec<Piece>> = Vec::new();
    for sentence in sentences(answer.trim()) {
        let mut pieces = parse(sentence, tagged, &mut out.invalid);
        let plain = plain_text(&pieces);
        let cited = cited_refs(&pieces);
        let verdict = match evidence {
            Some(e) => e.judge(&plain, &cited),
            None => Verdict::Keep { drop: Vec::new(), add: Vec::new() },
        };
        match verdict {
            Verdict::Keep { drop, add } => {
                remove_refs(&mut pieces, &drop);
                out.invalid.extend(drop);
                if !add.is_empty() {
                    append_cite(&mut pieces, add);
                }
                kept.push(pieces);
            }
            Verdict::Remove { values } => {
                out.ungrounded.push(Ungrounded { sentence: tidy(&plain), values });
            }
        }
    }
    for pieces in kept {
        out.text.push_str(&render(&pieces, &mut out.cited));
    }
    out.text = tidy(&out.text);
    out
}

/// The sentence's text and citation groups (resolved; unknown ones reported in `invalid`).
fn parse(sentence: &str, tagged: &Tagged, invalid: &mut Vec<String>) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut from = 0;
    for g in citation_grammar::groups(sentence) {
        pieces.push(Piece::Text(sentence[from..g.start].to_owned()));
        let mut refs = Vec::new();
        for item in g.items {
            match tagged.resolve(item) {
                Some(r) => refs.push(r.to_owned()),
                None => invalid.push(item.to_owned()),
            }
        }
        pieces.push(Piece::Cite(refs));
        from = g.end;
    }
    pieces.push(Piece::Text(sentence[from..].to_owned()));
    pieces
}

fn plain_text(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Cite(_) => " ",
        })
        .collect()
}

fn cited_refs(pieces: &[Piece]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in pieces {
        if let Piece::Cite(rs) = p {
            for r in rs {
                if !out.contains(r) {
                    out.push(r.clone());
                }
            }
        }
    }
    out
}

fn remove_refs(pieces: &mut [Piece], drop: &[String]) {
    for p in pieces {
        if let Piece::Cite(rs) = p {
            rs.retain(|r| !drop.contains(r));
        }
    }
}

/// Adds a citation group at the end of the sentence, before its closing punctuation.
fn append_cite(pieces: &mut Vec<Piece>, refs: Vec<String>) {
    let Some(Piece::Text(last)) = pieces.pop() else { return };
    let body = last.trim_end();
    let trailing = last[body.len()..].to_owned();
    let (stem, stop) = match body.strip_suffix(['.', '!', '?']) {
        Some(stem) => (stem.trim_end().to_owned(), body[stem.len()..].to_owned()),
        None => (body.to_owned(), String::new()),
    };
    pieces.push(Piece::Text(format!("{stem} ")));
    pieces.push(Piece::Cite(refs));
    pieces.push(Piece::Text(format!("{stop}{trailing}")));
}

/// The sentence with its citations as `[n]` tags indexing `cited` (extended as needed).
fn render(pieces: &[Piece], cited: &mut Vec<String>) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => s.push_str(t),
            Piece::Cite(rs) => {
                for r in rs {
                    s.push_str(&format!("[{}]", index_of(cited, r)));
                }
            }
        }
    }
    s
}

fn index_of(cited: &mut Vec<String>, rref: &str) -> usize {
    match cited.iter().position(|c| c == rref) {
        Some(i) => i + 1,
        None => {
            cited.push(rref.to_owned());
            cited.len()
        }
    }
}

/// Sentences with their trailing whitespace: split after `.`, `!` or `?` followed by whitespace,
/// and at newlines.
pub(super) fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let next = chars.get(k + 1).map(|&(_, n)| n);
        let ends = c == '\n' || (matches!(c, '.' | '!' | '?') && next.is_none_or(char::is_whitespace));
        if ends {
            let mut end = i + c.len_utf8();
            while let Some(&(j, w)) = chars.iter().find(|&&(j, _)| j == end) {
                if !w.is_whitespace() {
                    break;
                }
                end = j + w.len_utf8();
            }
            if end > start {
                out.push(&text[start..end]);
                start = end;
            }
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Spaces left where dropped citations were.
fn tidy(text: &str) -> String {
    let mut s = text.trim().to_owned();
    for (from, to) in [("  ", " "), (" .", "."), (" ,", ",")] {
        while s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s
}
