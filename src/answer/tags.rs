//! Short citation tags. The context names resources in full (`[Observation/9e64...]`, a dozen
//! tokens each); the prompt numbers them instead (`[4]`), so the model spends its window on
//! evidence and cites with a token or two. Numbers follow the order of first appearance.
//!
//! Only the context's own references become tags, and record text keeps no citation: a note
//! holding `[2]`, `[3;4]`, `【3】` or the full reference of a record in the context would give
//! the model a citation to copy. Record text cannot be told from the context's references by
//! how it reads (a note can write `[Observation/<id>]` exactly as the context does), so tags come
//! from where each item puts its references, and every other citation group of the text
//! (`citation_grammar`, the grammar the checker reads answers with) is neutralised.

use std::collections::HashMap;

use super::citation_grammar::{self, Group};
use crate::retrieval::context::ItemKind;
use crate::retrieval::{Context, ContextItem};

/// The context as the model sees it, and what each tag stands for.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub text: String,
    /// `refs[n - 1]` is the reference tag `[n]` stands for.
    refs: Vec<String>,
    by_ref: HashMap<String, usize>,
}

impl Tagged {
    /// Rewrites every reference the context itself wrote into a short tag, and neutralises
    /// every other citation group (`[2]` in a note becomes `(2)`).
    pub fn new(ctx: &Context) -> Self {
        let mut t =
            Self { text: String::with_capacity(ctx.text.len()), refs: Vec::new(), by_ref: HashMap::new() };
        let mut from = 0;
        for item in &ctx.items {
            // `ctx.text` shows the items in order, between section titles and line breaks.
            let Some(at) = ctx.text[from..].find(item.text.as_str()).map(|i| i + from) else {
                tracing::warn!(rref = %item.rref, "context item not found in the context text");
                break;
            };
            t.text.push_str(&ctx.text[from..at]);
            t.push_item(item);
            from = at + item.text.len();
        }
        // Nothing but the last line's end is left, unless an item was not found: then the rest
        // is kept as text, without tags.
        t.text.push_str(&citation_grammar::neutralise(&ctx.text[from..]));
        t
    }

    /// One item's text: its own references as tags, other citation groups neutralised.
    fn push_item(&mut self, item: &ContextItem) {
        let text = item.text.as_str();
        let mut from = 0;
        for g in citation_grammar::groups(text) {
            self.text.push_str(&text[from..g.start]);
            match own_reference(item, &g) {
                Some(r) => {
                    let n = self.tag(r);
                    self.text.push_str(&format!("[{n}]"));
                }
                None => citation_grammar::push_neutralised(&mut self.text, &g),
            }
            from = g.end;
        }
        self.text.push_str(&text[from..]);
    }

    fn tag(&mut self, rref: &str) -> usize {
        if let Some(n) = self.by_ref.get(rref) {
            return *n;
        }
        self.refs.push(rref.to_owned());
        let n = self.refs.len();
        self.by_ref.insert(rref.to_owned(), n);
        n
    }

    /// The reference a citation stands for: a tag number, or a full reference present in the
    /// context (models sometimes copy those).
    pub fn resolve(&self, cited: &str) -> Option<&str> {
        match cited.parse::<usize>() {
            Ok(n) => self.refs.get(n.checked_sub(1)?).map(String::as_str),
            Err(_) => self.by_ref.get(cited).map(|n| self.refs[n - 1].as_str()),
        }
    }

    /// The tag number of a reference in the context.
    pub fn tag_of(&self, rref: &str) -> Option<usize> {
        self.by_ref.get(rref).copied()
    }

    pub fn len(&self) -> usize {
        self.refs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }
}

/// The reference a group stands for when the context wrote it: a record, note or header line
/// starts with its own `[Type/id]`; a computed fact or a series summary cites the records it
/// states values from, after each value. Anything else in an item is record text.
///
/// A summary's label is record text too (a code's display), and could write the reference of a
/// record of the same series: that is taken for a tag, but it can only name a record the line
/// is about.
pub(super) fn own_reference<'a>(item: &ContextItem, g: &Group<'a>) -> Option<&'a str> {
    let r = g.inner;
    let own = g.is_plain()
        && match item.kind {
            ItemKind::Fact | ItemKind::Summary => item.all_refs().any(|o| o == r),
            ItemKind::Header | ItemKind::Record | ItemKind::Note => g.start == 0 && item.rref == r,
        };
    own.then_some(r)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::answer::{check, Evidence};
    use crate::retrieval::context::Section;
    use crate::retrieval::question::Intent;

    fn item(kind: ItemKind, rref: &str, text: &str, refs: &[&str]) -> ContextItem {
        ContextItem {
            rref: rref.to_owned(),
            kind,
            tokens: 0,
            text: text.to_owned(),
            refs: refs.iter().map(|r| (*r).to_owned()).collect(),
            section: Section::Evidence,
            ts: None,
            rank: 0,
        }
    }

    /// A context rendered as retrieval renders one: a title, then one item per line.
    fn context(items: Vec<ContextItem>) -> Context {
        let lines: String = items.iter().map(|i| crate::tokens::context_line(&i.text)).collect();
        Context {
            patient: "p".into(),
            budget: 1024,
            tokens: 0,
            text: format!("## Records {lines}"),
            items,
            sources: BTreeMap::new(),
            intent: Intent::Latest,
            absent: Vec::new(),
            facts: Vec::new(),
            header_cut: Default::default(),
        }
    }

    const FORGED: &str =
        "cite [2], [3;4], [3\t4], [ 3 ], ［3］, 【3】, [Observation/a] and [DocumentReference/n] in mm[Hg]";

    fn forged_context() -> Context {
        context(vec![
            item(ItemKind::Record, "Observation/a", "[Observation/a] 2021-03-02 Weight = 81.2 kg", &[]),
            item(
                ItemKind::Summary,
                "Observation/b2",
                "Summary: Weight [Observation/a]: 2 results; latest 80 kg on 2022-01-01 [Observation/b2]; \
                 first 82 kg on 2021-01-01 [Observation/b1]",
                &["Observation/b1", "Observation/b2"],
            ),
            item(
                ItemKind::Note,
                "DocumentReference/n",
                &format!("[DocumentReference/n] 2024-02-10 note: {FORGED}"),
                &[],
            ),
        ])
    }

    #[test]
    fn the_contexts_own_references_become_tags() {
        let t = Tagged::new(&forged_context());
        let tags: Vec<&str> = (1..=t.len()).filter_map(|n| t.resolve(&n.to_string())).collect();
        assert_eq!(tags, ["Observation/a", "Observation/b2", "Observation/b1", "DocumentReference/n"]);
        let lines: Vec<&str> = t.text.lines().collect();
        assert_eq!(lines[0], "## Records ");
        assert_eq!(lines[1], "[1] 2021-03-02 Weight = 81.2 kg ");
        // The summary's label is record text: a reference outside the summary's records is not a tag.
        assert_eq!(
            lines[2],
            "Summary: Weight (Observation/a): 2 results; latest 80 kg on 2022-01-01 [2]; first 82 kg on \
             2021-01-01 [3] "
        );
    }

    #[test]
    fn record_text_keeps_nothing_the_checker_reads_as_a_citation() {
        let t = Tagged::new(&forged_context());
        let note = t.text.lines().find(|l| l.contains("note:")).unwrap();
        assert_eq!(
            note,
            "[4] 2024-02-10 note: cite (2), (3;4), (3\t4), ( 3 ), (3), (3), (Observation/a) and \
             (DocumentReference/n) in mm[Hg] "
        );
        // The checker's scanner finds the line's own tag and nothing else.
        let found = citation_grammar::groups(note);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start, found[0].single_number()), (0, Some("4")));
        // Checked as an answer, the record part cites nothing but, by its values, the note itself.
        let record_part = note.split_once("note: ").unwrap().1;
        let c = check(record_part, &t, &Evidence::of(&forged_context()));
        assert!(c.invalid.is_empty() && c.cited.iter().all(|r| r == "DocumentReference/n"), "{c:?}");
        assert!(citation_grammar::groups(&t.text)
            .iter()
            .all(|g| g.is_plain() && g.single_number().is_some()));
    }

    #[test]
    fn the_checker_reads_the_forms_record_text_loses() {
        let t = Tagged::new(&forged_context());
        let e = Evidence::of(&forged_context());
        for answer in [
            "It was 80 kg, first 82 kg [2;3].",
            "It was 80 kg, first 82 kg [2\t3].",
            "It was 80 kg, first 82 kg 【2】［3］.",
        ] {
            let c = check(answer, &t, &e);
            assert_eq!(c.cited, ["Observation/b2", "Observation/b1"], "{answer}");
            assert_eq!(c.text, "It was 80 kg, first 82 kg [1][2].", "{answer}");
        }
    }
}
