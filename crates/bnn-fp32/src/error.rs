//! The crate's one error type: every failure is a single line, and every
//! failure about a file starts with the file's path.

use std::path::PathBuf;

/// Everything that can go wrong building, loading, saving or running an FP32
/// model.
#[derive(Debug, thiserror::Error)]
pub enum Fp32Error {
    /// Shapes or values that cannot form a valid network.
    #[error("invalid FP32 model: {0}")]
    InvalidModel(String),
    /// Input data whose length does not fit the model.
    #[error("input has {got} bytes, which is not a whole number of {per_image}-pixel images")]
    InputLength { got: usize, per_image: usize },
    /// A thread pool that could not be built.
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads { threads: usize, reason: String },
    /// An operating-system error on a model file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a valid FP32 model file.
    #[error("{}: {problem}", path.display())]
    Format { path: PathBuf, problem: String },
}
