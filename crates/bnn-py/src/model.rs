//! `bnn.Model`: a loaded network and the calls that run it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::ThreadPool;

use bnn_core::{DecisionRule, InputEncoding, Kernel, Model, Predictions, RunOptions};

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

/// A pool of `threads` workers, built on first use and kept: building one
/// per call costs as much as classifying a few thousand images.
fn pool(threads: usize) -> PyResult<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start {threads} worker threads: {e}"))
        })?;
    let pool = Arc::new(pool);
    pools.insert(threads, pool.clone());
    Ok(pool)
}

impl PyModel {
    /// The kernel and the pool a call runs on, checked.
    fn options(
        &self,
        threads: Option<i64>,
        kernel: Option<&str>,
    ) -> PyResult<(RunOptions, Option<Arc<ThreadPool>>)> {
        let pool = match threads {
            Some(n) => match usize::try_from(n) {
                Ok(n) if (1..=MAX_THREADS).contains(&n) => Some(pool(n)?),
                _ => {
                    return Err(PyValueError::new_err(format!(
                        "threads={n} is out of range: give 1 to {MAX_THREADS}"
                    )))
                }
            },
            None => None,
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
        let parts = with_pixels(images, model, |pixels, _count| {
            py.detach(|| match &pool {
                Some(pool) => pool.install(|| model.predict_batch_with(pixels, options)),
                None => model.predict_batch_with(pixels, options),
            })
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

#[pymethods]
impl PyModel {
    /// The class of every image, as an int64 array of length N.
    ///
    /// `images` is a uint8 array of shape (N, inputs) or (N, H, W[, C]).
    /// `threads` (1 to 1024) runs the batch on a pool of that many threads
    /// (default: all cores, or RAYON_NUM_THREADS); `kernel` is "scalar",
    /// "avx2" or "avx512" (default: BNN_KERNEL, else the best this CPU has).
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
        Ok(PyModel {
            model,
            description: self.description.clone(),
            source: None,
        })
    }

    /// The number of inputs (pixels) of one image.
    #[getter]
    fn inputs(&self) -> usize {
        self.model.input_len()
    }

    /// The number of classes.
    #[getter]
    fn classes(&self) -> usize {
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
