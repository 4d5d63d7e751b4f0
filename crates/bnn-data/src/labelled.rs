//! Labelled data sets beyond MNIST: a `.npz` of images and labels, under
//! Keras' names (`x_train`, `y_train`, `x_test`, `y_test`, as
//! `keras.datasets` loaders give them and as `np.savez` writes them) or as
//! one set `x`, `y`.
//!
//! Images are `uint8` of shape `(N, H, W)`, `(N, H, W, C)` (channels last,
//! the order the engine reads) or `(N, D)` (a feature vector, `1×D×1`).
//! Labels are any integer dtype, one per image, in `0..256`; the classes are
//! `0..=` the largest label. Every mismatch is an error naming the file and
//! the array.

use std::path::Path;

use crate::error::DataError;
use crate::npz::{NpyArray, NpyData, NpzArchive};

/// Images of one shape, in HWC order, and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledImages {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

/// A data set as read from one file: a training set, the file's own test
/// set where it has one, the images' shape and the class count.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledSet {
    pub train: LabelledImages,
    pub test: Option<LabelledImages>,
    /// Height, width and channels of each image.
    pub input_map: (usize, usize, usize),
    /// One more than the largest label.
    pub classes: usize,
}

/// Reads a `.npz` of images and labels (see the module documentation).
pub fn read_npz(path: &Path) -> Result<LabelledSet, DataError> {
    let mut npz = NpzArchive::open(path)?;
    let bad = |detail: String| DataError::Npz {
        path: path.to_path_buf(),
        detail,
    };
    let (train_names, test_names) = if npz.contains("x_train") {
        (["x_train", "y_train"], Some(["x_test", "y_test"]))
    } else if npz.contains("x") {
        (["x", "y"], None)
    } else {
        let names: Vec<String> = npz.names().into_iter().take(8).collect();
        return Err(bad(format!(
            "holds no images: expected arrays x_train and y_train (Keras' names) or x and y, found {}",
            if names.is_empty() { "none".into() } else { names.join(", ") }
        )));
    };
    let (train, map) = read_pair(&mut npz, train_names)?;
    let test = match test_names {
        Some(names) if npz.contains(names[0]) => {
            let (test, test_map) = read_pair(&mut npz, names)?;
            if test_map != map {
                return Err(bad(format!(
                    "x_test holds images of {}, x_train of {}",
                    map_text(test_map),
                    map_text(map)
                )));
            }
            Some(test)
        }
        _ => None,
    };
    let largest = train
        .labels
        .iter()
        .chain(test.iter().flat_map(|t| &t.labels))
        .copied()
        .max()
        .unwrap_or(0);
    Ok(LabelledSet {
        train,
        test,
        input_map: map,
        classes: usize::from(largest) + 1,
    })
}

fn map_text((h, w, c): (usize, usize, usize)) -> String {
    format!("{h}x{w}x{c}")
}

/// Images `names[0]` and labels `names[1]`, checked against each other.
fn read_pair(
    npz: &mut NpzArchive,
    names: [&str; 2],
) -> Result<(LabelledImages, (usize, usize, usize)), DataError> {
    let [x_name, y_name] = names;
    let path = npz.path().to_path_buf();
    let bad = |array: &str, detail: String| DataError::NpzArray {
        path: path.clone(),
        array: array.to_string(),
        detail,
    };
    let x = npz.read(x_name)?;
    let (count, map) = match *x.shape.as_slice() {
        [n, d] => (n, (1, d, 1)),
        [n, h, w] => (n, (h, w, 1)),
        [n, h, w, c] => (n, (h, w, c)),
        _ => {
            return Err(bad(
                x_name,
                format!(
                    "shape of rank {}: images are (N, H, W), (N, H, W, C) or (N, D)",
                    x.shape.len()
                ),
            ))
        }
    };
    if map.0 == 0 || map.1 == 0 || map.2 == 0 {
        return Err(bad(x_name, "images of no values".into()));
    }
    let NpyData::U8(pixels) = x.data else {
        return Err(bad(
            x_name,
            format!(
                "dtype {}: images are uint8 (scale the values to 0..255 and convert with .astype(numpy.uint8))",
                x.data.dtype_name()
            ),
        ));
    };
    let y = npz.read(y_name)?;
    let labels = labels(&y).map_err(|d| bad(y_name, d))?;
    if labels.len() != count {
        return Err(bad(
            y_name,
            format!("{} labels for the {count} images of {x_name}", labels.len()),
        ));
    }
    if count == 0 {
        return Err(bad(x_name, "holds no images".into()));
    }
    Ok((LabelledImages { pixels, labels }, map))
}

/// A label array of any integer dtype, `(N,)` or `(N, 1)`, as bytes.
fn labels(y: &NpyArray) -> Result<Vec<u8>, String> {
    match *y.shape.as_slice() {
        [_] | [_, 1] => {}
        _ => return Err("labels are one integer per image, of shape (N,)".into()),
    }
    let values: Vec<i128> = match &y.data {
        NpyData::U8(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::I8(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::I16(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::I32(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::I64(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::U16(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::U32(v) => v.iter().map(|&l| i128::from(l)).collect(),
        NpyData::U64(v) => v.iter().map(|&l| i128::from(l)).collect(),
        other => return Err(format!("dtype {}: labels are integers", other.dtype_name())),
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            u8::try_from(l).map_err(|_| format!("label {i} is {l}, not a class 0..=255"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        let mut header = dict.into_bytes();
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(b' ');
        }
        header.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(data);
        out
    }

    fn npz(dir: &Path, entries: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
        use std::io::Write;
        let path = dir.join("data.npz");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, bytes) in entries {
            zip.start_file(
                format!("{name}.npy"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn i64s(v: &[i64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn keras_names_give_both_splits() {
        let dir = tempfile::tempdir().unwrap();
        let path = npz(
            dir.path(),
            &[
                ("x_train", npy("|u1", "(3, 2, 2)", &[1; 12])),
                ("y_train", npy("<i8", "(3,)", &i64s(&[0, 2, 1]))),
                ("x_test", npy("|u1", "(1, 2, 2)", &[9; 4])),
                ("y_test", npy("<i8", "(1,)", &i64s(&[4]))),
            ],
        );
        let set = read_npz(&path).unwrap();
        assert_eq!(set.input_map, (2, 2, 1));
        assert_eq!(set.classes, 5);
        assert_eq!(set.train.labels, [0, 2, 1]);
        assert_eq!(set.test.unwrap().pixels, [9; 4]);
    }

    #[test]
    fn x_and_y_are_one_set_and_features_are_flat() {
        let dir = tempfile::tempdir().unwrap();
        let path = npz(
            dir.path(),
            &[
                ("x", npy("|u1", "(2, 5)", &[7; 10])),
                ("y", npy("|u1", "(2,)", &[1, 0])),
            ],
        );
        let set = read_npz(&path).unwrap();
        assert_eq!((set.input_map, set.classes, set.test), ((1, 5, 1), 2, None));
    }

    #[test]
    fn mismatches_name_the_array() {
        let dir = tempfile::tempdir().unwrap();
        type Entries = Vec<(&'static str, Vec<u8>)>;
        let cases: [(Entries, &str); 5] = [
            (
                vec![
                    ("x", npy("<f8", "(1, 1)", &[0; 8])),
                    ("y", npy("|u1", "(1,)", &[0])),
                ],
                "array 'x': dtype float64: images are uint8",
            ),
            (
                vec![
                    ("x", npy("|u1", "(2, 1)", &[0; 2])),
                    ("y", npy("|u1", "(3,)", &[0; 3])),
                ],
                "array 'y': 3 labels for the 2 images of x",
            ),
            (
                vec![
                    ("x", npy("|u1", "(1, 1)", &[0])),
                    ("y", npy("<i8", "(1,)", &i64s(&[-1]))),
                ],
                "label 0 is -1, not a class",
            ),
            (
                vec![
                    ("x", npy("|u1", "(1, 1)", &[0])),
                    ("y", npy("<f4", "(1,)", &[0; 4])),
                ],
                "dtype float32: labels are integers",
            ),
            (
                vec![("weights", npy("|u1", "(1,)", &[0]))],
                "expected arrays x_train and y_train (Keras' names) or x and y, found weights",
            ),
        ];
        for (entries, says) in cases {
            let path = npz(dir.path(), &entries);
            let e = read_npz(&path).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("data.npz"), "{e}");
        }
    }
}
