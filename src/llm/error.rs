//! Errors of the model layer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("cannot read {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("model config: {0}")]
    Config(String),
    #[error("model weights: {0}")]
    Weights(String),
    #[error("tensor computation: {0}")]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Tokenizer(#[from] super::tokenizer::TokenizerError),
    #[error("the local model thread has stopped")]
    ModelThread,
    #[error("remote model server: {0}")]
    Remote(String),
    #[error("image: {0}")]
    Image(String),
    /// The service runs without a model (`serve --no-model`) and the question needs one.
    #[error("no model is loaded: this question needs one (questions answered from the record's computed facts do not)")]
    NotLoaded,
}
