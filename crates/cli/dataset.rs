//! The user's own data for `bnn train` and `bnn eval`: any source that
//! [`bnn_data::labelled::open`] recognises (a `.npz`, `.npy` or `.csv`
//! file, a directory of IDX files, of CIFAR batches or of class folders),
//! made into what the trainer and the engine take.
//!
//! The splitting and encoding are [`bnn_train::prepare`]'s, which Python
//! shares; this module reads the files and words the errors for the
//! command line.

use std::path::{Path, PathBuf};

use anyhow::Context;
use bnn_data::labelled::{self, SourceOptions};
use bnn_train::prepare::{Encoding, PrepareOptions, Prepared};
use bnn_train::TrainError;

use crate::UsageError;

/// How a source is read: what its shape alone cannot say.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// Labels for a .npy --data: a .npy of integers, one per row.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// The label column of a CSV --data (default: the last column).
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
    /// .npy and .npz images are (N, C, H, W), not (N, H, W, C).
    #[arg(long)]
    pub channels_first: bool,
}

impl SourceArgs {
    pub fn options(&self, channels: Option<usize>, unlabelled: bool) -> SourceOptions {
        SourceOptions {
            labels: self.labels.clone(),
            label_column: self.label_column.clone(),
            channels_first: self.channels_first,
            channels,
            unlabelled,
        }
    }

    /// The first of these flags given, for commands that read MNIST only.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--labels", self.labels.is_some()),
            ("--label-column", self.label_column.is_some()),
            ("--channels-first", self.channels_first),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }

    /// Files the source reads besides `--data` itself.
    pub fn files(&self) -> Vec<PathBuf> {
        self.labels.iter().cloned().collect()
    }
}

/// How `bnn train` splits and encodes the user's data.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SplitArgs {
    /// Test set: another source of the same shape (default: the data's own
    /// test split, else a stratified fifth of the data, held out).
    #[arg(long, value_name = "PATH")]
    pub test: Option<PathBuf>,
    /// Validation set: another source of the same shape (default: a
    /// stratified share of the training set, --val-split).
    #[arg(long, value_name = "PATH")]
    pub val: Option<PathBuf>,
    /// Fraction of the training set held out for validation, stratified by
    /// class, above 0 and below 1 (default 0.1 for your data; MNIST keeps
    /// --validation 5000).
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub val_split: Option<f64>,
    /// How float features become engine input: u8 (each feature scaled
    /// min-max to 0..=255 on the training set, then a u8 first layer) or
    /// thermometer[:K] (K bits per feature, from K quantile cut points of
    /// the training set, then a binary first layer; K defaults to 8).
    /// Stored in the model.
    #[arg(long, value_name = "ENCODING")]
    pub encoding: Option<Encoding>,
    /// Class names, one per line, in label order (default: the data's own,
    /// from folder names, CSV strings or a .npz's class_names).
    #[arg(long, value_name = "FILE")]
    pub class_names: Option<PathBuf>,
}

impl SplitArgs {
    /// The first of these flags given, for a run on MNIST.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            ("--test", self.test.is_some()),
            ("--val", self.val.is_some()),
            ("--val-split", self.val_split.is_some()),
            ("--encoding", self.encoding.is_some()),
            ("--class-names", self.class_names.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// Options that do not fit the data are usage errors (exit 2); data that
/// do not fit together are errors of the file (exit 1).
fn at(path: &Path) -> impl Fn(TrainError) -> anyhow::Error + '_ {
    move |e| match e {
        TrainError::Config(m) => UsageError(format!("{}: {m}", path.display())).into(),
        TrainError::Data(m) => anyhow::anyhow!("{}: {m}", path.display()),
        other => anyhow::anyhow!("{}: {other}", path.display()),
    }
}

/// Data that do not fit the model named on the command line (its classes,
/// its input): a usage error (exit 2), the data and the model each being
/// fine on their own.
pub fn misfit(path: &Path) -> impl Fn(TrainError) -> anyhow::Error + '_ {
    move |e| match e {
        TrainError::Config(m) | TrainError::Data(m) => {
            UsageError(format!("{}: {m}", path.display())).into()
        }
        other => anyhow::anyhow!("{}: {other}", path.display()),
    }
}

/// Reads `path` (and `--test`) and splits, encodes and names it for
/// training. `seed` draws the stratified splits; `validation_given` is
/// `--validation N`.
pub fn prepare(
    path: &Path,
    source: &SourceArgs,
    split: &SplitArgs,
    validation_given: bool,
    seed: u64,
) -> anyhow::Result<Prepared> {
    let set = labelled::open(path, &source.options(None, false))?;
    let test = match &split.test {
        Some(test) => Some(labelled::open(test, &source.options(None, false))?),
        None => None,
    };
    let validation = match &split.val {
        Some(val) => Some(labelled::open(val, &source.options(None, false))?),
        None => None,
    };
    let class_names = match &split.class_names {
        Some(file) => Some(read_class_names(file)?),
        None => None,
    };
    let options = PrepareOptions {
        val_split: split.val_split,
        fixed_validation: validation_given,
        encoding: split.encoding,
        class_names,
        seed,
    };
    bnn_train::prepare::prepare(set, test, validation, &options).map_err(at(path))
}

/// Samples of the user's data made into what `model` takes: its test
/// split where it has one, else all of it; float features through the
/// model's stored encoding; labels as the model's classes (by name where
/// both have names).
pub fn for_model(
    path: &Path,
    source: &SourceArgs,
    model: &bnn_core::Model,
    model_path: &Path,
) -> anyhow::Result<(Vec<u8>, Vec<u16>)> {
    let set = labelled::open(path, &source.options(model_channels(model), false))?;
    let samples = set.test.unwrap_or(set.train);
    let against = format!("model {}", model_path.display());
    let samples = bnn_train::prepare::align_labels(
        samples,
        set.class_names.as_deref(),
        model.class_names(),
        model.num_classes(),
        &against,
    )
    .map_err(misfit(path))?;
    let pixels = bnn_train::prepare::values_for_model(samples.values, set.input_map, model)
        .map_err(misfit(path))?;
    Ok((pixels, samples.labels))
}

/// The channels `model` takes, for image folders: grey or colour where
/// its input is an image of either, else what the images hold.
pub fn model_channels(model: &bnn_core::Model) -> Option<usize> {
    let shape = model.input_shape();
    match model.feature_encoding() {
        None if !shape.is_flat() && matches!(shape.channels, 1 | 3) => {
            Some(shape.channels as usize)
        }
        _ => None,
    }
}

/// The name of the last column in the header of the CSV at `path`, where
/// the first 64 KiB hold a whole first line: the label column a CSV of
/// labelled samples has by default.
pub fn last_csv_column(path: &Path) -> Option<String> {
    let mut head = Vec::new();
    let mut file = std::fs::File::open(path).ok()?;
    bnn_io::read::read_bounded(&mut file, 1 << 16, &mut head).ok()?;
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let last = line.rsplit(',').next()?.trim().trim_matches('"');
    (!last.is_empty()).then(|| last.to_string())
}

/// Most bytes of a `--class-names` file: 65,535 names of 256 bytes.
const MAX_NAMES_FILE: u64 = 65_535 * 257;

/// `--class-names FILE`: one name per line, blank lines skipped.
pub fn read_class_names(file: &Path) -> anyhow::Result<Vec<String>> {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(file)
        .and_then(|mut f| bnn_io::read::read_bounded(&mut f, MAX_NAMES_FILE, &mut bytes))
        .with_context(|| format!("{}: cannot read class names", file.display()))?;
    if read > MAX_NAMES_FILE {
        return Err(UsageError(format!(
            "{}: over {MAX_NAMES_FILE} bytes, more than 65,535 class names hold",
            file.display()
        ))
        .into());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (byte {})",
            file.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect())
}
