//! The `bnn` Python module: the engine behind NumPy arrays.
//!
//! Everything here converts between Python and the engine's public API;
//! the network, its file format, the folding of biases and batch norms
//! into thresholds and training stay in the engine's crates, so a model
//! kind added there (convolutions) loads and runs from Python unchanged.

use std::path::PathBuf;

use numpy::{PyArray1, PyArray3};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod arrays;
mod build;
mod errors;
mod images;
mod model;
mod onnx;
mod training;

use errors::{core_error, data_error};
use model::PyModel;

/// Loads a `.bnn` model file.
#[pyfunction]
fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyModel> {
    let file = py
        .detach(|| bnn_core::format::load(&path))
        .map_err(|e| core_error("cannot load model", e))?;
    Ok(PyModel {
        model: file.model,
        description: file.description,
        source: Some((path, file.file_bytes)),
    })
}

/// The kernels this CPU runs, best first; the first is the default.
#[pyfunction]
fn kernels() -> Vec<&'static str> {
    bnn_core::kernel::available()
        .into_iter()
        .map(|k| k.name())
        .collect()
}

/// MNIST's `split` ("train" or "test") from the IDX files in `dir` (raw or
/// .gz): `(images, labels)`, uint8 arrays of shape (N, 28, 28) and (N,).
#[pyfunction]
#[pyo3(signature = (dir="data/mnist".into(), split="test"))]
#[allow(clippy::type_complexity)]
fn mnist<'py>(
    py: Python<'py>,
    dir: PathBuf,
    split: &str,
) -> PyResult<(Bound<'py, PyArray3<u8>>, Bound<'py, PyArray1<u8>>)> {
    let load = match split {
        "train" => bnn_data::mnist::load_train,
        "test" => bnn_data::mnist::load_test,
        other => {
            return Err(PyValueError::new_err(format!(
                "split '{other}' is not one of 'train', 'test'"
            )))
        }
    };
    let (images, labels) = py
        .detach(|| load(&dir))
        .map_err(|e| data_error("cannot load MNIST", e))?;
    let shape = (images.count, images.rows, images.cols);
    let images = numpy::ndarray::Array3::from_shape_vec(shape, images.pixels)
        .map_err(|e| PyValueError::new_err(format!("MNIST images: {e}")))?;
    Ok((
        numpy::IntoPyArray::into_pyarray(images, py),
        PyArray1::from_vec(py, labels.labels),
    ))
}

#[pymodule]
fn _bnn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(kernels, m)?)?;
    m.add_function(wrap_pyfunction!(mnist, m)?)?;
    m.add_function(wrap_pyfunction!(build::from_numpy, m)?)?;
    m.add_function(wrap_pyfunction!(onnx::from_onnx, m)?)?;
    m.add_function(wrap_pyfunction!(training::train, m)?)?;
    m.add_function(wrap_pyfunction!(images::reads_in_place, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
