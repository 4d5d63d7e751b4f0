//! NumPy sources: a `.npz` of arrays under Keras' names (`x_train`,
//! `y_train`, `x_test`, `y_test`) or as one set (`x`, `y`), with an
//! optional `class_names`; or a lone `.npy` of samples whose labels are
//! another `.npy`.
//!
//! Samples are `uint8` images `(N, H, W)`, `(N, H, W, C)` (or `(N, C, H,
//! W)` with [`SourceOptions::channels_first`]), or feature vectors `(N, D)`
//! of `uint8`, `float32` or `float64` (converted to `float32`; a value that
//! is not finite there is an error). Labels are any integer dtype, `(N,)`
//! or `(N, 1)`, each in `0..=65534`.

use std::io::BufReader;
use std::path::Path;

use super::{finish, invalid, map_text, Found, LabelledSet, Part, SourceOptions, Values};
use super::{MAX_CLASSES, MAX_VALUES};
use crate::error::DataError;
use crate::npz::{read_npy_limited, shape_str, NpyArray, NpyData, NpzArchive};

/// Samples read from one array: values, count and the shape of one.
struct Sampled {
    values: Values,
    count: usize,
    map: (usize, usize, usize),
}

/// Reads a `.npz` (see the module documentation).
pub(crate) fn read_npz(path: &Path, opts: &SourceOptions) -> Result<LabelledSet, DataError> {
    let mut npz = NpzArchive::open(path)?;
    let (train_names, test_names) = if npz.contains("x_train") {
        (["x_train", "y_train"], Some(["x_test", "y_test"]))
    } else if npz.contains("x") {
        (["x", "y"], None)
    } else {
        let names: Vec<String> = npz.names().into_iter().take(8).collect();
        return Err(DataError::Npz {
            path: path.to_path_buf(),
            detail: format!(
                "holds no images: expected arrays x_train and y_train (Keras' names) or x and y, found {}",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            ),
        });
    };
    let train = read_pair(&mut npz, train_names, opts, MAX_VALUES)?;
    let test = match test_names {
        Some(names) if npz.contains(names[0]) => {
            let left = MAX_VALUES.saturating_sub(train.0.values.len() as u64);
            let (test, test_map) = read_pair(&mut npz, names, opts, left)?;
            if test_map != train.1 {
                return Err(DataError::NpzArray {
                    path: path.to_path_buf(),
                    array: names[0].into(),
                    detail: format!(
                        "holds samples of {}, {} of {}",
                        map_text(test_map),
                        train_names[0],
                        map_text(train.1)
                    ),
                });
            }
            Some(test)
        }
        _ => None,
    };
    let class_names = if npz.contains("class_names") {
        let (shape, names) = npz.read_strings("class_names", MAX_CLASSES as u64 + 1)?;
        let bad = |detail: String| DataError::NpzArray {
            path: path.to_path_buf(),
            array: "class_names".into(),
            detail,
        };
        if shape.len() != 1 {
            return Err(bad(format!(
                "shape {}: class names are one string per class, of shape (classes,)",
                shape_str(&shape)
            )));
        }
        check_names(&names).map_err(bad)?;
        Some(names)
    } else {
        None
    };
    finish(
        path,
        Found {
            train: train.0,
            test,
            input_map: train.1,
            class_names,
            classes: None,
        },
        opts,
    )
}

/// Class names must be told apart: none empty, none twice.
pub(super) fn check_names(names: &[String]) -> Result<(), String> {
    if let Some(i) = names.iter().position(String::is_empty) {
        return Err(format!("class {i} has an empty name"));
    }
    let mut sorted: Vec<(&String, usize)> = names.iter().zip(0..).collect();
    sorted.sort();
    if let Some(pair) = sorted.windows(2).find(|p| p[0].0 == p[1].0) {
        return Err(format!(
            "classes {} and {} are both named '{}'",
            pair[0].1, pair[1].1, pair[0].0
        ));
    }
    Ok(())
}

/// Samples `names[0]` and labels `names[1]`, checked against each other;
/// at most `max` values.
fn read_pair(
    npz: &mut NpzArchive,
    names: [&str; 2],
    opts: &SourceOptions,
    max: u64,
) -> Result<(Part, (usize, usize, usize)), DataError> {
    let [x_name, y_name] = names;
    let path = npz.path().to_path_buf();
    let bad = |array: &str, detail: String| DataError::NpzArray {
        path: path.clone(),
        array: array.to_string(),
        detail,
    };
    let x = npz.read_limited(x_name, max)?;
    let Sampled { values, count, map } = samples(x, opts).map_err(|d| bad(x_name, d))?;
    let labels = if opts.unlabelled && !npz.contains(y_name) {
        Vec::new()
    } else {
        let y = npz.read_limited(y_name, MAX_VALUES)?;
        let labels = labels(&y).map_err(|d| bad(y_name, d))?;
        if labels.len() != count {
            return Err(bad(
                y_name,
                format!("{} labels for the {count} images of {x_name}", labels.len()),
            ));
        }
        labels
    };
    let part = Part {
        values,
        labels,
        count,
        name: format!("array '{x_name}'"),
    };
    Ok((part, map))
}

/// The samples of array `x` (see the module documentation), as a
/// description of the problem when it holds none.
fn samples(x: NpyArray, opts: &SourceOptions) -> Result<Sampled, String> {
    let (count, map, first) = match *x.shape.as_slice() {
        [n, d] => (n, (1, d, 1), false),
        [n, h, w] => (n, (h, w, 1), false),
        [n, c, h, w] if opts.channels_first => (n, (h, w, c), true),
        [n, h, w, c] => (n, (h, w, c), false),
        _ => {
            return Err(format!(
                "shape {} of rank {}: images are (N, H, W), (N, H, W, C) or (N, D)",
                shape_str(&x.shape),
                x.shape.len()
            ))
        }
    };
    if map.0 == 0 || map.1 == 0 || map.2 == 0 {
        return Err(format!(
            "shape {}: samples of no values",
            shape_str(&x.shape)
        ));
    }
    let features = x.shape.len() == 2;
    let dtype = x.data.dtype_name();
    let values = match x.data {
        NpyData::U8(v) if first => Values::U8(to_hwc(&v, count, map)),
        NpyData::U8(v) => Values::U8(v),
        NpyData::F32(v) if features => Values::F32(finite(v.into_iter().map(f64::from), map.1)?),
        NpyData::F64(v) if features => Values::F32(finite(v.into_iter(), map.1)?),
        _ if features => {
            return Err(format!(
                "dtype {dtype}: features are uint8, float32 or float64"
            ))
        }
        _ => {
            return Err(format!(
                "dtype {dtype}: images are uint8 (scale the values to 0..255 and convert with .astype(numpy.uint8))"
            ))
        }
    };
    Ok(Sampled { values, count, map })
}

/// `(N, C, H, W)` values reordered to `(N, H, W, C)`.
fn to_hwc(v: &[u8], count: usize, (h, w, c): (usize, usize, usize)) -> Vec<u8> {
    let plane = h * w;
    let mut out = Vec::with_capacity(v.len());
    for n in 0..count {
        let sample = &v[n * plane * c..(n + 1) * plane * c];
        for p in 0..plane {
            out.extend((0..c).map(|ch| sample[ch * plane + p]));
        }
    }
    out
}

/// Float features as `f32`, each finite there; the first that is not is
/// named by row and column (rows of `width` values).
fn finite(values: impl Iterator<Item = f64>, width: usize) -> Result<Vec<f32>, String> {
    let mut out = Vec::with_capacity(values.size_hint().0);
    for (i, v) in values.enumerate() {
        let f = v as f32;
        if !f.is_finite() {
            let what = if v.is_nan() {
                "NaN".to_string()
            } else if v.is_infinite() {
                format!("{v}")
            } else {
                format!("{v:e}, beyond float32")
            };
            return Err(format!(
                "row {}, column {}: {what} is not a finite value",
                i / width,
                i % width
            ));
        }
        out.push(f);
    }
    Ok(out)
}

/// A label array of any integer dtype, `(N,)` or `(N, 1)`.
fn labels(y: &NpyArray) -> Result<Vec<u16>, String> {
    match *y.shape.as_slice() {
        [_] | [_, 1] => {}
        _ => return Err("labels are one integer per image, of shape (N,)".into()),
    }
    fn check<T: Copy + Into<i128>>(v: &[T]) -> Result<Vec<u16>, String> {
        v.iter()
            .enumerate()
            .map(|(i, &l)| {
                let l: i128 = l.into();
                u16::try_from(l)
                    .ok()
                    .filter(|&l| usize::from(l) < MAX_CLASSES)
                    .ok_or_else(|| format!("label {i} is {l}, not a class 0..={}", MAX_CLASSES - 1))
            })
            .collect()
    }
    match &y.data {
        NpyData::U8(v) => check(v),
        NpyData::I8(v) => check(v),
        NpyData::I16(v) => check(v),
        NpyData::I32(v) => check(v),
        NpyData::I64(v) => check(v),
        NpyData::U16(v) => check(v),
        NpyData::U32(v) => check(v),
        NpyData::U64(v) => check(v),
        other => Err(format!("dtype {}: labels are integers", other.dtype_name())),
    }
}

/// Largest `.npy` read from a pipe or a device, which is read into memory
/// first: the length of its data is only known at its end.
const MAX_STREAMED: u64 = 1 << 31;

/// One `.npy` array of at most `max` elements from `path`.
fn read_npy_file(path: &Path, max: u64) -> Result<NpyArray, DataError> {
    let bad = |detail: String| invalid(path, detail);
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
    let meta = file
        .metadata()
        .map_err(|e| DataError::io(path, "reading metadata", e))?;
    if meta.is_dir() {
        return Err(bad("is a directory, not a .npy array".into()));
    }
    if meta.is_file() {
        let mut reader = BufReader::new(file);
        return read_npy_limited(&mut reader, meta.len(), max).map_err(bad);
    }
    let bytes = super::read_file(path, MAX_STREAMED, ".npy array streamed")?;
    read_npy_limited(&mut &bytes[..], bytes.len() as u64, max).map_err(bad)
}

/// Reads a lone `.npy` of samples, its labels from [`SourceOptions::labels`].
pub(crate) fn read_npy(path: &Path, opts: &SourceOptions) -> Result<LabelledSet, DataError> {
    let x = read_npy_file(path, MAX_VALUES)?;
    let Sampled { values, count, map } = samples(x, opts).map_err(|d| invalid(path, d))?;
    let labels = match &opts.labels {
        Some(labels_path) => {
            let y = read_npy_file(labels_path, MAX_VALUES)?;
            let labels = labels(&y).map_err(|d| invalid(labels_path, d))?;
            if labels.len() != count {
                return Err(invalid(
                    labels_path,
                    format!(
                        "{} labels for the {count} samples of {}",
                        labels.len(),
                        path.display()
                    ),
                ));
            }
            labels
        }
        None if opts.unlabelled => Vec::new(),
        None => return Err(invalid(
            path,
            "a lone .npy holds no labels: give its labels as another .npy of integers (--labels)"
                .into(),
        )),
    };
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    finish(
        path,
        Found {
            train: Part {
                values,
                labels,
                count,
                name,
            },
            test: None,
            input_map: map,
            class_names: None,
            classes: None,
        },
        opts,
    )
}
