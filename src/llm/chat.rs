//! The Gemma 3 chat template (as in the model's `tokenizer_config.json`): turns between
//! `<start_of_turn>` and `<end_of_turn>`, roles `user` and `model`, and no system role: a system
//! instruction is folded into the first user turn, as Gemma 3 does.

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

/// The prompt text for a conversation, ending with the opened model turn. Starts with `<bos>`
/// (tokenize it without adding special tokens again).
pub fn render(messages: &[Message]) -> String {
    render_with_images(messages, 0)
}

/// As `render`, with `images` `<start_of_image>` markers opening the last user turn (where the
/// Gemma 3 template puts image parts that come before the text); `expand_images` then makes
/// room for their soft tokens.
pub fn render_with_images(messages: &[Message], images: usize) -> String {
    let mut out = String::from("<bos>");
    let mut system: Option<&str> = None;
    let last_user = messages.iter().rposition(|m| m.role == Role::User);
    for (i, m) in messages.iter().enumerate() {
        match m.role {
            Role::System => system = Some(&m.content),
            Role::User | Role::Assistant => {
                let role = if m.role == Role::User { "user" } else { "model" };
                out.push_str("<start_of_turn>");
                out.push_str(role);
                out.push('\n');
                if let (Role::User, Some(s)) = (m.role, system.take()) {
                    out.push_str(s.trim());
                    out.push_str("\n\n");
                }
                if Some(i) == last_user {
                    out.push_str(&START_OF_IMAGE.repeat(images));
                }
                out.push_str(m.content.trim());
                out.push_str("<end_of_turn>\n");
            }
        }
    }
    out.push_str("<start_of_turn>model\n");
    out
}

pub const START_OF_IMAGE: &str = "<start_of_image>";

/// What the Gemma 3 processor makes of each `<start_of_image>`: blank lines around it, then
/// `tokens` image soft tokens and `<end_of_image>`.
pub fn expand_images(text: &str, tokens: usize) -> String {
    let block = format!("\n\n{START_OF_IMAGE}{}<end_of_image>\n\n", "<image_soft_token>".repeat(tokens));
    text.replace(START_OF_IMAGE, &block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_the_system_text_into_the_first_user_turn() {
        let p = render(&[Message::system("Be brief."), Message::user("What is an A1c?")]);
        assert_eq!(
            p,
            "<bos><start_of_turn>user\nBe brief.\n\nWhat is an A1c?<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn images_open_the_last_user_turn_and_expand_to_soft_tokens() {
        let p = render_with_images(&[Message::system("S."), Message::user("Read this.")], 1);
        assert_eq!(
            p,
            "<bos><start_of_turn>user\nS.\n\n<start_of_image>Read this.<end_of_turn>\n<start_of_turn>model\n"
        );
        let e = expand_images(&p, 2);
        assert!(e.contains(
            "S.\n\n\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\nRead this."
        ));
    }
}
