//! The one error type of the exporter. Every message is a single line that
//! names the file, directory or option at fault, because the reader is
//! usually someone at a command line deciding what to change.

use std::io;
use std::path::PathBuf;

/// Everything that can stop an export.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A `--name` that cannot serve as a C and Verilog identifier prefix.
    #[error("invalid export name '{name}': {problem}")]
    Name {
        /// The prefix as given.
        name: String,
        /// Which rule it breaks.
        problem: String,
    },
    /// An export format or option value that does not exist.
    #[error("{0}")]
    Option(String),
    /// A model this exporter cannot express (outside the limits it states).
    #[error("cannot export this model: {0}")]
    Unsupported(String),
    /// The output directory is in a state the export will not overwrite.
    #[error("{}: {problem}", path.display())]
    Target {
        /// The output directory.
        path: PathBuf,
        /// Why it is left alone, and what to do instead.
        problem: String,
    },
    /// An output path that the rules every `bnn` output follows refuse: its
    /// parent directory is missing, or replacing it would delete an input.
    #[error("{0}")]
    Path(bnn_io::target::PathProblem),
    /// An operating-system error while writing the export. The OS error is
    /// part of the message rather than a `source`, so that printing the
    /// error chain does not repeat it.
    #[error("{}: {op}: {error}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What the export was doing, e.g. "reading the directory".
        op: &'static str,
        /// The operating system's error.
        error: io::Error,
    },
    /// The engine refused the test images (wrong length).
    #[error("test images: {0}")]
    Engine(#[from] bnn_core::Error),
}

impl ExportError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, error: io::Error) -> Self {
        ExportError::Io {
            path: path.into(),
            op,
            error,
        }
    }
}

/// Short alias used across the crate.
pub type Result<T, E = ExportError> = std::result::Result<T, E>;
