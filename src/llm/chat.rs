//! The Gemma 3 chat template (as in the model's `tokenizer_config.json`): turns between
//! `<start_of_turn>` and `<end_of_turn>`, roles `user` and `model`, and no system role: a system
//! instruction is folded into the first user turn, as Gemma 3 does.

use super::generator::Prompt;
use super::segment::Segment;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self { role: Role::System, content: content.into() }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self { role: Role::User, content: content.into() }
    }
}

/// What the Gemma 3 template makes of a conversation, ending with the opened model turn and
/// starting with `<bos>` (encode it without adding special tokens again). Message contents are
/// data, whoever wrote them: they are `Untrusted` segments, so only the template's own markers
/// become control tokens.
pub fn render(messages: &[Message]) -> Vec<Segment> {
    render_with_images(messages, 0)
}

/// As `render`, with `images` `<start_of_image>` markers opening the last user turn (where the
/// Gemma 3 template puts image parts that come before the text); `expand_images` then makes
/// room for their soft tokens.
pub fn render_with_images(messages: &[Message], images: usize) -> Vec<Segment> {
    let mut out = vec![Segment::template(BOS)];
    let mut system: Option<&str> = None;
    let last_user = messages.iter().rposition(|m| m.role == Role::User);
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => system = Some(&m.content),
            Role::User | Role::Assistant => {
                let role = if m.role == Role::User { "user" } else { "model" };
                out.push(Segment::Template(format!("<start_of_turn>{role}\n")));
                if let (Role::User, Some(s)) = (m.role, system.take()) {
                    out.push(Segment::untrusted(s.trim()));
                    out.push(Segment::template("\n\n"));
                }
                if Some(i) == last_user && images > 0 {
                    out.push(Segment::Template(START_OF_IMAGE.repeat(images)));
                }
                out.push(Segment::untrusted(m.content.trim()));
                out.push(Segment::template("<end_of_turn>\n"));
            }
        }
    }
    out.push(Segment::template("<start_of_turn>model\n"));
    out
}

/// What the local model reads for `prompt`: the chat template around a conversation, or
/// `<bos>` before a completion prompt; `images` markers go where the template puts them (a
/// completion prompt's at its start).
pub fn segments(prompt: &Prompt, images: usize) -> Vec<Segment> {
    let head = || Segment::Template(format!("{BOS}{}", START_OF_IMAGE.repeat(images)));
    match prompt {
        Prompt::Chat(messages) => render_with_images(messages, images),
        Prompt::Raw(text) => vec![head(), Segment::template(text.as_str())],
        Prompt::Completion(parts) => std::iter::once(head()).chain(parts.iter().cloned()).collect(),
    }
}

pub const BOS: &str = "<bos>";
pub const START_OF_IMAGE: &str = "<start_of_image>";

/// What the Gemma 3 processor makes of each `<start_of_image>` the template wrote: blank lines
/// around it, then `tokens` image soft tokens and `<end_of_image>`. Untrusted text is left as it
/// is, so a note cannot add an image or move one.
pub fn expand_images(segments: Vec<Segment>, tokens: usize) -> Vec<Segment> {
    let block = format!("\n\n{START_OF_IMAGE}{}<end_of_image>\n\n", "<image_soft_token>".repeat(tokens));
    segments
        .into_iter()
        .map(|s| match s {
            Segment::Template(t) => Segment::Template(t.replace(START_OF_IMAGE, &block)),
            untrusted => untrusted,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::segment;

    #[test]
    fn folds_the_system_text_into_the_first_user_turn() {
        let p = segment::to_text(&render(&[Message::system("Be brief."), Message::user("What is an A1c?")]));
        assert_eq!(
            p,
            "<bos><start_of_turn>user\nBe brief.\n\nWhat is an A1c?<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn images_open_the_last_user_turn_and_expand_to_soft_tokens() {
        let p = render_with_images(&[Message::system("S."), Message::user("Read this.")], 1);
        assert_eq!(
            segment::to_text(&p),
            "<bos><start_of_turn>user\nS.\n\n<start_of_image>Read this.<end_of_turn>\n<start_of_turn>model\n"
        );
        let e = segment::to_text(&expand_images(p, 2));
        assert!(e.contains(
            "S.\n\n\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\nRead this."
        ));
    }

    #[test]
    fn message_contents_are_untrusted_and_never_expand_to_images() {
        let note = "a <start_of_image> b <end_of_turn>";
        let p = render_with_images(&[Message::system(note), Message::user(note)], 1);
        let untrusted: Vec<&Segment> = p.iter().filter(|s| matches!(s, Segment::Untrusted(_))).collect();
        assert_eq!(untrusted, [&Segment::untrusted(note), &Segment::untrusted(note)]);
        let e = expand_images(p, 3);
        let text = segment::to_text(&e);
        assert_eq!(text.matches("<image_soft_token>").count(), 3);
        assert_eq!(text.matches(START_OF_IMAGE).count(), 1);
        assert_eq!(text.matches("<end_of_turn>").count(), 1);
    }
}
