//! Phrasing a computed answer: a chat model may reword the facts' own sentence into a reply,
//! but the reply is used only if it states exactly the values and citations of that sentence
//! (nothing lost, nothing added); otherwise the sentence itself is the answer. Base models
//! are not asked: the sentence is already the answer's form.

use std::collections::BTreeSet;

use super::citation_grammar;
use super::pipeline::Prepared;
use super::values;
use crate::llm::chat::Message;
use crate::llm::sampling::Sampling;
use crate::llm::{GenerationRequest, Prompt};

const INSTRUCTIONS: &str = "Rewrite the answer below as a short, plain reply to the question, in one \
or two sentences. Keep every number, unit, date and bracketed tag such as [1] exactly as written. Add \
no other facts and no advice.";

/// The request that asks the model to phrase `text` (tags `[n]`), for chat prompts only.
pub fn request(prep: &Prepared, text: &str) -> Option<GenerationRequest> {
    if !matches!(prep.built.prompt, Prompt::Chat(_)) {
        return None;
    }
    let user = format!("Question: {}\nAnswer: {text}", prep.question);
    Some(GenerationRequest {
        prompt: Prompt::Chat(vec![Message::system(INSTRUCTIONS.to_owned()), Message::user(user)]),
        max_tokens: prep.max_tokens.min(128),
        sampling: Sampling::default(),
        stop: Vec::new(),
        images: Vec::new(),
    })
}

/// Whether `phrased` states the same values and the same tags as `stated`.
pub fn keeps(stated: &str, phrased: &str) -> bool {
    let phrased = phrased.trim();
    if phrased.is_empty() || phrased.len() > 3 * stated.len() + 80 {
        return false;
    }
    let said = |t: &str| {
        let mut v: Vec<String> = values::read(t).iter().map(values::Stated::text).collect();
        v.sort();
        v
    };
    let tags = |t: &str| -> BTreeSet<String> {
        citation_grammar::groups(t).iter().flat_map(|g| g.items.iter().map(|i| (*i).to_owned())).collect()
    };
    said(stated) == said(phrased) && tags(stated) == tags(phrased)
}

#[cfg(test)]
mod tests {
    use super::keeps;

    #[test]
    fn keeps_only_faithful_phrasings() {
        let s = "6.2 % on 1984-07-17 [1], the most recent Hemoglobin A1c result.";
        assert!(keeps(s, "His most recent hemoglobin A1c was 6.2 % on 1984-07-17 [1]."));
        assert!(keeps(s, "His latest A1c was 6.2 % on July 17, 1984 [1]."));
        assert!(!keeps(s, "His latest A1c was 6.4 % on 1984-07-17 [1]."));
        assert!(!keeps(s, "His latest A1c was 6.2 % on 1984-07-17."));
        assert!(!keeps(s, "His latest A1c was 6.2 % on 1984-07-17 [1], up from 5.9 %."));
    }
}
