//! One error type for the trainer, so the CLI can print a single line that
//! names the file or the setting at fault.

use std::path::PathBuf;

/// Everything that can stop a training run or its export.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting that cannot work, found before any training starts.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Images and labels that do not fit together or the configuration.
    #[error("invalid data: {0}")]
    Data(String),
    /// An operating-system error on a file the run reads or writes.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A checkpoint that is corrupt, truncated, or from another setup.
    #[error("{path}: {problem}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it, one line.
        problem: String,
    },
    /// Training diverged (a loss or parameter that is not finite).
    #[error("training diverged: {0}")]
    Diverged(String),
    /// The engine refused the trained model (building or saving it).
    #[error(transparent)]
    Model(#[from] bnn_core::Error),
    /// Anything else, already a whole one-line message (e.g. the FP32
    /// engine's or export's errors).
    #[error("{0}")]
    Other(String),
}

/// The trainer's result type.
pub type Result<T> = std::result::Result<T, TrainError>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}
