//! `bnn.from_onnx`: a model from an ONNX file of a binary network. The
//! matching and folding are `bnn-onnx`'s, the same as `bnn import`'s.

use std::ffi::CString;
use std::path::PathBuf;

use pyo3::exceptions::{PyUserWarning, PyValueError};
use pyo3::prelude::*;

use crate::errors::os_error;
use crate::model::PyModel;

/// Imports an ONNX model (a binary MLP or CNN: see docs/IMPORT.md).
/// Where the model may differ from the ONNX graph (a pre-activation that
/// can be exactly 0 under `Sign`), a `UserWarning` says so.
#[pyfunction]
pub fn from_onnx(py: Python<'_>, path: PathBuf) -> PyResult<PyModel> {
    let meta =
        std::fs::metadata(&path).map_err(|e| os_error(&e, &path, "cannot import ONNX model"))?;
    let imported = py
        .detach(|| bnn_onnx::import_file(&path))
        .map_err(|e| PyValueError::new_err(format!("cannot import {}: {e}", path.display())))?;
    for warning in &imported.warnings {
        let text = CString::new(warning.replace('\0', " ")).expect("no NUL left");
        PyErr::warn(py, &py.get_type::<PyUserWarning>(), &text, 1)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = meta.is_file().then_some(meta.len());
    let description = imported.description(&name, size, "bnn.from_onnx");
    Ok(PyModel {
        model: imported.model,
        description,
        source: None,
    })
}
