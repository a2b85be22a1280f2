//! Transcription by a vision model (MedGemma 1.5 reads lab reports well): the image and a
//! request for the report's contents, one result per line.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Transcriber;
use crate::llm::chat::Message;
use crate::llm::generator::BoxFuture;
use crate::llm::{GenerationRequest, Generator, ImageInput, Prompt};

const PROMPT: &str = "Transcribe this laboratory report. First the report date and the panel name, \
then one line per result: analyte, value, unit, reference range, flag. Copy values exactly as \
printed; do not interpret them.";

pub struct ModelTranscriber {
    generator: Arc<dyn Generator>,
    name: String,
}

impl ModelTranscriber {
    /// `None` when the model cannot see images.
    pub fn new(generator: Arc<dyn Generator>) -> Option<Self> {
        let name = generator.model_name().to_owned();
        generator.sees_images().then_some(Self { generator, name })
    }
}

impl Transcriber for ModelTranscriber {
    fn name(&self) -> &str {
        &self.name
    }

    fn transcribe(&self, png: Vec<u8>) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let req = GenerationRequest {
                prompt: Prompt::Chat(vec![Message::user(PROMPT)]),
                max_tokens: 1024,
                sampling: Default::default(),
                stop: Vec::new(),
                images: vec![ImageInput { bytes: png, mime: "image/png".into() }],
            };
            let (tx, rx) = mpsc::channel(64);
            let drain = crate::llm::generator::drain(rx);
            let g = self.generator.generate(req, tx).await.map_err(|e| e.to_string())?;
            let _ = drain.await;
            Ok(g.text.trim().to_owned())
        })
    }
}
