//! The generator of a service started without a model (`serve --no-model`).
//!
//! Answers computed from the record's facts, and answers that retrieval already shows the
//! record cannot give, need no model; only a question that goes to the model fails, with
//! `LlmError::NotLoaded`. Without it, such a service refused every question, the computed ones
//! included.

use tokio::sync::mpsc;

use super::generator::BoxFuture;
use super::{Generation, GenerationRequest, Generator, LlmError};

/// The name answers report when no model took part.
pub const NO_MODEL: &str = "none";

/// A generator that has no model to run.
pub struct NoModel;

impl Generator for NoModel {
    fn model_name(&self) -> &str {
        NO_MODEL
    }

    fn instruction_tuned(&self) -> bool {
        false
    }

    fn sees_images(&self) -> bool {
        false
    }

    fn generate(
        &self,
        _req: GenerationRequest,
        _sink: mpsc::Sender<String>,
    ) -> BoxFuture<'_, Result<Generation, LlmError>> {
        Box::pin(async { Err(LlmError::NotLoaded) })
    }
}
