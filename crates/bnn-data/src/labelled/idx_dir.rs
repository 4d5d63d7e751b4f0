//! A directory of IDX files under MNIST's names (as [`crate::mnist`] finds
//! them: raw or `.gz`, hyphenated or dotted), of any image size: rank-3
//! files (`train-images-idx3-ubyte`, `N×H×W`) or rank-4 ones
//! (`train-images-idx4-ubyte`, `N×H×W×C`), with `u8` labels. The test
//! files (`t10k-…`) are optional; when the images are there, so must their
//! labels be.

use std::path::{Path, PathBuf};

use super::MAX_VALUES;
use super::{finish, invalid, map_text, Found, LabelledSet, Part, SourceOptions, Values};
use crate::error::DataError;
use crate::idx::{read_image_stack, read_labels};
use crate::mnist::{find_file, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

/// The rank-4 name of an image stem: `train-images-idx4-ubyte`.
fn rank4(stem: &str) -> String {
    stem.replace("idx3", "idx4")
}

/// The images of `stem` under its rank-3 or its rank-4 name, if either is
/// there.
fn find_images(dir: &Path, stem: &str) -> Option<PathBuf> {
    find_file(dir, stem)
        .or_else(|_| find_file(dir, &rank4(stem)))
        .ok()
}

/// Whether `dir` holds training images under an IDX name.
pub(super) fn recognise(dir: &Path) -> bool {
    find_images(dir, TRAIN_IMAGES).is_some()
}

/// Reads a split: its images, then its labels, checked against each other.
fn read_split(
    images: &Path,
    labels_stem: &str,
    dir: &Path,
    max: u64,
) -> Result<(Part, (usize, usize, usize)), DataError> {
    let stack = read_image_stack(images, max)?;
    let labels_path = find_file(dir, labels_stem)?;
    let labels = read_labels(&labels_path)?.labels;
    if labels.len() != stack.count {
        return Err(DataError::CountMismatch {
            images_path: images.to_path_buf(),
            labels_path,
            images: stack.count,
            labels: labels.len(),
        });
    }
    let name = images
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok((
        Part {
            values: Values::U8(stack.pixels),
            labels: labels.into_iter().map(u16::from).collect(),
            count: stack.count,
            name,
        },
        (stack.height, stack.width, stack.channels),
    ))
}

/// Reads the directory (see the module documentation).
pub(super) fn read(dir: &Path) -> Result<LabelledSet, DataError> {
    let Some(train_images) = find_images(dir, TRAIN_IMAGES) else {
        return Err(find_file(dir, TRAIN_IMAGES)
            .err()
            .unwrap_or_else(|| invalid(dir, "no training images".into())));
    };
    let (train, map) = read_split(&train_images, TRAIN_LABELS, dir, MAX_VALUES)?;
    let test = match find_images(dir, TEST_IMAGES) {
        Some(test_images) => {
            let left = MAX_VALUES - train.values.len() as u64;
            let (test, test_map) = read_split(&test_images, TEST_LABELS, dir, left)?;
            if test_map != map {
                return Err(invalid(
                    &test_images,
                    format!(
                        "holds images of {}, {} of {}",
                        map_text(test_map),
                        train.name,
                        map_text(map)
                    ),
                ));
            }
            Some(test)
        }
        None => None,
    };
    finish(
        dir,
        Found {
            train,
            test,
            input_map: map,
            class_names: None,
            classes: None,
        },
        &SourceOptions::default(),
    )
}
