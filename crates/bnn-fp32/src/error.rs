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
    InputLength {
        /// Bytes given.
        got: usize,
        /// Pixels (one byte each) of one image: the model's input length.
        per_image: usize,
    },
    /// A thread pool that could not be built.
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads {
        /// Threads asked for (0 when rayon's default was asked for).
        threads: usize,
        /// The pool builder's own message.
        reason: String,
    },
    /// An operating-system error on a model file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The model file being read or written.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A file that is not a valid FP32 model file.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The model file.
        path: PathBuf,
        /// What is wrong and where in the file, one line.
        problem: String,
    },
}
