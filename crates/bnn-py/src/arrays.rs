//! The user's NumPy arrays as a labelled data set, for `bnn.train`: the
//! same [`LabelledSet`] the command line reads from files, so that both
//! split and encode it with one implementation (`bnn_train::prepare`).
//!
//! The arrays are copied once (training reads every sample many times, so
//! a copy costs nothing next to it, and no Python thread can change them
//! under the trainer).

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use bnn_data::labelled::{LabelledSet, Samples, Values};

/// Most classes a label may name.
const MAX_CLASSES: usize = 65_535;

/// `x` and `y` as a training set of their own; `what` names them in errors.
pub fn labelled(x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>, what: &str) -> PyResult<LabelledSet> {
    let fail = |m: String| PyValueError::new_err(format!("cannot train: {what}: {m}"));
    let (shape, values) = values(x).map_err(|e| match e {
        Problem::Type(m) => PyTypeError::new_err(format!("cannot train: {what}: {m}")),
        Problem::Value(m) => fail(m),
    })?;
    let labels = labels(y).map_err(|e| match e {
        Problem::Type(m) => PyTypeError::new_err(format!("cannot train: {what}: {m}")),
        Problem::Value(m) => fail(m),
    })?;
    let count = shape[0];
    if labels.len() != count {
        return Err(fail(format!("{count} samples but {} labels", labels.len())));
    }
    let input_map = match shape[1..] {
        [d] => (1, d, 1),
        [h, w] => (h, w, 1),
        [h, w, c] => (h, w, c),
        _ => unreachable!("values() checks the rank"),
    };
    if matches!(values, Values::F32(_)) && shape.len() != 2 {
        return Err(fail(
            "float arrays are features, shaped (N, D); images are uint8".into(),
        ));
    }
    let classes = labels
        .iter()
        .map(|&l| usize::from(l) + 1)
        .max()
        .unwrap_or(0);
    Ok(LabelledSet {
        train: Samples { values, labels },
        test: None,
        input_map,
        classes,
        class_names: None,
    })
}

enum Problem {
    Type(String),
    Value(String),
}

/// The samples of `x`: uint8 of any rank 2 to 4, or float32/float64
/// features, each finite.
fn values(x: &Bound<'_, PyAny>) -> Result<(Vec<usize>, Values), Problem> {
    if let Ok(a) = x.cast::<PyArrayDyn<u8>>() {
        let shape = shape_of(a.shape())?;
        return Ok((shape, Values::U8(a.to_owned_array().into_iter().collect())));
    }
    let (shape, floats) = if let Ok(a) = x.cast::<PyArrayDyn<f32>>() {
        (
            shape_of(a.shape())?,
            a.to_owned_array().into_iter().collect::<Vec<f32>>(),
        )
    } else if let Ok(a) = x.cast::<PyArrayDyn<f64>>() {
        let shape = shape_of(a.shape())?;
        let mut out = Vec::with_capacity(a.len());
        for v in a.to_owned_array().iter() {
            let f = *v as f32;
            if v.is_finite() && !f.is_finite() {
                let i = out.len();
                return Err(Problem::Value(format!(
                    "row {} column {} is {v}, beyond float32",
                    i / row_len(&shape),
                    i % row_len(&shape)
                )));
            }
            out.push(f);
        }
        (shape, out)
    } else {
        let dtype = x
            .getattr("dtype")
            .map(|d| d.to_string())
            .unwrap_or_else(|_| "not an array".into());
        return Err(Problem::Type(format!(
            "x must be a NumPy array of uint8 images or float32/float64 features, not {dtype}"
        )));
    };
    if let Some(i) = floats.iter().position(|v| !v.is_finite()) {
        return Err(Problem::Value(format!(
            "row {} column {} is {}",
            i / row_len(&shape),
            i % row_len(&shape),
            floats[i]
        )));
    }
    Ok((shape, Values::F32(floats)))
}

fn row_len(shape: &[usize]) -> usize {
    shape[1..].iter().product::<usize>().max(1)
}

fn shape_of(shape: &[usize]) -> Result<Vec<usize>, Problem> {
    if !(2..=4).contains(&shape.len()) {
        return Err(Problem::Value(format!(
            "x has {} dimensions: give (N, D), (N, H, W) or (N, H, W, C)",
            shape.len()
        )));
    }
    if shape[0] == 0 {
        return Err(Problem::Value("no samples".into()));
    }
    if shape[1..].contains(&0) {
        return Err(Problem::Value("samples of no values".into()));
    }
    Ok(shape.to_vec())
}

/// The labels of `y`: a 1-D array of any integer dtype, each a class
/// 0..65535.
fn labels(y: &Bound<'_, PyAny>) -> Result<Vec<u16>, Problem> {
    macro_rules! try_dtype {
        ($($t:ty),*) => {$(
            if let Ok(a) = y.cast::<PyArrayDyn<$t>>() {
                if a.ndim() != 1 {
                    return Err(Problem::Value(format!("y has {} dimensions: give (N,)", a.ndim())));
                }
                let mut out = Vec::with_capacity(a.len());
                for (i, v) in a.to_owned_array().iter().enumerate() {
                    match u16::try_from(*v) {
                        Ok(l) if usize::from(l) < MAX_CLASSES => out.push(l),
                        _ => return Err(Problem::Value(format!(
                            "label {i} is {v}: labels are classes 0 to {}", MAX_CLASSES - 1
                        ))),
                    }
                }
                return Ok(out);
            }
        )*};
    }
    try_dtype!(i64, i32, i16, i8, u64, u32, u16, u8);
    let dtype = y
        .getattr("dtype")
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "not an array".into());
    Err(Problem::Type(format!(
        "y must be a NumPy array of integer labels, not {dtype}"
    )))
}
