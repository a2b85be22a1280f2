//! Models: the tokenizer now; chat templates, the `Generator` trait and Gemma 3 in candle next.

pub mod tokenizer;

pub use tokenizer::{Tokenizer, TokenizerError};
