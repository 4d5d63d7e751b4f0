//! The user's own labelled data sets, behind one interface: [`open`] takes
//! a path, recognises the source by its content (the extension only breaks
//! a tie) and gives a [`LabelledSet`] of samples, labels and classes.
//!
//! Sources (see `docs/DATA.md` for the layouts and every error):
//!
//! * a `.npz` of arrays (`x_train`, `y_train`, `x_test`, `y_test` as Keras
//!   names them, or `x`, `y`), optionally with `class_names`;
//! * a lone `.npy` of images or features, its labels in another `.npy`
//!   ([`SourceOptions::labels`]);
//! * a CSV file of numeric feature columns and a label column;
//! * a directory of IDX files named as MNIST's are, of any image size and
//!   channel count;
//! * a directory of CIFAR-10 or CIFAR-100 binary batches;
//! * a directory of class folders of PNG or PGM images (torchvision's
//!   `ImageFolder`, Keras' `image_dataset_from_directory`), optionally split
//!   into `train/` and `test/`.
//!
//! Every reader checks sizes from headers before allocating, refuses more
//! than [`MAX_VALUES`] values in all, and reports each problem as a
//! one-line [`DataError`] naming the file and the place in it.

mod arrays;
mod cifar;
mod csv;
mod folder;
mod idx_dir;

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Most values (pixels or features) a data set may hold, train and test
/// together: 2^31, 2 GiB of `u8` or 8 GiB of `f32`.
pub const MAX_VALUES: u64 = 1 << 31;

/// Most classes: labels are `u16`, and one value is left over so that the
/// count itself fits.
pub const MAX_CLASSES: usize = 65535;

/// Sample values, row-major: `count * input_len` of them.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Pixels or byte features.
    U8(Vec<u8>),
    /// Float features, every one finite.
    F32(Vec<f32>),
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::U8(v) => v.len(),
            Values::F32(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of samples `indices`, each `input_len` values, in order.
    ///
    /// # Panics
    /// If an index is past the last sample.
    pub fn select(&self, indices: &[usize], input_len: usize) -> Values {
        fn pick<T: Copy>(v: &[T], indices: &[usize], n: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(indices.len() * n);
            for &i in indices {
                out.extend_from_slice(&v[i * n..(i + 1) * n]);
            }
            out
        }
        match self {
            Values::U8(v) => Values::U8(pick(v, indices, input_len)),
            Values::F32(v) => Values::F32(pick(v, indices, input_len)),
        }
    }
}

/// Samples and their labels, one label per sample; no labels at all when
/// the set was opened [`SourceOptions::unlabelled`] and had none.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    /// Every sample's values back to back, `input_len` each, HWC order.
    pub values: Values,
    /// Class index of each sample, below the set's `classes`; empty for
    /// an unlabelled set.
    pub labels: Vec<u16>,
}

impl Samples {
    /// Number of samples of `input_len` values each.
    pub fn count(&self, input_len: usize) -> usize {
        self.values.len().checked_div(input_len).unwrap_or(0)
    }

    /// Samples `indices` (e.g. one side of [`stratified_split`]), with
    /// their labels when there are labels.
    ///
    /// # Panics
    /// If an index is past the last sample.
    pub fn select(&self, indices: &[usize], input_len: usize) -> Samples {
        Samples {
            values: self.values.select(indices, input_len),
            labels: if self.labels.is_empty() {
                Vec::new()
            } else {
                indices.iter().map(|&i| self.labels[i]).collect()
            },
        }
    }
}

/// A data set as one source gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelledSet {
    /// Every sample, or the training split when the source has its own.
    pub train: Samples,
    /// The source's own test split when it has one.
    pub test: Option<Samples>,
    /// Height, width and channels of a sample, in HWC order; feature
    /// vectors are `(1, D, 1)`. Every side is at least 1.
    pub input_map: (usize, usize, usize),
    /// `class_names.len()` when there are names; else the format's own
    /// count (CIFAR: 10 or 100); else 1 + the largest label. 2..=65535,
    /// except for an unlabelled set without labels or names, where it is 0.
    pub classes: usize,
    /// Names of classes `0..classes`, when the source gives them (folder
    /// names, CSV string labels, `class_names`, CIFAR's meta files).
    pub class_names: Option<Vec<String>>,
}

impl LabelledSet {
    /// Values per sample: `H * W * C`.
    pub fn input_len(&self) -> usize {
        let (h, w, c) = self.input_map;
        h * w * c
    }
}

/// What the path alone does not say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceOptions {
    /// Labels in a `.npy` of integers, for a lone `.npy` of samples.
    pub labels: Option<PathBuf>,
    /// The CSV column holding the labels; by default the last one.
    pub label_column: Option<String>,
    /// `(N, C, H, W)` arrays (PyTorch's order), transposed to HWC.
    pub channels_first: bool,
    /// Image folders: `Some(1)` grey, `Some(3)` RGB; `None` RGB when any
    /// image is colour, else grey.
    pub channels: Option<usize>,
    /// Samples without labels are accepted (for classifying): a CSV without
    /// its label column, a `.npz` without `y`, a lone `.npy`. A CSV's label
    /// column is then only the one named by `label_column`, when the header
    /// has it. Labels are empty when absent, and an empty set is no error.
    pub unlabelled: bool,
}

/// Whether `path` is the user's data rather than MNIST's directory: a
/// file, or a directory that holds entries, among them no file named as
/// MNIST's (`train-…`, `t10k-…`) unless its training images are IDX of
/// another shape (`…idx4…`, or not 28×28). A missing or empty directory is
/// MNIST's, which a fetch fills; a broken MNIST file gets MNIST's errors.
///
/// `bnn train --data`, `bnn eval --data` and Python's `bnn.train(data=...)`
/// decide with it which reader to use.
pub fn is_users(path: &Path) -> bool {
    if path.is_file() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let names: Vec<String> = entries
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().to_ascii_lowercase()))
        .collect();
    if names.is_empty() {
        return false;
    }
    let named = |n: &String| n.starts_with("train-") || n.starts_with("t10k-");
    if !names.iter().any(named) {
        return true;
    }
    if names.iter().any(|n| named(n) && n.contains("idx4")) {
        return true;
    }
    // An IDX data set of the user's has its training images (a directory
    // of MNIST's test files alone is MNIST's, and its errors name them).
    crate::mnist::find_file(path, crate::mnist::TRAIN_IMAGES)
        .ok()
        .and_then(|file| crate::idx::ImageStream::open(&file).ok())
        .is_some_and(|s| (s.rows(), s.cols()) != (28, 28))
}

/// Opens the data set at `path`, recognising the source by its content: a
/// directory of IDX files, of CIFAR batches or of class folders; a file
/// that is a zip (`.npz`), a `.npy` array, or text (CSV). The extension
/// only decides between CSV and an unrecognised binary file.
///
/// # Examples
///
/// ```
/// use bnn_data::labelled::{open, SourceOptions};
///
/// let dir = tempfile::tempdir()?;
/// let csv = dir.path().join("points.csv");
/// std::fs::write(&csv, "x,y,label\n0.5,1.0,0\n2.0,0.25,1\n1.5,3.0,1\n")?;
/// let set = open(&csv, &SourceOptions::default())?;
/// assert_eq!(set.input_map, (1, 2, 1));
/// assert_eq!(set.classes, 2);
/// assert_eq!(set.train.labels, [0, 1, 1]);
///
/// let e = open(&dir.path().join("missing.csv"), &SourceOptions::default()).unwrap_err();
/// assert!(e.to_string().contains("missing.csv"), "{e}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// A [`DataError`] naming the file (and the place in it, where there is
/// one) when the path cannot be read, is no source this reader knows, or
/// holds samples or labels that do not fit together.
pub fn open(path: &Path, opts: &SourceOptions) -> Result<LabelledSet, DataError> {
    let meta = std::fs::metadata(path).map_err(|e| DataError::io(path, "opening", e))?;
    if meta.is_dir() {
        if let Some(kind) = cifar::recognise(path) {
            return cifar::read(path, kind);
        }
        if idx_dir::recognise(path) {
            return idx_dir::read(path);
        }
        return folder::read(path, opts);
    }
    let mut head = [0u8; 512];
    let got = {
        let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
        bnn_io::read::read_full(&mut file, &mut head)
            .map_err(|e| DataError::io(path, "reading", e))?
    };
    let head = &head[..got];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return arrays::read_npz(path, opts);
    }
    if head.starts_with(b"\x93NUMPY") {
        return arrays::read_npy(path, opts);
    }
    if let Some(what) = head
        .first_chunk::<4>()
        .and_then(|m| crate::idx::describe_magic(*m))
    {
        return Err(invalid(
            path,
            format!("{what}: give the directory that holds the IDX files (train-images-idx3-ubyte and its labels)"),
        ));
    }
    let csv_named = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if csv_named || looks_like_text(head) {
        return csv::read(path, opts);
    }
    Err(invalid(
        path,
        "not a .npz, a .npy or a CSV file (unrecognised first bytes), nor a directory \
         of IDX files, CIFAR batches or class folders"
            .into(),
    ))
}

/// Reads a `.npz` of samples and labels with the default options: the
/// `.npz` source of [`open`].
pub fn read_npz(path: &Path) -> Result<LabelledSet, DataError> {
    arrays::read_npz(path, &SourceOptions::default())
}

/// Whether the first bytes of a file read as text: UTF-8 (a character cut
/// at the end of the sample aside) without NUL or other control bytes than
/// tab, CR and LF.
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    valid
        && head
            .iter()
            .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\r' | b'\n'))
}

/// Splits samples by class: of each class's `n` samples, `⌊fraction·n⌉`
/// (rounded half up) are held out, chosen by a shuffle seeded with `seed`,
/// so the same labels, fraction and seed always give the same split. A
/// class of at least 2 samples gives at least 1 when `fraction > 0`, and,
/// when `fraction < 1`, keeps at least 1. Returns the (kept, held) indices,
/// each ascending. A fraction outside `0..=1` (or NaN) is taken as the
/// nearest end (NaN as 0).
pub fn stratified_split(labels: &[u16], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let mut by_class: Vec<Vec<usize>> = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        let l = usize::from(l);
        if by_class.len() <= l {
            by_class.resize_with(l + 1, Vec::new);
        }
        by_class[l].push(i);
    }
    let mut rng = SplitMix(seed);
    let (mut kept, mut held) = (Vec::new(), Vec::new());
    for members in &mut by_class {
        let n = members.len();
        let mut take = (fraction * n as f64 + 0.5).floor() as usize;
        if fraction > 0.0 && n >= 2 {
            take = take.max(1);
        }
        if fraction < 1.0 {
            take = take.min(n.saturating_sub(1));
        }
        take = take.min(n);
        // Fisher-Yates over the class, then the first `take` are held.
        for i in (1..n).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            members.swap(i, j);
        }
        held.extend_from_slice(&members[..take]);
        kept.extend_from_slice(&members[take..]);
    }
    kept.sort_unstable();
    held.sort_unstable();
    (kept, held)
}

/// SplitMix64: a small, well-mixed generator whose sequence is fixed by
/// its seed on every platform, which is all a reproducible split needs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The error for a problem at `path`; `detail` says where in it.
pub(crate) fn invalid(path: &Path, detail: String) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        detail,
    }
}

/// "28x28x3", for messages.
pub(crate) fn map_text((h, w, c): (usize, usize, usize)) -> String {
    format!("{h}x{w}x{c}")
}

/// A split as a reader found it, before the checks every source shares.
pub(crate) struct Part {
    pub(crate) values: Values,
    /// Empty when unlabelled and absent.
    pub(crate) labels: Vec<u16>,
    pub(crate) count: usize,
    /// Where it came from, for messages: "x_test", "test/", a file name.
    pub(crate) name: String,
}

/// What every reader hands to [`finish`].
pub(crate) struct Found {
    pub(crate) train: Part,
    pub(crate) test: Option<Part>,
    pub(crate) input_map: (usize, usize, usize),
    pub(crate) class_names: Option<Vec<String>>,
    /// The format's own class count (CIFAR), when it has one.
    pub(crate) classes: Option<usize>,
}

/// The checks every source shares: shapes, counts, labels against the
/// classes, the number of classes, and the total size.
pub(crate) fn finish(
    path: &Path,
    found: Found,
    opts: &SourceOptions,
) -> Result<LabelledSet, DataError> {
    let bad = |detail: String| invalid(path, detail);
    let (h, w, c) = found.input_map;
    if h == 0 || w == 0 || c == 0 {
        return Err(bad(format!(
            "samples of {}: every side must be at least 1",
            map_text(found.input_map)
        )));
    }
    let input_len = h * w * c;
    let parts: Vec<&Part> = std::iter::once(&found.train).chain(&found.test).collect();
    let mut total: u64 = 0;
    for part in &parts {
        total = total.saturating_add(part.values.len() as u64);
        if part.values.len() != part.count.saturating_mul(input_len) {
            return Err(bad(format!(
                "{}: {} values for {} samples of {}",
                part.name,
                part.values.len(),
                part.count,
                map_text(found.input_map)
            )));
        }
        let labelled = !part.labels.is_empty() || !opts.unlabelled;
        if labelled && part.labels.len() != part.count {
            return Err(bad(format!(
                "{}: {} labels for {} samples",
                part.name,
                part.labels.len(),
                part.count
            )));
        }
        if part.count == 0 && !opts.unlabelled {
            return Err(bad(format!("{}: holds no samples", part.name)));
        }
    }
    if total > MAX_VALUES {
        return Err(bad(format!(
            "{total} values in all, more than the {MAX_VALUES} accepted"
        )));
    }
    let largest = parts.iter().flat_map(|p| p.labels.iter()).copied().max();
    let classes = match (&found.class_names, found.classes) {
        (Some(names), _) => names.len(),
        (None, Some(n)) => n,
        (None, None) => largest.map_or(0, |l| usize::from(l) + 1),
    };
    if classes > MAX_CLASSES {
        return Err(bad(format!(
            "{classes} classes, more than the {MAX_CLASSES} accepted"
        )));
    }
    for part in &parts {
        if let Some(i) = part.labels.iter().position(|&l| usize::from(l) >= classes) {
            return Err(bad(format!(
                "{}: label {i} is {}, but there are {classes} classes",
                part.name, part.labels[i]
            )));
        }
    }
    let labelled = largest.is_some() || found.class_names.is_some();
    if classes < 2 && (labelled || !opts.unlabelled) {
        return Err(bad(format!(
            "{} class{}: a classifier needs at least 2 classes",
            classes,
            if classes == 1 { "" } else { "es" }
        )));
    }
    let samples = |p: Part| Samples {
        values: p.values,
        labels: p.labels,
    };
    Ok(LabelledSet {
        train: samples(found.train),
        test: found.test.map(samples),
        input_map: found.input_map,
        classes,
        class_names: found.class_names,
    })
}

/// All of a file's bytes, at most `limit`: a regular file's length is
/// checked before reading, a pipe's as it is read. `what` names the file's
/// role in the message ("CIFAR batch").
pub(crate) fn read_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
    let meta = file
        .metadata()
        .map_err(|e| DataError::io(path, "reading metadata", e))?;
    if meta.is_dir() {
        return Err(invalid(path, format!("is a directory, not a {what}")));
    }
    let too_large = || {
        invalid(
            path,
            format!("larger than the {limit} bytes accepted for a {what}"),
        )
    };
    if meta.is_file() && meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let n = bnn_io::read::read_bounded(&mut file, limit, &mut bytes)
        .map_err(|e| DataError::io(path, "reading", e))?;
    if n > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
