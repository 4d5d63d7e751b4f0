//! The images argument: a NumPy uint8 array, read in place when it is
//! C-contiguous (read-only arrays, `np.frombuffer` and `np.memmap`
//! included) and copied once otherwise.

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use bnn_core::Model;

/// Why `shape` cannot be a batch for `model`, if it cannot.
fn check_shape(shape: &[usize], model: &Model) -> Result<usize, String> {
    let inputs = model.input_len();
    let recorded = model.input_shape();
    let wanted = if recorded.is_flat() {
        format!("(N, {inputs}) or (N, H, W[, C]) of {inputs} values per image")
    } else {
        format!(
            "(N, {inputs}), (N, {}, {}) or (N, {}, {}, {})",
            recorded.height, recorded.width, recorded.height, recorded.width, recorded.channels
        )
    };
    let fail = || {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shown = match dims.len() {
            1 => format!("({},)", dims[0]),
            _ => format!("({})", dims.join(", ")),
        };
        Err(format!(
            "images of shape {shown} do not fit a model of {inputs} inputs: \
             expected {wanted}"
        ))
    };
    let Some((&count, image)) = shape.split_first() else {
        return fail();
    };
    let fits = match *image {
        [n] => n == inputs,
        [h, w] => {
            h.checked_mul(w) == Some(inputs)
                && (recorded.is_flat()
                    || (recorded.channels == 1
                        && (h, w) == (recorded.height as usize, recorded.width as usize)))
        }
        [h, w, c] => {
            h.checked_mul(w).and_then(|hw| hw.checked_mul(c)) == Some(inputs)
                && (recorded.is_flat()
                    || (h, w, c)
                        == (
                            recorded.height as usize,
                            recorded.width as usize,
                            recorded.channels as usize,
                        ))
        }
        _ => false,
    };
    if fits {
        Ok(count)
    } else {
        fail()
    }
}

/// Runs `work` on the pixels of `images` and their image count:
/// `TypeError` for anything but a uint8 ndarray, `ValueError` naming the
/// shape when it does not fit `model`. The borrow of the array lasts for
/// the whole of `work`, which may release the GIL.
pub fn with_pixels<R>(
    images: &Bound<'_, PyAny>,
    model: &Model,
    work: impl FnOnce(&[u8], usize) -> PyResult<R>,
) -> PyResult<R> {
    let Ok(untyped) = images.cast::<PyUntypedArray>() else {
        let kind = images.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "images must be a numpy.ndarray of dtype uint8, not {kind}"
        )));
    };
    let Ok(array) = images.cast::<PyArrayDyn<u8>>() else {
        let dtype = untyped.dtype().str()?;
        return Err(PyTypeError::new_err(format!(
            "images must have dtype uint8, not {dtype}: convert with \
             images.astype(numpy.uint8) if the values are 0..=255"
        )));
    };
    let count = check_shape(untyped.shape(), model).map_err(PyValueError::new_err)?;
    let view = array
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("images cannot be read: {e}")))?;
    // `as_slice` also accepts Fortran order, whose memory is not the
    // images one after another.
    match view.as_slice() {
        Ok(bytes) if untyped.is_c_contiguous() => work(bytes, count),
        _ => {
            let copy: Vec<u8> = view.as_array().iter().copied().collect();
            work(&copy, count)
        }
    }
}
