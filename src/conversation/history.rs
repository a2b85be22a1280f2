//! A follow-up's prompt on a kept context: the first turn's prompt (instructions, the record,
//! its question) continued with the answers and questions since, then the new question. Every
//! token of the previous turn's prompt and answer stays where it was, so the local engine
//! prefills only the new turn. A chat model gets them as turns; a completion prompt gets more
//! `Question:` / `Answer:` lines, as its worked examples show.

use crate::llm::chat::{Message, Role};
use crate::llm::{Prompt, Segment};

/// One answered turn on a context: the question as the model read it (the first one is inside
/// the first prompt) and the answer as the model wrote it, tags and all.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub question: String,
    pub answer: String,
}

pub fn continued(first: &Prompt, exchanges: &[Exchange], question: &str) -> Prompt {
    match first {
        Prompt::Chat(messages) => {
            let mut m = messages.clone();
            for (i, ex) in exchanges.iter().enumerate() {
                if i > 0 {
                    m.push(Message::user(format!("Question: {}", ex.question)));
                }
                m.push(Message { role: Role::Assistant, content: ex.answer.clone() });
            }
            m.push(Message::user(format!("Question: {question}")));
            Prompt::Chat(m)
        }
        Prompt::Completion(parts) => {
            let mut p = parts.clone();
            let ask = |p: &mut Vec<Segment>, q: &str| {
                p.push(Segment::template("\nQuestion: "));
                p.push(Segment::untrusted(q));
                p.push(Segment::template("\nAnswer:"));
            };
            for (i, ex) in exchanges.iter().enumerate() {
                if i > 0 {
                    ask(&mut p, &ex.question);
                }
                // Answers are one line (the prompt's stop), as the model wrote them.
                p.push(Segment::untrusted(ex.answer.replace('\n', " ")));
            }
            ask(&mut p, question);
            Prompt::Completion(p)
        }
        // Answers are never raw prompts; nothing to continue.
        Prompt::Raw(_) => first.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(q: &str, a: &str) -> Exchange {
        Exchange { question: q.into(), answer: a.into() }
    }

    #[test]
    fn a_chat_continues_after_the_first_prompt() {
        let first = Prompt::Chat(vec![Message::system("rules"), Message::user("record\n\nQuestion: q1")]);
        let Prompt::Chat(m) = continued(&first, &[ex("q1", "a1 [3]"), ex("q2", "a2")], "q3") else {
            panic!()
        };
        let Prompt::Chat(f) = &first else { panic!() };
        assert_eq!(&m[..2], &f[..]);
        let rest: Vec<(Role, &str)> = m[2..].iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            rest,
            [
                (Role::Assistant, "a1 [3]"),
                (Role::User, "Question: q2"),
                (Role::Assistant, "a2"),
                (Role::User, "Question: q3")
            ]
        );
    }

    #[test]
    fn a_completion_gets_more_question_and_answer_lines() {
        let first = Prompt::Completion(vec![
            Segment::template("R:\n"),
            Segment::untrusted("record"),
            Segment::template("\nQuestion: "),
            Segment::untrusted("q1"),
            Segment::template("\nAnswer:"),
        ]);
        let p = continued(&first, &[ex("q1", " a1 [3].")], "q2");
        let Prompt::Completion(parts) = p else { panic!() };
        assert_eq!(
            crate::llm::segment::to_text(&parts),
            "R:\nrecord\nQuestion: q1\nAnswer: a1 [3].\nQuestion: q2\nAnswer:"
        );
    }
}
