//! `bnn.Model`: a loaded network and the calls that run it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use numpy::ndarray::Array2;
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use bnn_core::{
    DecisionRule, FeatureEncoding, InputEncoding, Kernel, Model, Predictions, RunOptions, Threads,
};

use crate::errors::core_error;
use crate::images::with_pixels;

/// Most worker threads accepted, as the CLI's `--threads`: a typo such as
/// `100000` fails at once instead of starting threads until the system
/// stalls.
const MAX_THREADS: usize = 1024;

/// A binary neural network, ready to classify uint8 images.
///
/// Load one with `bnn.load(path)`, build one with `bnn.from_numpy(...)`, or
/// train one with `bnn.train(...)`. A model is immutable and may be shared
/// by many threads: `predict` and `scores` release the GIL while they run.
#[pyclass(module = "bnn", frozen, name = "Model")]
pub struct PyModel {
    pub model: Model,
    pub description: String,
    /// The file the model came from, and its size.
    pub source: Option<(PathBuf, u64)>,
}

/// This process's pool of `threads` workers, built on its first call and
/// kept for every later one: building a pool per call costs as much as
/// classifying a few thousand images. The handles live here, one per count
/// asked for, since `threads=` is chosen call by call.
fn threads(threads: usize) -> PyResult<Threads> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Threads>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = Threads::new(threads).map_err(|e| {
        PyRuntimeError::new_err(format!("cannot start {threads} worker threads: {e}"))
    })?;
    pools.insert(threads, pool.clone());
    Ok(pool)
}

impl PyModel {
    /// The kernel and the pool a call runs on, checked.
    fn options(
        &self,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<(RunOptions, Threads)> {
        let pool = match threads {
            Some(n) => match usize::try_from(n) {
                Ok(n) if (1..=MAX_THREADS).contains(&n) => self::threads(n)?,
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "threads={n} is out of range: give 1 to {MAX_THREADS}"
                    )))
                }
            },
            None => Threads::global(),
        };
        let kernel = match kernel {
            Some(name) => Some(
                Kernel::parse(name).map_err(|e| PyValueError::new_err(format!("kernel: {e}")))?,
            ),
            None => None,
        };
        Ok((
            RunOptions {
                kernel,
                threads: None,
            },
            pool,
        ))
    }

    /// Runs the batch in `images` without the GIL.
    fn run(
        &self,
        py: Python<'_>,
        images: &Bound<'_, PyAny>,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<Predictions> {
        let (options, pool) = self.options(threads, kernel)?;
        let model = &self.model;
        if let Some(x) = float_rows(images, model)? {
            // Raw features: the stored encoding makes the u8 inputs, then
            // the batch runs as any other.
            let pixels = model
                .encode_features(&x)
                .map_err(|e| core_error("cannot encode features", e))?;
            return py
                .detach(|| pool.install(|| model.predict_batch_with(&pixels, options)))
                .map_err(|e| core_error("cannot classify", e));
        }
        let parts = with_pixels(images, model, |pixels, _count| {
            py.detach(|| pool.install(|| model.predict_batch_with(pixels, options)))
                .map_err(|e| core_error("cannot classify", e))
        })?;
        let mut parts = parts.into_iter();
        let mut all = parts.next().expect("with_pixels runs at least one chunk");
        for p in parts {
            all.classes.extend(p.classes);
            all.scores.extend(p.scores);
        }
        Ok(all)
    }
}

/// The rows of a float32 or float64 array of shape (N, D), as f32, for a
/// model with a feature encoding of D features; `None` for any other
/// dtype (uint8 images go their own way). A float array for a model
/// without an encoding, or of another shape, is a `ValueError`/`TypeError`
/// saying what the model takes.
fn float_rows(images: &Bound<'_, PyAny>, model: &Model) -> PyResult<Option<Vec<f32>>> {
    let Ok(untyped) = images.cast::<PyUntypedArray>() else {
        return Ok(None);
    };
    let x: Vec<f32> = if let Ok(a) = images.cast::<PyArrayDyn<f32>>() {
        let view = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("features cannot be read: {e}")))?;
        view.as_array().iter().copied().collect()
    } else if let Ok(a) = images.cast::<PyArrayDyn<f64>>() {
        let view = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("features cannot be read: {e}")))?;
        // Features are f32 wherever they are encoded (the C export too).
        view.as_array().iter().map(|&v| v as f32).collect()
    } else {
        return Ok(None);
    };
    let dtype = untyped.dtype().str()?;
    let Some(encoding) = model.feature_encoding() else {
        return Err(PyTypeError::new_err(format!(
            "images of dtype {dtype} need a model with a stored feature encoding; \
             this model takes uint8 images"
        )));
    };
    let d = encoding.features();
    match untyped.shape() {
        [_, cols] if *cols == d => Ok(Some(x)),
        shape => Err(PyValueError::new_err(format!(
            "features of shape {shape:?} do not fit the model's encoding: expected (N, {d})"
        ))),
    }
}

fn classes_array(py: Python<'_>, classes: Vec<usize>) -> Bound<'_, PyArray1<i64>> {
    // Class indices are below the output width, itself far below i64::MAX.
    let classes: Vec<i64> = classes.into_iter().map(|c| c as i64).collect();
    PyArray1::from_vec(py, classes)
}

/// `scores` (row-major, `rows × classes`) as an array, without a copy.
fn scores_array(
    py: Python<'_>,
    rows: usize,
    classes: usize,
    scores: Vec<f32>,
) -> PyResult<Bound<'_, PyArray2<f32>>> {
    let scores = Array2::from_shape_vec((rows, classes), scores)
        .map_err(|e| PyValueError::new_err(format!("scores: {e}")))?;
    Ok(scores.into_pyarray(py))
}

impl PyModel {
    /// A new model from this one, with its description and no file.
    fn derived(&self, model: Model) -> PyModel {
        PyModel {
            model,
            description: self.description.clone(),
            source: None,
        }
    }
}

#[pymethods]
impl PyModel {
    /// The class of every image, as an int64 array of length N.
    ///
    /// `images` is a uint8 array of shape (N, inputs) or (N, H, W[, C]).
    /// `threads` (1 to 1024) runs the batch on a pool of that many threads
    /// (default: all cores, or RAYON_NUM_THREADS); `kernel` is "scalar",
    /// "avx2", "avx512" or "neon" (default: BNN_KERNEL, else the best this
    /// CPU has).
    #[pyo3(signature = (images, threads=None, kernel=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let p = self.run(py, images, threads, kernel)?;
        Ok(classes_array(py, p.classes))
    }

    /// The output scores of every image, as a float32 array of shape
    /// (N, classes). Arguments as for `predict`.
    #[pyo3(signature = (images, threads=None, kernel=None))]
    fn scores<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let p = self.run(py, images, threads, kernel)?;
        scores_array(py, p.classes.len(), p.num_classes, p.scores)
    }

    /// Classes and scores from one pass: `(predict(images), scores(images))`
    /// at the cost of one.
    #[pyo3(signature = (images, threads=None, kernel=None))]
    #[allow(clippy::type_complexity)]
    fn classify<'py>(
        &self,
        py: Python<'py>,
        images: &Bound<'py, PyAny>,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<(Bound<'py, PyArray1<i64>>, Bound<'py, PyArray2<f32>>)> {
        let p = self.run(py, images, threads, kernel)?;
        let rows = p.classes.len();
        let scores = scores_array(py, rows, p.num_classes, p.scores)?;
        Ok((classes_array(py, p.classes), scores))
    }

    /// What the model is and what it costs: shape, decision rule, input
    /// encoding and shape, bytes on disk and in memory, compression against
    /// the same network in float32.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.model;
        let d = PyDict::new(py);
        d.set_item("shape", m.shape())?;
        d.set_item("layers", m.layer_count())?;
        d.set_item("classes", m.num_classes())?;
        d.set_item("rule", m.rule().name())?;
        match m.input_encoding() {
            InputEncoding::Binary { threshold } => {
                d.set_item("input", "binary")?;
                d.set_item("input_threshold", threshold)?;
            }
            InputEncoding::U8 => {
                d.set_item("input", "u8")?;
                d.set_item("input_threshold", py.None())?;
            }
        }
        let s = m.input_shape();
        d.set_item("input_shape", (s.height, s.width, s.channels))?;
        let params = parameters(m);
        let file_bytes = match &self.source {
            Some((_, bytes)) => *bytes,
            None => bnn_core::format::to_bytes(m, &self.description).len() as u64,
        };
        let fp32_bytes = params as u64 * 4;
        d.set_item("weight_bits", m.weight_bits())?;
        d.set_item("file_bytes", file_bytes)?;
        d.set_item("memory_bytes", m.memory_bytes())?;
        d.set_item("fp32_bytes", fp32_bytes)?;
        d.set_item("compression", fp32_bytes as f64 / file_bytes.max(1) as f64)?;
        d.set_item("description", &self.description)?;
        d.set_item("class_names", m.class_names().map(<[String]>::to_vec))?;
        d.set_item(
            "encoding",
            m.feature_encoding().map(FeatureEncoding::describe),
        )?;
        d.set_item(
            "path",
            self.source
                .as_ref()
                .map(|(p, _)| p.to_string_lossy().into_owned()),
        )?;
        Ok(d)
    }

    /// Writes the model as a `.bnn` file, atomically: an existing file is
    /// replaced whole or not at all.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let model = &self.model;
        let description = &self.description;
        py.detach(|| bnn_core::format::save(model, description, &path))
            .map_err(|e| core_error("cannot save model", e))
    }

    /// The same network with another decision rule: "scores" (argmax of
    /// the scores) or "seed" (the first non-negative score).
    fn with_rule(&self, rule: &str) -> PyResult<PyModel> {
        let rule: DecisionRule = rule
            .parse()
            .map_err(|e: bnn_core::Error| PyValueError::new_err(format!("rule: {e}")))?;
        let mut model = self.model.clone();
        model.set_rule(rule);
        Ok(self.derived(model))
    }

    /// Accuracy and the confusion matrix on `x` (uint8 images, or float
    /// features for a model with a stored encoding) against integer labels
    /// `y`: `(accuracy, confusion)`, `confusion[true, predicted]` an int64
    /// array of shape (classes, classes).
    #[pyo3(signature = (x, y, threads=None, kernel=None))]
    #[allow(clippy::type_complexity)]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<(f64, Bound<'py, PyArray2<i64>>)> {
        let numpy = py.import("numpy")?;
        let labels = numpy.call_method1("asarray", (y,))?;
        let kind: String = labels.getattr("dtype")?.getattr("kind")?.extract()?;
        if kind != "i" && kind != "u" {
            let dtype: String = labels.getattr("dtype")?.str()?.extract()?;
            return Err(PyTypeError::new_err(format!(
                "labels must be integers, not dtype {dtype}"
            )));
        }
        let labels: Vec<i64> = labels
            .call_method1("astype", ("int64",))?
            .call_method0("ravel")?
            .call_method0("tolist")?
            .extract()?;
        let p = self.run(py, x, threads, kernel)?;
        let classes = self.model.num_classes();
        if labels.len() != p.classes.len() {
            return Err(PyValueError::new_err(format!(
                "{} labels for {} inputs",
                labels.len(),
                p.classes.len()
            )));
        }
        let mut confusion = Array2::<i64>::zeros((classes, classes));
        for (i, (&label, &class)) in labels.iter().zip(&p.classes).enumerate() {
            let Some(t) = usize::try_from(label).ok().filter(|&t| t < classes) else {
                return Err(PyValueError::new_err(format!(
                    "label {i} is {label}, not a class of the model's 0..{classes}"
                )));
            };
            confusion[[t, class]] += 1;
        }
        let correct: i64 = (0..classes).map(|c| confusion[[c, c]]).sum();
        let accuracy = correct as f64 / labels.len().max(1) as f64;
        Ok((accuracy, confusion.into_pyarray(py)))
    }

    /// The same network with its classes named, one name per output
    /// (non-empty, at most 256 bytes, no control characters, no two alike);
    /// saved in the file (format version 3).
    fn with_class_names(&self, names: Vec<String>) -> PyResult<PyModel> {
        let model = self
            .model
            .clone()
            .with_class_names(names)
            .map_err(|e| core_error("class names", e))?;
        Ok(self.derived(model))
    }

    /// The same network with a feature encoding fitted on training rows
    /// `x` (float, shape (N, D)): "minmax" (one u8 per feature) or
    /// "thermometer" with `levels` cut points per feature. The model must
    /// take exactly the values the encoding gives (D, or D·levels). Saved
    /// in the file; `predict` and friends then take float rows.
    #[pyo3(signature = (x, kind="minmax", levels=None))]
    fn with_encoding(
        &self,
        x: &Bound<'_, PyAny>,
        kind: &str,
        levels: Option<usize>,
    ) -> PyResult<PyModel> {
        let numpy = x.py().import("numpy")?;
        let x = numpy.call_method1("asarray", (x, "float32"))?;
        let shape: Vec<usize> = x.getattr("shape")?.extract()?;
        let [_, d] = shape[..] else {
            return Err(PyValueError::new_err(format!(
                "training rows of shape {shape:?}: expected (N, features)"
            )));
        };
        let rows: Vec<f32> = x.call_method0("ravel")?.call_method0("tolist")?.extract()?;
        let encoding = match (kind, levels) {
            ("minmax", None) => FeatureEncoding::fit_min_max(&rows, d),
            ("thermometer", Some(k)) => FeatureEncoding::fit_thermometer(&rows, d, k),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "kind={kind:?} with levels={levels:?}: give kind=\"minmax\" without \
                     levels or kind=\"thermometer\" with levels"
                )))
            }
        }
        .map_err(|e| core_error("cannot fit the encoding", e))?;
        let model = self
            .model
            .clone()
            .with_feature_encoding(encoding)
            .map_err(|e| core_error("cannot encode for this model", e))?;
        Ok(self.derived(model))
    }

    /// The classes: their names, or their indices when the model has none
    /// (`len(model.classes)` is the class count).
    #[getter]
    fn classes(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self.model.class_names() {
            Some(names) => names.to_vec().into_pyobject(py)?.into_any().unbind(),
            None => (0..self.model.num_classes())
                .collect::<Vec<usize>>()
                .into_pyobject(py)?
                .into_any()
                .unbind(),
        })
    }

    /// The class names stored in the model, or None.
    #[getter]
    fn class_names(&self) -> Option<Vec<String>> {
        self.model.class_names().map(<[String]>::to_vec)
    }

    /// The stored feature encoding, described ("u8 (min-max over 30
    /// features)"), or None for a model of uint8 images.
    #[getter]
    fn encoding(&self) -> Option<String> {
        self.model.feature_encoding().map(FeatureEncoding::describe)
    }

    /// The number of inputs (pixels) of one image.
    #[getter]
    fn inputs(&self) -> usize {
        self.model.input_len()
    }

    /// The number of classes.
    #[getter]
    fn num_classes(&self) -> usize {
        self.model.num_classes()
    }

    /// The free-text description stored in the file.
    #[getter]
    fn description(&self) -> &str {
        &self.description
    }

    fn __repr__(&self) -> String {
        let shape: Vec<String> = self.model.shape().iter().map(|w| w.to_string()).collect();
        let encoding = match self.model.input_encoding() {
            InputEncoding::Binary { .. } => "binary",
            InputEncoding::U8 => "u8",
        };
        format!(
            "<bnn.Model {} input={encoding} rule={}>",
            shape.join("-"),
            self.model.rule()
        )
    }
}

/// Weights and biases the same network holds in float32, as `bnn info`
/// counts them.
fn parameters(m: &Model) -> usize {
    let pixel = m.pixel_layer().map(|l| (l.inputs(), l.outputs()));
    let binary = m.layers().iter().map(|l| (l.inputs(), l.outputs()));
    pixel
        .into_iter()
        .chain(binary)
        .map(|(inputs, outputs)| inputs * outputs + outputs)
        .sum()
}
