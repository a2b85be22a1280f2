//! Answers: a question about one patient -> the context (retrieval) -> a prompt with short
//! citation tags -> the model -> an answer whose every citation is checked against the context,
//! or a plain statement that the record does not contain the answer.

mod abstain;
pub mod citation_grammar;
mod citations;
mod error;
mod images;
mod pipeline;
mod prompt;
mod response;
mod tags;

pub use citations::{check, Checked};
pub use error::AnswerError;
pub use images::{attach_images, IMAGE_TOKENS};
pub use pipeline::{answer, prepare, AskOptions, Prepared};
pub use prompt::{PromptStyle, NOT_IN_RECORD};
pub use response::{Answer, Citation, Timings, Usage, NOTICE};
pub use tags::Tagged;
