//! The one error type of the engine, so that callers (the CLI above all) can
//! turn every failure into a single line naming the problem.

use std::path::PathBuf;

/// Everything that can go wrong building, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shapes, thresholds or values that cannot form a valid network.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// Input data whose length does not fit the model.
    #[error("input has {got} bytes, which is not a whole number of {per_image}-pixel images")]
    InputLength {
        /// Bytes given.
        got: usize,
        /// The model's input length: bytes of one image.
        per_image: usize,
    },
    /// One image whose length is not the model's input length.
    #[error("an image of {got} bytes, where the model takes {per_image}")]
    ImageLength {
        /// Bytes of the image given.
        got: usize,
        /// The model's input length: bytes of one image.
        per_image: usize,
    },
    /// Raw feature rows that cannot be encoded, or an encoding that is not
    /// valid: the message names the row and column, or the feature.
    #[error("{0}")]
    Features(String),
    /// A kernel that does not exist or that this CPU cannot run.
    #[error("{0}")]
    Kernel(String),
    /// A thread pool that could not be built.
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads {
        /// Threads asked for (0 when rayon's default was asked for).
        threads: usize,
        /// The pool builder's own message.
        reason: String,
    },
    /// An operating-system error on a model file. The OS error is part of
    /// the message (and deliberately not a `source`, so that error chains
    /// print it once).
    #[error("{}: {error}", path.display())]
    Io {
        /// The model file being read or written.
        path: PathBuf,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// A model file that is not a valid `.bnn` file.
    #[error("{}: {problem}", path.display())]
    Format {
        /// The model file.
        path: PathBuf,
        /// What is wrong and where in the file, one line.
        problem: String,
    },
}

/// Short alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
