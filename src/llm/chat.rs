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
    let mut out = String::from("<bos>");
    let mut system: Option<&str> = None;
    for m in messages {
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
                out.push_str(m.content.trim());
                out.push_str("<end_of_turn>\n");
            }
        }
    }
    out.push_str("<start_of_turn>model\n");
    out
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
}
