//! Answers: a question about one patient -> the context (retrieval) -> either the computed
//! facts stated directly (computed questions) or a prompt with short citation tags -> the model
//! -> an answer whose every citation is checked and every value grounded in the records it
//! cites, or a plain statement that the record does not contain the answer.

mod abstain;
mod age;
pub mod citation_grammar;
mod citations;
mod computed;
mod error;
mod grounding;
mod images;
mod phrasing;
mod pipeline;
mod prompt;
mod response;
mod tags;
pub mod values;

pub use citations::{check, Checked};
pub use error::AnswerError;
pub use grounding::{Evidence, Ungrounded};
pub use images::{attach_images, IMAGE_TOKENS};
pub use pipeline::{answer, prepare, AskOptions, Prepared, UNCITED};
pub use prompt::{PromptStyle, NOT_IN_RECORD};
pub use response::{Answer, Citation, Method, Timings, Usage, COMPUTED_NOTICE, NOTICE};
pub use tags::Tagged;
