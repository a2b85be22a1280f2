//! Errors of the retrieval layer.

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("search index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot open the search index in {path}: {source}")]
    Open { path: std::path::PathBuf, source: tantivy::directory::error::OpenDirectoryError },
    #[error("cannot create the search index directory {path}: {source}")]
    Create { path: std::path::PathBuf, source: std::io::Error },
    #[error("the search index is in use by another ehrqa process (its writer lock is held)")]
    Locked,
}
