//! `bnn.from_numpy`: a model from weight matrices trained elsewhere
//! (PyTorch, Larq, Keras). Signs are taken here; the folding of biases and
//! batch norms into integer thresholds is the engine's own
//! ([`Threshold::from_bias`], [`Threshold::from_batch_norm`]), so a
//! network built this way runs exactly as one trained by `bnn train`.

use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyDictMethods};

use bnn_core::{
    BinaryDense, BitMatrix, DecisionRule, InputShape, Model, PixelDense, Threshold, Transform,
};

use crate::errors::core_error;
use crate::model::PyModel;

/// Batch-norm epsilon when a layer gives none: PyTorch's default.
const DEFAULT_EPS: f64 = 1e-5;

fn value_error(layer: usize, what: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(format!("layer {layer}: {what}"))
}

/// `obj` as a C-contiguous float64 array of `ndim` dimensions.
fn floats<'py>(
    np: &Bound<'py, PyModule>,
    obj: &Bound<'py, PyAny>,
    layer: usize,
    key: &str,
) -> PyResult<Vec<f64>> {
    let kwargs = PyDict::new(np.py());
    kwargs.set_item("dtype", "float64")?;
    let array = np.call_method("ascontiguousarray", (obj,), Some(&kwargs))?;
    let values: Vec<f64> = if let Ok(a) = array.cast::<PyArray2<f64>>() {
        a.readonly().as_slice()?.to_vec()
    } else if let Ok(a) = array.cast::<PyArray1<f64>>() {
        a.readonly().as_slice()?.to_vec()
    } else {
        let shape = array.getattr("shape")?;
        return Err(value_error(
            layer,
            format!("'{key}' of shape {shape} is not a vector or a matrix"),
        ));
    };
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(value_error(
            layer,
            format!("'{key}' holds {} at flat index {i}", values[i]),
        ));
    }
    Ok(values)
}

/// One layer as given: signs of its weight matrix and how it transforms
/// the dot products.
struct Given {
    outputs: usize,
    inputs: usize,
    signs: Vec<i8>,
    bias: Vec<f64>,
    batch_norm: Option<[Vec<f64>; 4]>,
    eps: f64,
}

fn given(np: &Bound<'_, PyModule>, entry: &Bound<'_, PyAny>, layer: usize) -> PyResult<Given> {
    let Ok(dict) = entry.cast::<PyDict>() else {
        return Err(value_error(
            layer,
            "each layer is a dict with 'weight' and 'bias' or batch-norm arrays",
        ));
    };
    let known = ["weight", "bias", "gamma", "beta", "mean", "var", "eps"];
    for key in dict.keys() {
        let name: String = key.str()?.extract()?;
        if !known.contains(&name.as_str()) {
            return Err(value_error(
                layer,
                format!("unknown key '{name}' (known: {})", known.join(", ")),
            ));
        }
    }
    let Some(w) = dict.get_item("weight")? else {
        return Err(value_error(layer, "'weight' is missing"));
    };
    let shape: Vec<usize> = np
        .call_method1("shape", (&w,))?
        .extract()
        .map_err(|_| value_error(layer, "'weight' has no shape"))?;
    let [outputs, inputs] = shape[..] else {
        return Err(value_error(
            layer,
            format!("'weight' of shape {shape:?} is not a matrix (outputs, inputs)"),
        ));
    };
    let signs = floats(np, &w, layer, "weight")?
        .into_iter()
        .map(|v| if v >= 0.0 { 1 } else { -1 })
        .collect();
    let vector = |key: &str| -> PyResult<Option<Vec<f64>>> {
        let Some(obj) = dict.get_item(key)? else {
            return Ok(None);
        };
        let values = floats(np, &obj, layer, key)?;
        if values.len() != outputs || np.call_method1("ndim", (&obj,))?.extract::<usize>()? != 1 {
            return Err(value_error(
                layer,
                format!("'{key}' must be a vector of {outputs} values, one per output"),
            ));
        }
        Ok(Some(values))
    };
    let bias = vector("bias")?.unwrap_or_else(|| vec![0.0; outputs]);
    let norm = [
        vector("gamma")?,
        vector("beta")?,
        vector("mean")?,
        vector("var")?,
    ];
    let batch_norm = match norm {
        [Some(g), Some(b), Some(m), Some(v)] => Some([g, b, m, v]),
        [None, None, None, None] => None,
        _ => {
            return Err(value_error(
                layer,
                "a batch norm needs all of 'gamma', 'beta', 'mean' and 'var'",
            ))
        }
    };
    let eps = match dict.get_item("eps")? {
        Some(e) => e.extract::<f64>()?,
        None => DEFAULT_EPS,
    };
    Ok(Given {
        outputs,
        inputs,
        signs,
        bias,
        batch_norm,
        eps,
    })
}

/// The layer's transform: thresholds for a hidden layer, folded by the
/// engine over dot products within `±range`; the f32 bias for the last.
fn transform(g: &Given, layer: usize, last: bool, range: usize) -> PyResult<Transform> {
    let engine = |e: bnn_core::Error| value_error(layer, e);
    if last {
        if g.batch_norm.is_some() {
            return Err(value_error(
                layer,
                "the output layer emits dot + bias scores, so a batch norm there cannot be \
                 folded; drop it (its per-class scale changes scores, not only the argmax \
                 for gamma > 0 and equal scales) or fold it into 'bias' yourself",
            ));
        }
        let mut bias = Vec::with_capacity(g.outputs);
        for (j, &b) in g.bias.iter().enumerate() {
            let narrow = b as f32;
            if !narrow.is_finite() {
                return Err(value_error(
                    layer,
                    format!("bias {b:e} at index {j} is beyond the range of the f32 scores"),
                ));
            }
            bias.push(narrow);
        }
        return Ok(Transform::Scores(bias));
    }
    let thresholds = match &g.batch_norm {
        Some([gamma, beta, mean, var]) => (0..g.outputs)
            .map(|j| {
                Threshold::from_batch_norm(
                    gamma[j], beta[j], mean[j], var[j], g.eps, g.bias[j], range,
                )
            })
            .collect::<Result<Vec<_>, _>>(),
        None => g
            .bias
            .iter()
            .map(|&b| Threshold::from_bias(b, range))
            .collect(),
    }
    .map_err(engine)?;
    Ok(Transform::Sign(thresholds))
}

/// Builds a model from weight matrices (PyTorch layout: outputs × inputs)
/// and biases or batch-norm parameters.
///
/// `layers` is a list of dicts, first layer first: `weight` (signs taken,
/// `w >= 0` is +1), and `bias` and/or the batch norm that follows the
/// layer (`gamma`, `beta`, `mean`, `var`, and `eps`, default 1e-5). Hidden
/// layers' biases and batch norms fold into integer thresholds; the last
/// layer's bias stays as f32 and gives the scores. `input` is "binary"
/// (pixels `>= threshold` are +1) or "u8" (pixel values enter the first
/// layer); `rule` is "scores" (argmax) or "seed".
#[pyfunction]
#[pyo3(signature = (layers, rule="scores", input="binary", threshold=128, input_shape=None, description=String::new()))]
pub fn from_numpy(
    py: Python<'_>,
    layers: &Bound<'_, PyAny>,
    rule: &str,
    input: &str,
    threshold: u8,
    input_shape: Option<(u32, u32, u32)>,
    description: String,
) -> PyResult<PyModel> {
    let rule: DecisionRule = rule
        .parse()
        .map_err(|e: bnn_core::Error| PyValueError::new_err(format!("rule: {e}")))?;
    let u8_input = match input {
        "binary" => false,
        "u8" => true,
        other => {
            return Err(PyValueError::new_err(format!(
                "input '{other}' is not one of 'binary', 'u8'"
            )))
        }
    };
    let np = py.import("numpy")?;
    let entries: Vec<Bound<'_, PyAny>> = layers.try_iter()?.collect::<PyResult<_>>()?;
    if entries.is_empty() {
        return Err(PyValueError::new_err("a model needs at least one layer"));
    }
    let count = entries.len();
    let mut pixel = None;
    let mut dense = Vec::with_capacity(count);
    for (i, entry) in entries.iter().enumerate() {
        let layer = i + 1;
        let g = given(&np, entry, layer)?;
        let first_u8 = i == 0 && u8_input;
        let range = if first_u8 {
            PixelDense::dot_bound(g.inputs)
        } else {
            g.inputs
        };
        let t = transform(&g, layer, layer == count, range)?;
        let weights = BitMatrix::from_pm1(g.outputs, g.inputs, &g.signs)
            .map_err(|e| value_error(layer, e))?;
        if first_u8 {
            pixel = Some(PixelDense::new(weights, t).map_err(|e| value_error(layer, e))?);
        } else {
            dense.push(BinaryDense::new(weights, t).map_err(|e| value_error(layer, e))?);
        }
    }
    let built = match pixel {
        Some(first) => Model::with_pixel_layer(first, dense, rule),
        None => {
            let inputs = dense[0].inputs();
            Model::new(inputs, threshold, dense, rule)
        }
    };
    let mut model = built.map_err(|e| core_error("cannot build model", e))?;
    if let Some((h, w, c)) = input_shape {
        model
            .set_input_shape(InputShape::new(h, w, c))
            .map_err(|e| core_error("cannot build model", e))?;
    }
    Ok(PyModel {
        model,
        description,
        source: None,
    })
}
