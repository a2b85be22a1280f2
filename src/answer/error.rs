use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnswerError {
    #[error("retrieval failed: {0}")]
    Retrieval(#[from] crate::retrieval::IndexError),
    #[error(transparent)]
    Model(#[from] crate::llm::LlmError),
    #[error("database: {0}")]
    Store(crate::store::StoreError),
}
