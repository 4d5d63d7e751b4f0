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

/// Bytes of pixels copied per chunk when the array must be copied: large
/// enough that each chunk keeps every worker thread busy (1,337 MNIST
/// images), small enough that the engine reads the copy back from cache
/// and a large batch never doubles in memory. The cost against reading in
/// place: `scripts/py-copy-cost.py`, figures in `docs/PYTHON.md`.
const COPY_BYTES: usize = 1 << 20;

/// Runs `work` on the pixels of `images`, a chunk of whole images at a
/// time, with each chunk's image count, and returns the chunks' results in
/// order: `TypeError` for anything but a uint8 ndarray, `ValueError` naming
/// the shape when it does not fit `model`.
///
/// `work` may release the GIL, and then no Python code may write to the
/// bytes it reads: that would be a data race. So the pixels are read in
/// place only when Python cannot write to them (an array over an immutable
/// buffer, such as `np.frombuffer(bytes)`); any other array, writeable or
/// not (a read-only flag can be set back, and a read-only view shares a
/// writeable base), is copied with the GIL held, `COPY_BYTES` at a time, so
/// memory does not double.
pub fn with_pixels<R>(
    images: &Bound<'_, PyAny>,
    model: &Model,
    mut work: impl FnMut(&[u8], usize) -> PyResult<R>,
) -> PyResult<Vec<R>> {
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
    let per = model.input_len().max(1);
    // `as_slice` also accepts Fortran order, whose memory is not the
    // images one after another.
    let contiguous = untyped
        .is_c_contiguous()
        .then(|| view.as_slice().ok())
        .flatten();
    if let Some(bytes) = contiguous {
        if reads_in_place(images)? {
            return Ok(vec![work(bytes, count)?]);
        }
    }
    let per_chunk = (COPY_BYTES / per).max(1);
    let mut chunk = Vec::with_capacity(per_chunk.min(count) * per);
    let mut elements = view.as_array().into_iter().copied();
    let mut results = Vec::with_capacity(count.div_ceil(per_chunk).max(1));
    let mut done = 0;
    loop {
        let n = per_chunk.min(count - done);
        chunk.clear();
        match contiguous {
            Some(bytes) => chunk.extend_from_slice(&bytes[done * per..(done + n) * per]),
            None => chunk.extend(elements.by_ref().take(n * per)),
        }
        results.push(work(&chunk, n)?);
        done += n;
        if done == count {
            return Ok(results);
        }
    }
}

/// Whether [`with_pixels`] reads a C-contiguous array in place, without a
/// copy: only where Python cannot write to its memory. Exposed to the
/// package's tests as `bnn._bnn._reads_in_place`, which hold the rule.
#[pyfunction]
#[pyo3(name = "_reads_in_place")]
pub fn reads_in_place(images: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(!python_can_write(images)?)
}

/// Whether Python code could write to the memory of `images`: true unless
/// every array from it down to the owner of its data is read-only and that
/// owner is a read-only buffer (`bytes`, a read-only `mmap` or
/// `memoryview`). An array that owns its data may be made writeable again.
fn python_can_write(images: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = images.py();
    let mut object = images.clone();
    // numpy collapses chains of views to their owner; the bound only
    // guards against an unexpected cycle.
    for _ in 0..64 {
        if object.is_none() {
            return Ok(true);
        }
        if object.cast::<PyUntypedArray>().is_ok() {
            let writeable: bool = object.getattr("flags")?.getattr("writeable")?.extract()?;
            if writeable {
                return Ok(true);
            }
            object = object.getattr("base")?;
            continue;
        }
        let memoryview = py.import("builtins")?.getattr("memoryview")?;
        return match memoryview.call1((&object,)) {
            Ok(view) => Ok(!view.getattr("readonly")?.extract::<bool>()?),
            Err(_) => Ok(true),
        };
    }
    Ok(true)
}
