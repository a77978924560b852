//! Why a job could not start (exit 2). Each kind keeps the error it came from as its source.

use crate::engine::model::ModelError;
use crate::engine::plan::PlanError;
use crate::engine::preprocess::FeedError;
use crate::engine::runtime::RuntimeError;
use crate::storage::StorageError;

/// A job refused before any scoring. Messages may quote URLs: show them through
/// [`crate::secrets::scrub`].
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The tokio runtime for I/O could not start.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// An input, output or model location does not parse or cannot be opened.
    #[error("{0}")]
    Location(#[from] StorageError),
    /// The output is taken or cannot be written, or the inputs cannot be listed or planned.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// The ONNX Runtime library cannot be found or loaded.
    #[error("{0}")]
    OnnxRuntime(#[from] RuntimeError),
    /// The model cannot be read, loaded or used.
    #[error("{0}")]
    Model(#[from] ModelError),
    /// The model does not fit the data.
    #[error("model {model}: {source}")]
    Feed {
        model: String,
        #[source]
        source: FeedError,
    },
    /// A setting contradicts the model or the data (the message names the setting).
    #[error("{0}")]
    Setting(String),
    /// A worker or session thread could not start.
    #[error("cannot start a {what} thread: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}
