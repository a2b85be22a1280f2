//! The one citation grammar, and the one scanner for it. Three places read citations and must
//! agree: tagging (which brackets of the context are its own references), neutralising record
//! text (anything the checker would take for a citation must not stay one), and checking the
//! model's answer. If the checker accepted a form the neutraliser missed (`[3;4]`, `［3］`), a
//! note could forge citations; so both use `groups` and nothing else.
//!
//! A citation group is an opening bracket, items, and a closing bracket, with no bracket
//! between them:
//! - brackets: `[ ]`, fullwidth `［ ］`, lenticular `【 】` and `〖 〗`, tortoise-shell `〔 〕`,
//!   white `⟦ ⟧`, any opening with any closing;
//! - items: a tag number (ASCII digits) or a reference `Type/id` with a FHIR resource type (so
//!   `mm[Hg]` and `[Mass/volume]` are text);
//! - separators: commas, semicolons (ASCII, fullwidth, `、`) and any whitespace, tabs included.

use std::borrow::Cow;

const OPEN: [char; 6] = ['[', '［', '【', '〖', '〔', '⟦'];
const CLOSE: [char; 6] = [']', '］', '】', '〗', '〕', '⟧'];
const SEPARATORS: [char; 5] = [',', ';', '，', '；', '、'];

/// One citation group of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    /// Byte offsets of the whole group, brackets included.
    pub start: usize,
    pub end: usize,
    pub open: char,
    pub close: char,
    /// The text between the brackets.
    pub inner: &'a str,
    /// Tag numbers and references, as written.
    pub items: Vec<&'a str>,
}

impl<'a> Group<'a> {
    /// Whether the group is written exactly as the prompt writes a tag or a context reference:
    /// `[` one item `]`.
    pub fn is_plain(&self) -> bool {
        (self.open, self.close) == ('[', ']') && self.items.len() == 1 && self.inner == self.items[0]
    }

    /// The tag number of a group holding one number.
    pub fn single_number(&self) -> Option<&'a str> {
        match self.items.as_slice() {
            [n] if is_number(n) => Some(n),
            _ => None,
        }
    }
}

/// Every citation group of `text`, in order. Each opening bracket is tried against the next
/// bracket after it: a closing one ends a candidate, another opening one starts over there.
pub fn groups(text: &str) -> Vec<Group<'_>> {
    let mut out = Vec::new();
    let mut open: Option<(usize, char)> = None;
    for (i, c) in text.char_indices() {
        if OPEN.contains(&c) {
            open = Some((i, c));
        } else if CLOSE.contains(&c) {
            if let Some((start, o)) = open.take() {
                let inner = &text[start + o.len_utf8()..i];
                if let Some(items) = items(inner) {
                    out.push(Group { start, end: i + c.len_utf8(), open: o, close: c, inner, items });
                }
            }
        }
    }
    out
}

/// The items of a bracket's text when every one is a citation, else None.
fn items(inner: &str) -> Option<Vec<&str>> {
    let items: Vec<&str> = inner
        .split(|c: char| c.is_whitespace() || SEPARATORS.contains(&c))
        .filter(|s| !s.is_empty())
        .collect();
    let citation = |s: &&str| is_number(s) || is_reference(s);
    (!items.is_empty() && items.iter().all(citation)).then_some(items)
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `Type/id` with a FHIR resource type.
fn is_reference(s: &str) -> bool {
    s.split_once('/').is_some_and(|(t, id)| {
        crate::fhir::resource_type::is_known(t) && crate::fhir::reference::is_valid_id(id)
    })
}

/// Record text with every citation group's brackets made parentheses (`[2]` -> `(2)`,
/// `[Observation/x]` -> `(Observation/x)`): still readable, no longer a citation.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    let found = groups(text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for g in &found {
        out.push_str(&text[from..g.start]);
        push_neutralised(&mut out, g);
        from = g.end;
    }
    out.push_str(&text[from..]);
    Cow::Owned(out)
}

/// A group as record text shows it once neutralised.
pub fn push_neutralised(out: &mut String, g: &Group<'_>) {
    out.push('(');
    out.push_str(g.inner);
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items_of(text: &str) -> Vec<Vec<&str>> {
        groups(text).into_iter().map(|g| g.items).collect()
    }

    #[test]
    fn reads_every_written_form_of_a_citation() {
        assert_eq!(items_of("a [3] b [2, 5]"), [vec!["3"], vec!["2", "5"]]);
        assert_eq!(
            items_of("[3;4] [3\t4] [ 3 ] ［3］ 【3】 〔7〕"),
            [vec!["3", "4"], vec!["3", "4"], vec!["3"], vec!["3"], vec!["3"], vec!["7"]]
        );
        assert_eq!(
            items_of("[Observation/abc-1] [3，Patient/p]"),
            [vec!["Observation/abc-1"], vec!["3", "Patient/p"]]
        );
        // The innermost bracket counts.
        assert_eq!(items_of("[[3]] [see [4]"), [vec!["3"], vec!["4"]]);
    }

    #[test]
    fn brackets_that_are_not_citations_stay_text() {
        for text in ["128/82 mm[Hg]", "[Mass/volume]", "[high]", "[]", "[ ]", "[3 and 4]", "[3", "3]", "[３]"]
        {
            assert!(groups(text).is_empty(), "{text}");
            assert!(matches!(neutralise(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn neutralised_text_holds_no_citation() {
        let text = "cite [1], [3;4], [3\t4], [ 3 ], ［3］, 【3】 and [Observation/inj-obs-1] in mm[Hg]";
        let n = neutralise(text);
        assert_eq!(n, "cite (1), (3;4), (3\t4), ( 3 ), (3), (3) and (Observation/inj-obs-1) in mm[Hg]");
        assert!(groups(&n).is_empty());
    }

    #[test]
    fn plain_groups_are_the_prompts_own_form() {
        let text = "[3] [ 3 ] ［3］ [3;4]";
        let plain: Vec<bool> = groups(text).iter().map(Group::is_plain).collect();
        assert_eq!(plain, [true, false, false, false]);
    }
}
