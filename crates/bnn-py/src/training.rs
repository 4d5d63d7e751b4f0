//! `bnn.train`: the trainer of `bnn train`, from Python, with the GIL
//! released while it runs and a Python callable for progress.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use bnn_data::labelled::LabelledSet;
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

/// Trains a recipe on MNIST in `data`, on your data set at path `data`
/// (any source `bnn train --data` reads, recognised the same way), or on
/// the arrays `x` and `y` (with optional `x_test`/`y_test` and
/// `x_val`/`y_val`, or the paths `test` and `val`), and returns `(model,
/// metrics)`; `output`, when given, receives the model as a `.bnn` file.
/// `labels`, `label_column` and `channels_first` say what a path alone
/// cannot, as the command's flags of those names do.
/// Arrays are uint8 images `(N, H, W)`, `(N, H, W, C)` or features `(N,
/// D)` of uint8, float32 or float64 (floats through `encoding`, "u8" or
/// "thermometer[:K]", stored in the model), with integer labels;
/// `class_names` are stored too. Without a recipe, MNIST trains "seed" and
/// arrays the default `bnn train --data` picks for their shape. `epochs`
/// and `seed` override the recipe's. `progress(metrics)` is called after
/// every epoch with a dict of its numbers. The result depends only on the
/// recipe, the data and the seed.
#[pyfunction]
#[pyo3(signature = (recipe=None, data=None, output=None, epochs=None, seed=None, progress=None, *, x=None, y=None, x_test=None, y_test=None, x_val=None, y_val=None, class_names=None, encoding=None, val_split=None, test=None, val=None, labels=None, label_column=None, channels_first=false))]
#[allow(clippy::too_many_arguments)]
pub fn train<'py>(
    py: Python<'py>,
    recipe: Option<&str>,
    data: Option<PathBuf>,
    output: Option<PathBuf>,
    epochs: Option<usize>,
    seed: Option<u64>,
    progress: Option<Py<PyAny>>,
    x: Option<Bound<'py, PyAny>>,
    y: Option<Bound<'py, PyAny>>,
    x_test: Option<Bound<'py, PyAny>>,
    y_test: Option<Bound<'py, PyAny>>,
    x_val: Option<Bound<'py, PyAny>>,
    y_val: Option<Bound<'py, PyAny>>,
    class_names: Option<Vec<String>>,
    encoding: Option<&str>,
    val_split: Option<f64>,
    test: Option<PathBuf>,
    val: Option<PathBuf>,
    labels: Option<PathBuf>,
    label_column: Option<String>,
    channels_first: bool,
) -> PyResult<(PyModel, Bound<'py, PyDict>)> {
    let arrays =
        |x: Option<Bound<'py, PyAny>>, y: Option<Bound<'py, PyAny>>, what: &str| match (x, y) {
            (Some(x), Some(y)) => crate::arrays::labelled(&x, &y, what).map(Some),
            (None, None) => Ok(None),
            _ => Err(PyValueError::new_err(format!(
                "cannot train: give both or neither of the {what} arrays"
            ))),
        };
    let source = bnn_data::labelled::SourceOptions {
        labels,
        label_column,
        channels_first,
        ..Default::default()
    };
    let read = |path: &PathBuf| {
        py.detach(|| bnn_data::labelled::open(path, &source))
            .map_err(|e| data_error("cannot train", e))
    };
    // Paths and arrays each give a set; one of each is ambiguous.
    let pick =
        |arrays: Option<LabelledSet>, path: Option<&PathBuf>, what: &str| match (arrays, path) {
            (Some(_), Some(_)) => Err(PyValueError::new_err(format!(
                "cannot train: give the {what} as arrays or as a path, not both"
            ))),
            (Some(set), None) => Ok(Some(set)),
            (None, Some(path)) => read(path).map(Some),
            (None, None) => Ok(None),
        };
    if x.is_some() && data.is_some() {
        return Err(PyValueError::new_err(
            "cannot train: give the training set as arrays x and y or as a data path, not both",
        ));
    }
    let users = data
        .as_ref()
        .filter(|path| bnn_data::labelled::is_users(path));
    let train_set = pick(arrays(x, y, "training (x, y)")?, users, "training set")?;
    let test_set = pick(
        arrays(x_test, y_test, "test (x_test, y_test)")?,
        test.as_ref(),
        "test set",
    )?;
    let val_set = pick(
        arrays(x_val, y_val, "validation (x_val, y_val)")?,
        val.as_ref(),
        "validation set",
    )?;
    let Some(train_set) = train_set else {
        if test_set.is_some()
            || val_set.is_some()
            || class_names.is_some()
            || encoding.is_some()
            || val_split.is_some()
            || source != bnn_data::labelled::SourceOptions::default()
        {
            return Err(PyValueError::new_err(
                "cannot train: test, val, x_test, x_val, class_names, encoding, val_split, labels, label_column and channels_first go with your data (arrays x and y, or a data path that is not MNIST's)",
            ));
        }
        return train_mnist(
            py,
            recipe.unwrap_or("seed"),
            data.unwrap_or_else(|| PathBuf::from("data/mnist")),
            output,
            epochs,
            seed,
            progress,
        );
    };
    let encoding = encoding
        .map(|e| e.parse::<bnn_train::prepare::Encoding>())
        .transpose()
        .map_err(|e| PyValueError::new_err(format!("cannot train: encoding {e}")))?;
    let seed = seed.unwrap_or(bnn_train::recipe("seed").map_err(train_error)?.seed);
    let options = bnn_train::prepare::PrepareOptions {
        val_split,
        fixed_validation: false,
        encoding,
        class_names,
        seed,
    };
    let prepared = py
        .detach(|| bnn_train::prepare::prepare(train_set, test_set, val_set, &options))
        .map_err(train_error)?;
    let name = match recipe {
        Some(name) => name.to_string(),
        None => bnn_train::prepare::default_recipe(prepared.data.input_map())
            .0
            .to_string(),
    };
    let mut config = bnn_train::recipe(&name).map_err(train_error)?;
    bnn_train::prepare::fit_config(&mut config, &prepared, recipe.is_none());
    if let Some(epochs) = epochs {
        config.epochs = epochs;
    }
    config.seed = seed;
    let metadata = (prepared.class_names, prepared.encoding);
    run(
        py,
        &name,
        config,
        prepared.data,
        Some(metadata),
        output,
        progress,
    )
}

/// `train` on MNIST in `data`.
fn train_mnist<'py>(
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
    let mnist = py
        .detach(|| bnn_data::mnist::load(&data))
        .map_err(|e| data_error("cannot load MNIST", e))?;
    let dataset = Dataset::new(
        mnist.train_images.pixels,
        mnist
            .train_labels
            .labels
            .into_iter()
            .map(u16::from)
            .collect(),
        mnist.test_images.pixels,
        mnist
            .test_labels
            .labels
            .into_iter()
            .map(u16::from)
            .collect(),
    )
    .map_err(train_error)?;
    run(py, recipe, config, dataset, None, output, progress)
}

/// Names and the feature encoding a model made from the user's arrays
/// carries.
type Metadata = (Option<Vec<String>>, Option<bnn_core::FeatureEncoding>);

/// Trains `config` on `dataset`, with the GIL released.
fn run<'py>(
    py: Python<'py>,
    recipe: &str,
    config: bnn_train::TrainConfig,
    dataset: Dataset,
    metadata: Option<Metadata>,
    output: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<(PyModel, Bound<'py, PyDict>)> {
    config.validate().map_err(train_error)?;
    config
        .validate_for(dataset.train_len())
        .map_err(train_error)?;
    if config.kind == ModelKind::Fp32 {
        return Err(PyValueError::new_err(format!(
            "cannot train: recipe '{recipe}' trains a float32 network, which runs only \
             through the CLI (bnn train --recipe {recipe})"
        )));
    }
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
    let Trained::Binary(mut model) = outcome.model.clone() else {
        return Err(PyValueError::new_err(format!(
            "cannot train: recipe '{recipe}' gave a float32 network"
        )));
    };
    if let Some((names, encoding)) = metadata {
        if let Some(names) = names {
            *model = model
                .as_ref()
                .clone()
                .with_class_names(names)
                .map_err(|e| core_error("cannot train", e))?;
        }
        if let Some(encoding) = encoding {
            *model = model
                .as_ref()
                .clone()
                .with_feature_encoding(encoding)
                .map_err(|e| core_error("cannot train", e))?;
        }
    }
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
