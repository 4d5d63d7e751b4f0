//! Locating and loading the four MNIST files from a directory.
//!
//! MNIST copies in the wild differ in naming: the original hyphenated names,
//! the same gzip-compressed, and a dotted variant (`train-images.idx3-ubyte`)
//! used by some mirrors and tools. Loading accepts all of them so users can
//! point at whatever they already have.

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::idx::{read_images, read_labels, Images, Labels};

/// File stem of the training images.
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
/// File stem of the training labels.
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
/// File stem of the test images.
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
/// File stem of the test labels.
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// Side length of an MNIST image.
pub const SIDE: usize = 28;
/// Number of classes; labels are `0..CLASSES`.
pub const CLASSES: u8 = 10;

/// The full MNIST data set.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// Training images (60,000 in the official set).
    pub train_images: Images,
    /// Training labels.
    pub train_labels: Labels,
    /// Test images (10,000 in the official set).
    pub test_images: Images,
    /// Test labels.
    pub test_labels: Labels,
}

/// Names tried for `stem`, in order of preference.
fn candidates(stem: &str) -> Vec<String> {
    let mut names = vec![stem.to_string(), format!("{stem}.gz")];
    // "train-images-idx3-ubyte" -> "train-images.idx3-ubyte"
    if let Some(pos) = stem.rfind("-idx") {
        let dotted = format!("{}.{}", &stem[..pos], &stem[pos + 1..]);
        names.push(dotted.clone());
        names.push(format!("{dotted}.gz"));
    }
    names
}

/// Finds the file for `stem` in `dir`: `stem`, `stem.gz`, or the dotted
/// variant (`train-images.idx3-ubyte`, optionally `.gz`), first match wins.
///
/// Fails with [`DataError::NotFound`] listing every name tried.
pub fn find_file(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let tried = candidates(stem);
    for name in &tried {
        let path = dir.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    Err(DataError::NotFound {
        dir: dir.to_path_buf(),
        tried,
    })
}

/// Loads all four MNIST files from `dir` (see [`find_file`] for names).
///
/// Checks that images are 28x28, that each image file and its label file
/// agree on the count, and that labels are digits 0..=9. Smaller subsets
/// of MNIST are accepted.
///
/// # Examples
///
/// ```
/// use bnn_data::idx::{write_images, write_labels, Images, Labels};
/// use bnn_data::mnist;
///
/// // A two-image stand-in for MNIST, under its file names.
/// let dir = tempfile::tempdir()?;
/// let images = Images { count: 2, rows: 28, cols: 28, pixels: vec![7; 2 * 784] };
/// let labels = Labels { labels: vec![3, 9] };
/// for (i, l) in [(mnist::TRAIN_IMAGES, mnist::TRAIN_LABELS), (mnist::TEST_IMAGES, mnist::TEST_LABELS)] {
///     write_images(&dir.path().join(i), &images)?;
///     write_labels(&dir.path().join(l), &labels)?;
/// }
/// let data = mnist::load(dir.path())?;
/// assert_eq!(data.test_images.count, 2);
/// assert_eq!(data.train_labels.labels, [3, 9]);
///
/// // Without its files, a directory is an error that lists the names tried.
/// let empty = tempfile::tempdir()?;
/// let e = mnist::load(empty.path()).unwrap_err();
/// assert!(matches!(e, bnn_data::DataError::NotFound { .. }), "{e}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`DataError::NotFound`] when a file is missing, and the reader's error,
/// naming the file, when one cannot be read or breaks a check above.
pub fn load(dir: &Path) -> Result<Mnist, DataError> {
    let (train_images, train_labels) = load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)?;
    let (test_images, test_labels) = load_pair(dir, TEST_IMAGES, TEST_LABELS)?;
    Ok(Mnist {
        train_images,
        train_labels,
        test_images,
        test_labels,
    })
}

/// Loads only the test set, with the same checks as [`load`]; enough for
/// evaluation and much faster than loading the training set too.
pub fn load_test(dir: &Path) -> Result<(Images, Labels), DataError> {
    load_pair(dir, TEST_IMAGES, TEST_LABELS)
}

/// Loads only the training set, with the same checks as [`load`].
pub fn load_train(dir: &Path) -> Result<(Images, Labels), DataError> {
    load_pair(dir, TRAIN_IMAGES, TRAIN_LABELS)
}

fn load_pair(dir: &Path, images: &str, labels: &str) -> Result<(Images, Labels), DataError> {
    let images_path = find_file(dir, images)?;
    let labels_path = find_file(dir, labels)?;
    let imgs = read_images(&images_path)?;
    if imgs.rows != SIDE || imgs.cols != SIDE {
        return Err(DataError::BadDimensions {
            path: images_path,
            what: "IDX image file",
            detail: format!(
                "MNIST images must be {SIDE}x{SIDE}, found {}x{}",
                imgs.rows, imgs.cols
            ),
        });
    }
    let labs = read_labels(&labels_path)?;
    if labs.labels.len() != imgs.count {
        return Err(DataError::CountMismatch {
            images_path,
            labels_path,
            images: imgs.count,
            labels: labs.labels.len(),
        });
    }
    if let Some((index, &value)) = labs.labels.iter().enumerate().find(|(_, &l)| l >= CLASSES) {
        return Err(DataError::BadLabel {
            path: labels_path,
            index,
            value,
        });
    }
    Ok((imgs, labs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_variant_moves_only_the_last_hyphen() {
        assert_eq!(
            candidates(TRAIN_IMAGES),
            [
                "train-images-idx3-ubyte",
                "train-images-idx3-ubyte.gz",
                "train-images.idx3-ubyte",
                "train-images.idx3-ubyte.gz",
            ]
        );
    }
}
