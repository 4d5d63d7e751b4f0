//! Turning the seed network's `.npz` into checked dense-layer parameters.
//!
//! The seed file holds `fc1_w, fc1_b, fc2_w, fc2_b, ...`: for each layer a
//! binary weight matrix (out x in, values -1/+1) and a float bias. Engines
//! that pack weights into bits must not silently map a stray 0 or 2 to a
//! sign, so every weight is checked to be exactly ±1, every bias to be
//! finite, and consecutive layers to fit together.

use std::path::Path;

use super::data::NpyData;
use super::npy::shape_str;
use super::{NpyArray, NpzArchive};
use crate::error::DataError;

/// One fully connected layer: `y = W x + b` with `W` in {-1, +1}.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseParams {
    /// Layer name as in the file, e.g. `"fc1"`.
    pub name: String,
    /// Output features (rows of `W`).
    pub rows: usize,
    /// Input features (columns of `W`).
    pub cols: usize,
    /// `W`, row-major, `rows * cols` values, each exactly -1 or +1.
    pub weights: Vec<i8>,
    /// `b`, `rows` finite values.
    pub bias: Vec<f64>,
}

/// Reads layers `fc1, fc2, ...` from the `.npz` at `path`.
///
/// Layer K is the pair `fcK_w` / `fcK_b`; layers are read for K = 1, 2, ...
/// until the first missing `fcK_w`, and at least `fc1_w` must exist; a gap
/// (`fc1` and `fc3` without `fc2`) is an error naming the missing array.
/// Rules:
///
/// * `fcK_w` has shape `(out, in)`, both non-zero. Its dtype may be any
///   integer, float or bool type; numeric values must be exactly -1 or +1.
///   For bool arrays `true` means +1 and `false` means -1 (the usual
///   bit encoding of binary weights).
/// * `fcK_b` must exist, with shape `(1, out)` or `(out,)`, any integer or
///   float dtype, and only finite values.
/// * `in` of layer K must equal `out` of layer K-1.
///
/// Every error names the file, the array and, for bad values, the flat
/// index and the value.
pub fn read_seed_layers(path: &Path) -> Result<Vec<DenseParams>, DataError> {
    let mut npz = NpzArchive::open(path)?;
    let mut layers: Vec<DenseParams> = Vec::new();
    for k in 1.. {
        let name = format!("fc{k}");
        let w_name = format!("{name}_w");
        let b_name = format!("{name}_b");
        if !npz.contains(&w_name) {
            // A later layer without this one is a gap, not the end: the
            // layers after it would otherwise be dropped without a word.
            let later = npz.names().into_iter().any(|n| {
                n.strip_prefix("fc")
                    .and_then(|r| r.strip_suffix("_w"))
                    .and_then(|d| d.parse::<usize>().ok())
                    .is_some_and(|j| j > k)
            });
            if k == 1 || later {
                return Err(DataError::NpzMissingArray {
                    path: path.to_path_buf(),
                    array: w_name,
                });
            }
            break;
        }
        let err = |array: &str, detail: String| DataError::NpzArray {
            path: path.to_path_buf(),
            array: array.to_string(),
            detail,
        };
        let w = npz.read(&w_name)?;
        let (rows, cols) = match w.shape[..] {
            [rows, cols] if rows > 0 && cols > 0 => (rows, cols),
            _ => {
                return Err(err(
                    &w_name,
                    format!(
                        "weight shape {} is not (out, in) with both non-zero",
                        shape_str(&w.shape)
                    ),
                ))
            }
        };
        if let Some(prev) = layers.last() {
            if cols != prev.rows {
                return Err(err(
                    &w_name,
                    format!(
                        "shape {} takes {cols} inputs but {}_w has {} outputs",
                        shape_str(&w.shape),
                        prev.name,
                        prev.rows
                    ),
                ));
            }
        }
        let weights = sign_weights(&w).map_err(|d| err(&w_name, d))?;

        let b = npz.read(&b_name)?;
        let shape_ok = b.shape == [rows] || b.shape == [1, rows];
        if !shape_ok {
            return Err(err(
                &b_name,
                format!(
                    "bias shape {} does not match {rows} outputs; expected (1, {rows}) or ({rows},)",
                    shape_str(&b.shape)
                ),
            ));
        }
        let bias = finite_bias(&b).map_err(|d| err(&b_name, d))?;
        layers.push(DenseParams {
            name,
            rows,
            cols,
            weights,
            bias,
        });
    }
    Ok(layers)
}

/// Maps each element to -1/+1 with `sign`, or reports the first element
/// that is neither.
fn map_signs<T: Copy + std::fmt::Display>(
    values: &[T],
    sign: impl Fn(T) -> Option<i8>,
) -> Result<Vec<i8>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            sign(v).ok_or_else(|| format!("weight at flat index {i} is {v}, not -1 or +1"))
        })
        .collect()
}

fn sign_weights(w: &NpyArray) -> Result<Vec<i8>, String> {
    /// -1 or +1 for exact integer ±1.
    macro_rules! int_sign {
        ($v:expr) => {
            map_signs($v, |x| match x {
                1 => Some(1),
                x if i128::from(x) == -1 => Some(-1),
                _ => None,
            })
        };
    }
    let float_sign = |x: f64| {
        if x == 1.0 {
            Some(1)
        } else if x == -1.0 {
            Some(-1)
        } else {
            None
        }
    };
    match &w.data {
        NpyData::Bool(v) => Ok(v.iter().map(|&b| if b { 1 } else { -1 }).collect()),
        NpyData::I8(v) => int_sign!(v),
        NpyData::I16(v) => int_sign!(v),
        NpyData::I32(v) => int_sign!(v),
        NpyData::I64(v) => int_sign!(v),
        NpyData::U8(v) => int_sign!(v),
        NpyData::U16(v) => int_sign!(v),
        NpyData::U32(v) => int_sign!(v),
        NpyData::U64(v) => int_sign!(v),
        NpyData::F32(v) => map_signs(v, |x| float_sign(f64::from(x))),
        NpyData::F64(v) => map_signs(v, float_sign),
    }
}

fn finite_bias(b: &NpyArray) -> Result<Vec<f64>, String> {
    if let NpyData::Bool(_) = b.data {
        return Err("bias has dtype bool; expected a float or integer dtype".to_string());
    }
    let values = b.to_f64();
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(format!(
            "bias at flat index {i} is {v}, not a finite number"
        ));
    }
    Ok(values)
}
