//! Engine errors as Python exceptions. The message is the CLI's one line;
//! the exception class is what a Python caller catches: `OSError` (with
//! `errno` and `filename`, so `FileNotFoundError` and friends match) for the
//! operating system's refusals, `ValueError` for files and values that are
//! wrong, `RuntimeError` for a thread pool that cannot start.

use std::path::Path;

use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// An `OSError` whose class follows `errno` (`FileNotFoundError` for
/// ENOENT, ...), with `filename` set to `path` and the text `context:
/// error`; Python prints the file after the text, so the text leaves it out.
pub fn os_error(error: &std::io::Error, path: &Path, context: &str) -> PyErr {
    let text = one_line(format!("{context}: {error}"));
    let filename = path.to_string_lossy().into_owned();
    match error.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, text, filename)),
        None => PyOSError::new_err(format!("{text}: {filename}")),
    }
}

/// The exception for an engine error, with `context` leading the message
/// as the CLI's does (`cannot load model: ...`).
pub fn core_error(context: &str, e: bnn_core::Error) -> PyErr {
    match &e {
        bnn_core::Error::Io { path, error } => os_error(error, path, context),
        bnn_core::Error::Threads { .. } => PyRuntimeError::new_err(with_context(context, &e)),
        _ => PyValueError::new_err(with_context(context, &e)),
    }
}

/// The exception for a data-file error (MNIST, `.npy`).
pub fn data_error(context: &str, e: bnn_data::DataError) -> PyErr {
    match &e {
        bnn_data::DataError::Io { path, op, source } => {
            os_error(source, path, &format!("{context}: {op}"))
        }
        bnn_data::DataError::DiskFull { path, op, source } => os_error(
            source,
            path,
            &format!("{context}: disk full while {op}; free some space and retry"),
        ),
        bnn_data::DataError::NotFound { .. } => {
            PyFileNotFoundError::new_err(with_context(context, &e))
        }
        _ => PyValueError::new_err(with_context(context, &e)),
    }
}

/// The exception for a training error.
pub fn train_error(e: bnn_train::TrainError) -> PyErr {
    match e {
        bnn_train::TrainError::Model(e) => core_error("cannot train", e),
        bnn_train::TrainError::Io {
            ref path,
            ref source,
        } => os_error(source, path, "cannot train"),
        other => PyValueError::new_err(with_context("cannot train", &other)),
    }
}

/// `context: error`, on one line whatever the error holds.
fn with_context(context: &str, e: &dyn std::fmt::Display) -> String {
    one_line(format!("{context}: {e}"))
}

fn one_line(text: String) -> String {
    if text.contains(['\n', '\r']) {
        text.replace(['\n', '\r'], " ")
    } else {
        text
    }
}
