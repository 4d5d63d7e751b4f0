//! CIFAR-10 and CIFAR-100 in their binary versions (`cifar-10-binary.tar.gz`
//! and `cifar-100-binary.tar.gz`, unpacked):
//!
//! * CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (training; the ones
//!   present, from 1 without a gap) and `test_batch.bin`, each record one
//!   label byte (0..=9) and 3072 bytes: the 32×32 red plane, then green,
//!   then blue. Optional `batches.meta.txt` names the 10 classes, a line
//!   each.
//! * CIFAR-100: `train.bin` and `test.bin`, each record a coarse label
//!   byte (0..=19), a fine label byte (0..=99, the label used) and the same
//!   3072 bytes. Optional `fine_label_names.txt` names the 100 classes.
//!
//! Images are read into HWC order (32×32×3). A file that is not a whole
//! number of records is an error naming the record cut off.

use std::path::Path;

use super::MAX_VALUES;
use super::{finish, invalid, read_file, Found, LabelledSet, Part, SourceOptions, Values};
use crate::error::DataError;

const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE * 3;

/// Which of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Cifar10,
    Cifar100,
}

impl Kind {
    /// Label bytes before the pixels of a record.
    fn label_bytes(self) -> usize {
        match self {
            Kind::Cifar10 => 1,
            Kind::Cifar100 => 2,
        }
    }

    fn record(self) -> usize {
        self.label_bytes() + PIXELS
    }

    fn classes(self) -> usize {
        match self {
            Kind::Cifar10 => 10,
            Kind::Cifar100 => 100,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Cifar10 => "CIFAR-10",
            Kind::Cifar100 => "CIFAR-100",
        }
    }

    fn names_file(self) -> &'static str {
        match self {
            Kind::Cifar10 => "batches.meta.txt",
            Kind::Cifar100 => "fine_label_names.txt",
        }
    }
}

/// Which CIFAR `dir` holds, from its file names.
pub(super) fn recognise(dir: &Path) -> Option<Kind> {
    let has = |name: &str| dir.join(name).exists();
    if has("data_batch_1.bin") || has("test_batch.bin") {
        Some(Kind::Cifar10)
    } else if has("train.bin") || has("test.bin") {
        Some(Kind::Cifar100)
    } else {
        None
    }
}

/// The records of one file: pixels in HWC order and labels, checked.
/// `left` values may still be read.
fn read_batch(path: &Path, kind: Kind, left: u64) -> Result<(Vec<u8>, Vec<u16>), DataError> {
    let record = kind.record();
    // Records that fit in what is left, plus one to notice more.
    let limit = (left / PIXELS as u64 + 1) * record as u64;
    let bytes = read_file(path, limit, &format!("{} batch", kind.name())).map_err(|e| match e {
        DataError::Invalid { path, detail } if detail.starts_with("larger") => DataError::Invalid {
            path,
            detail: format!(
                "more than the {MAX_VALUES} pixels accepted in all (records of {record} bytes)"
            ),
        },
        other => other,
    })?;
    if bytes.is_empty() {
        return Err(invalid(path, "holds no records".into()));
    }
    let rem = bytes.len() % record;
    if rem != 0 {
        let n = bytes.len() / record;
        return Err(invalid(
            path,
            format!(
                "{} bytes is not a whole number of {record}-byte {} records: record {n} (from byte {}) is cut off after {rem} bytes",
                bytes.len(),
                kind.name(),
                n * record
            ),
        ));
    }
    let count = bytes.len() / record;
    if (count * PIXELS) as u64 > left {
        return Err(invalid(
            path,
            format!("{count} records: more than the {MAX_VALUES} pixels accepted in all"),
        ));
    }
    let mut pixels = Vec::with_capacity(count * PIXELS);
    let mut labels = Vec::with_capacity(count);
    let plane = SIDE * SIDE;
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let (label, coarse) = match kind {
            Kind::Cifar10 => (rec[0], None),
            Kind::Cifar100 => (rec[1], Some(rec[0])),
        };
        if let Some(c) = coarse.filter(|&c| c >= 20) {
            return Err(invalid(
                path,
                format!("record {i}: coarse label {c} is not a class 0..=19"),
            ));
        }
        if usize::from(label) >= kind.classes() {
            return Err(invalid(
                path,
                format!(
                    "record {i}: label {label} is not a class 0..={}",
                    kind.classes() - 1
                ),
            ));
        }
        labels.push(u16::from(label));
        let img = &rec[kind.label_bytes()..];
        for p in 0..plane {
            pixels.extend_from_slice(&[img[p], img[plane + p], img[2 * plane + p]]);
        }
    }
    Ok((pixels, labels))
}

/// The class names in `dir/names_file`, when the file is there: one a line,
/// as many as the classes.
fn class_names(dir: &Path, kind: Kind) -> Result<Option<Vec<String>>, DataError> {
    let path = dir.join(kind.names_file());
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_file(&path, 1 << 16, "class names file")?;
    let text = String::from_utf8(bytes).map_err(|_| invalid(&path, "is not UTF-8 text".into()))?;
    // `batches.meta.txt` ends with blank lines.
    let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    while names.last().is_some_and(String::is_empty) {
        names.pop();
    }
    if names.len() != kind.classes() {
        return Err(invalid(
            &path,
            format!(
                "holds {} class names, {} has {}",
                names.len(),
                kind.name(),
                kind.classes()
            ),
        ));
    }
    super::arrays::check_names(&names).map_err(|d| invalid(&path, d))?;
    Ok(Some(names))
}

fn part(dir: &Path, files: &[String], kind: Kind, left: u64) -> Result<Part, DataError> {
    let (mut values, mut labels) = (Vec::new(), Vec::new());
    for name in files {
        let used = values.len() as u64;
        let (v, l) = read_batch(&dir.join(name), kind, left - used)?;
        values.extend_from_slice(&v);
        labels.extend_from_slice(&l);
    }
    Ok(Part {
        count: labels.len(),
        values: Values::U8(values),
        labels,
        name: files.join(", "),
    })
}

/// Reads the directory (see the module documentation).
pub(super) fn read(dir: &Path, kind: Kind) -> Result<LabelledSet, DataError> {
    let (train_files, test_file) = match kind {
        Kind::Cifar10 => {
            let present: Vec<bool> = (1..=5)
                .map(|k| dir.join(format!("data_batch_{k}.bin")).exists())
                .collect();
            let n = present.iter().take_while(|&&p| p).count();
            if let Some(later) = present.iter().skip(n).position(|&p| p) {
                return Err(invalid(
                    dir,
                    format!(
                        "data_batch_{}.bin is missing but data_batch_{}.bin is there",
                        n + 1,
                        n + later + 1
                    ),
                ));
            }
            let files: Vec<String> = (1..=n).map(|k| format!("data_batch_{k}.bin")).collect();
            (files, "test_batch.bin")
        }
        Kind::Cifar100 => (vec!["train.bin".to_string()], "test.bin"),
    };
    if train_files.is_empty() || !dir.join(&train_files[0]).exists() {
        let first = match kind {
            Kind::Cifar10 => "data_batch_1.bin",
            Kind::Cifar100 => "train.bin",
        };
        return Err(invalid(
            dir,
            format!(
                "holds {test_file} but no training batch {first}: {} needs both",
                kind.name()
            ),
        ));
    }
    let class_names = class_names(dir, kind)?;
    let train = part(dir, &train_files, kind, MAX_VALUES)?;
    let test = if dir.join(test_file).exists() {
        let left = MAX_VALUES - train.values.len() as u64;
        Some(part(dir, &[test_file.to_string()], kind, left)?)
    } else {
        None
    };
    finish(
        dir,
        Found {
            train,
            test,
            input_map: (SIDE, SIDE, 3),
            class_names,
            classes: Some(kind.classes()),
        },
        &SourceOptions::default(),
    )
}
