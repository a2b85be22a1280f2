//! Short citation tags. The context names resources in full (`[Observation/9e64...]`, a dozen
//! tokens each); the prompt numbers them instead (`[4]`), so the model spends its window on
//! evidence and cites with a token or two. Numbers follow the order of first appearance.

use std::collections::HashMap;

use crate::retrieval::Context;

/// The context as the model sees it, and what each tag stands for.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub text: String,
    /// `refs[n - 1]` is the reference tag `[n]` stands for.
    refs: Vec<String>,
    by_ref: HashMap<String, usize>,
}

impl Tagged {
    /// Rewrites every full reference of `ctx` into a short tag. Bracketed numbers already in the
    /// record text (a note's "[2]") become parenthesised, so no tag can be forged by record text.
    pub fn new(ctx: &Context) -> Self {
        let mut t =
            Self { text: String::with_capacity(ctx.text.len()), refs: Vec::new(), by_ref: HashMap::new() };
        let known = ctx.refs();
        let mut rest = ctx.text.as_str();
        while let Some(open) = rest.find('[') {
            t.text.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let inner = after.find(']').map(|close| &after[..close]);
            match inner {
                Some(r) if known.contains(r) => {
                    let n = t.tag(r);
                    t.text.push_str(&format!("[{n}]"));
                    rest = &after[r.len() + 1..];
                }
                Some(r) if is_tag_like(r) => {
                    t.text.push_str(&format!("({r})"));
                    rest = &after[r.len() + 1..];
                }
                _ => {
                    t.text.push('[');
                    rest = after;
                }
            }
        }
        t.text.push_str(rest);
        t
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

/// Text a model could take for a citation: digits, or digits separated by commas.
fn is_tag_like(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_digit() || c == ',' || c == ' ')
        && s.chars().any(|c| c.is_ascii_digit())
}
