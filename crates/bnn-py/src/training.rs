//! `bnn.train`: the trainer of `bnn train`, from Python, with the GIL
//! released while it runs and a Python callable for progress.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use bnn_train::metrics::EpochMetrics;
use bnn_train::progress::RunInfo;
use bnn_train::{Dataset, ModelKind, Progress, TrainOptions, Trained};

use crate::errors::{core_error, data_error, train_error};
use crate::model::PyModel;

/// Calls the user's callable after each epoch, taking the GIL for the call
/// only. The first exception it raises is kept, later epochs skip the call,
/// and `train` raises it once training returns.
struct Callback {
    callable: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

fn epoch_dict<'py>(py: Python<'py>, m: &EpochMetrics) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", m.epoch)?;
    d.set_item("lr", m.lr)?;
    d.set_item("loss", m.loss)?;
    d.set_item("train_accuracy", m.train_accuracy)?;
    d.set_item("val_accuracy", m.val_accuracy)?;
    d.set_item("seconds", m.seconds)?;
    Ok(d)
}

impl Progress for Callback {
    fn start(&mut self, _: &RunInfo) {}
    fn batch(&mut self, _: usize, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, metrics: &EpochMetrics) {
        let (Some(callable), None) = (&self.callable, &self.error) else {
            return;
        };
        let called = Python::attach(|py| {
            callable.call1(py, (epoch_dict(py, metrics)?,))?;
            Ok::<_, PyErr>(())
        });
        if let Err(e) = called {
            self.error = Some(e);
        }
    }
    fn finish(&mut self, _: &str) {}
}

/// Trains a recipe ("seed", "bn", "deep", "bn-u8", "deep-u8") on MNIST in
/// `data` and returns `(model, metrics)`; `output`, when given, receives
/// the model as a `.bnn` file. `epochs` and `seed` override the recipe's.
/// `progress(metrics)` is called after every epoch with a dict of its
/// numbers. The result depends only on the recipe, the data and the seed.
#[pyfunction]
#[pyo3(signature = (recipe="seed", data=PathBuf::from("data/mnist"), output=None, epochs=None, seed=None, progress=None))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    recipe: &str,
    data: PathBuf,
    output: Option<PathBuf>,
    epochs: Option<usize>,
    seed: Option<u64>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(PyModel, Bound<'py, PyDict>)> {
    let mut config = bnn_train::recipe(recipe).map_err(train_error)?;
    if let Some(epochs) = epochs {
        config.epochs = epochs;
    }
    if let Some(seed) = seed {
        config.seed = seed;
    }
    config.validate().map_err(train_error)?;
    if config.kind == ModelKind::Fp32 {
        return Err(PyValueError::new_err(format!(
            "cannot train: recipe '{recipe}' trains a float32 network, which runs only \
             through the CLI (bnn train --recipe {recipe})"
        )));
    }
    let mnist = py
        .detach(|| bnn_data::mnist::load(&data))
        .map_err(|e| data_error("cannot load MNIST", e))?;
    let dataset = Dataset::new(
        mnist.train_images.pixels,
        mnist.train_labels.labels.into_iter().map(u16::from).collect(),
        mnist.test_images.pixels,
        mnist.test_labels.labels.into_iter().map(u16::from).collect(),
    )
    .map_err(train_error)?;
    let mut callback = Callback {
        callable: progress,
        error: None,
    };
    let outcome =
        py.detach(|| bnn_train::train(&config, &dataset, &mut callback, &TrainOptions::default()));
    if let Some(e) = callback.error {
        return Err(e);
    }
    let outcome = outcome.map_err(train_error)?;
    let Trained::Binary(model) = outcome.model.clone() else {
        return Err(PyValueError::new_err(format!(
            "cannot train: recipe '{recipe}' gave a float32 network"
        )));
    };
    let description = outcome.description();
    let source = match output {
        Some(path) => {
            py.detach(|| bnn_core::format::save(&model, &description, &path))
                .map_err(|e| core_error("cannot save model", e))?;
            let bytes = bnn_core::format::to_bytes(&model, &description).len() as u64;
            Some((path, bytes))
        }
        None => None,
    };
    let metrics = PyDict::new(py);
    metrics.set_item("best_epoch", outcome.best_epoch)?;
    metrics.set_item("val_accuracy", outcome.val_accuracy)?;
    metrics.set_item("test_accuracy", outcome.test_accuracy)?;
    metrics.set_item("seconds", outcome.seconds)?;
    let history = outcome
        .history
        .iter()
        .map(|m| epoch_dict(py, m))
        .collect::<PyResult<Vec<_>>>()?;
    metrics.set_item("history", history)?;
    Ok((
        PyModel {
            model: *model,
            description,
            source,
        },
        metrics,
    ))
}
