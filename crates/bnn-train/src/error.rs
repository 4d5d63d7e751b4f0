//! One error type for the trainer, so the CLI can print a single line that
//! names the file or the setting at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting that cannot work, found before any training starts.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Images and labels that do not fit together or the configuration.
    #[error("invalid data: {0}")]
    Data(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A checkpoint that is corrupt, truncated, or from another setup.
    #[error("{path}: {problem}")]
    Checkpoint { path: PathBuf, problem: String },
    /// Training diverged (a loss or parameter that is not finite).
    #[error("training diverged: {0}")]
    Diverged(String),
    #[error(transparent)]
    Model(#[from] bnn_core::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, TrainError>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
