//! Models: the Gemma 3 tokenizer, Gemma 3 / MedGemma in candle, chat templates, generation.

pub mod absent;
pub mod chat;
mod error;
pub mod gemma3;
pub mod generator;
pub mod local;
pub mod pieces;
pub mod remote;
pub mod sampling;
pub mod segment;
pub mod stop;
pub mod tokenizer;

pub use error::LlmError;
pub use generator::{Finish, Generation, GenerationRequest, Generator, ImageInput, Prompt};
pub use local::LocalGenerator;
pub use remote::{RemoteConfig, RemoteGenerator};
pub use segment::Segment;
pub use tokenizer::{Tokenizer, TokenizerError};
