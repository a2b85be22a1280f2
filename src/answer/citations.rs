//! Citation checking. The model's tags are parsed, mapped to references, and kept only if the
//! context held them: a tag outside the context is dropped from the text and reported. A
//! sentence that states a value without citing gets the one evidence line holding that value
//! verbatim, when exactly one does. The answer's tags are renumbered to index its citations.

use super::citation_grammar;
use super::tags::Tagged;

/// An answer with checked citations.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The answer, its tags renumbered `[1]..` in the order of `cited`.
    pub text: String,
    /// Cited references, in order of first citation, each once.
    pub cited: Vec<String>,
    /// Citations as the model wrote them that the context did not hold.
    pub invalid: Vec<String>,
}

pub fn check(answer: &str, tagged: &Tagged) -> Checked {
    let mut out = Checked { text: String::new(), cited: Vec::new(), invalid: Vec::new() };
    for sentence in sentences(answer.trim()) {
        let (text, n) = rewrite(sentence, tagged, &mut out);
        let text = if n == 0 { attach(&text, tagged, &mut out) } else { text };
        out.text.push_str(&text);
    }
    out.text = tidy(&out.text);
    out
}

/// Rewrites the citation groups of one sentence (`citation_grammar`, the grammar record text
/// was neutralised with); returns it and how many valid citations it has.
fn rewrite(sentence: &str, tagged: &Tagged, out: &mut Checked) -> (String, usize) {
    let mut text = String::with_capacity(sentence.len());
    let mut valid = 0;
    let mut from = 0;
    for g in citation_grammar::groups(sentence) {
        text.push_str(&sentence[from..g.start]);
        for item in g.items {
            match tagged.resolve(item) {
                Some(r) => {
                    text.push_str(&format!("[{}]", index_of(&mut out.cited, r)));
                    valid += 1;
                }
                None => out.invalid.push(item.to_owned()),
            }
        }
        from = g.end;
    }
    text.push_str(&sentence[from..]);
    (text, valid)
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

/// Cites, for each value of an uncited sentence, the single evidence line stating it.
fn attach(sentence: &str, tagged: &Tagged, out: &mut Checked) -> String {
    let mut tags = Vec::new();
    for value in values(sentence) {
        let mut sources: Vec<&str> = Vec::new();
        for line in tagged.text.lines() {
            for at in occurrences(line, value) {
                if let Some(r) = tag_for(line, at).and_then(|t| tagged.resolve(t)) {
                    if !sources.contains(&r) {
                        sources.push(r);
                    }
                }
            }
        }
        if let [only] = sources.as_slice() {
            let n = index_of(&mut out.cited, only);
            if !tags.contains(&n) {
                tags.push(n);
            }
        }
    }
    if tags.is_empty() {
        return sentence.to_owned();
    }
    let cite: String = tags.iter().map(|n| format!("[{n}]")).collect();
    let body = sentence.trim_end();
    let trailing = &sentence[body.len()..];
    match body.strip_suffix(['.', '!', '?']) {
        Some(stem) => format!("{stem} {cite}{}{trailing}", &body[stem.len()..]),
        None => format!("{body} {cite}{trailing}"),
    }
}

/// The tag a value at byte `at` of an evidence line belongs to: the first tag after it in the
/// line (facts put the tag after the value they state), else the line's leading tag.
fn tag_for(line: &str, at: usize) -> Option<&str> {
    fn first_tag(s: &str) -> Option<&str> {
        citation_grammar::groups(s).iter().find_map(|g| g.single_number())
    }
    first_tag(&line[at..]).or_else(|| first_tag(line))
}

/// Values a sentence states: numbers (`6.2`, `140/90`) and dates (`2019-03-02`).
fn values(sentence: &str) -> Vec<&str> {
    let bytes = sentence.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit() && (i == 0 || !is_word_byte(bytes[i - 1]));
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len()
            && (bytes[j].is_ascii_digit()
                || (matches!(bytes[j], b'.' | b'/' | b'-')
                    && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)))
        {
            j += 1;
        }
        let word_follows = bytes.get(j).is_some_and(|b| b.is_ascii_alphabetic());
        if !word_follows {
            out.push(&sentence[i..j]);
        }
        i = j.max(i + 1);
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'[' || b == b'/' || b == b'-'
}

/// Where `value` occurs in `line` as a whole value (not inside a longer number or a tag).
fn occurrences(line: &str, value: &str) -> Vec<usize> {
    let bytes = line.as_bytes();
    line.match_indices(value)
        .map(|(at, _)| at)
        .filter(|&at| {
            let before_ok = at == 0 || !is_word_byte(bytes[at - 1]);
            let end = at + value.len();
            let after_ok = match bytes.get(end) {
                None => true,
                Some(b) if b.is_ascii_digit() || *b == b']' => false,
                Some(b'.' | b'/' | b'-') => !bytes.get(end + 1).is_some_and(u8::is_ascii_digit),
                Some(_) => true,
            };
            before_ok && after_ok
        })
        .collect()
}

/// Sentences with their trailing whitespace: split after `.`, `!` or `?` followed by whitespace,
/// and at newlines.
fn sentences(text: &str) -> Vec<&str> {
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
