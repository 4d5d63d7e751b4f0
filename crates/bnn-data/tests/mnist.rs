//! Finding and loading MNIST files under their various names.

use std::path::Path;

use bnn_data::idx::{write_images, write_labels, Images, Labels};
use bnn_data::mnist::{self, find_file, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use bnn_data::{fetch, DataError};
use bnn_testkit::expect::error as fails;
use bnn_testkit::files::{gzip, images, labels, write};

/// Writes a small MNIST-shaped set: raw train files, gzip test images under
/// the dotted name, raw dotted test labels.
fn small_set(dir: &Path, train: usize, test: usize) {
    write_images(&dir.join(TRAIN_IMAGES), &images(train, 28, 28, 1)).unwrap();
    write_labels(&dir.join(TRAIN_LABELS), &labels(train, 2)).unwrap();
    let tmp = dir.join("tmp");
    write_images(&tmp, &images(test, 28, 28, 3)).unwrap();
    write(
        &dir.join("t10k-images.idx3-ubyte.gz"),
        &gzip(&std::fs::read(&tmp).unwrap()),
    );
    std::fs::remove_file(&tmp).unwrap();
    write_labels(&dir.join("t10k-labels.idx1-ubyte"), &labels(test, 4)).unwrap();
}

#[test]
fn find_file_accepts_gz_and_dotted_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = fails(find_file(d, TRAIN_IMAGES));
    let m = e.to_string();
    assert!(matches!(e, DataError::NotFound { .. }), "{m}");
    assert!(m.starts_with(&d.display().to_string()), "{m}");
    for name in [
        "train-images-idx3-ubyte",
        "train-images-idx3-ubyte.gz",
        "train-images.idx3-ubyte",
        "train-images.idx3-ubyte.gz",
    ] {
        assert!(m.contains(name), "{m} lacks {name}");
    }

    write(&d.join("train-images.idx3-ubyte.gz"), b"");
    assert_eq!(
        find_file(d, TRAIN_IMAGES).unwrap(),
        d.join("train-images.idx3-ubyte.gz")
    );
    write(&d.join("train-images.idx3-ubyte"), b"");
    assert_eq!(
        find_file(d, TRAIN_IMAGES).unwrap(),
        d.join("train-images.idx3-ubyte")
    );
    write(&d.join("train-images-idx3-ubyte.gz"), b"");
    assert_eq!(
        find_file(d, TRAIN_IMAGES).unwrap(),
        d.join("train-images-idx3-ubyte.gz")
    );
    write(&d.join("train-images-idx3-ubyte"), b"");
    assert_eq!(
        find_file(d, TRAIN_IMAGES).unwrap(),
        d.join("train-images-idx3-ubyte")
    );
    // A directory with the right name is not a file.
    std::fs::create_dir(d.join("t10k-labels-idx1-ubyte")).unwrap();
    let e = fails(find_file(d, TEST_LABELS));
    assert!(matches!(e, DataError::NotFound { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "{}: file not found; tried t10k-labels-idx1-ubyte, t10k-labels-idx1-ubyte.gz, \
             t10k-labels.idx1-ubyte, t10k-labels.idx1-ubyte.gz",
            d.display()
        )
    );
}

#[test]
fn load_mixed_names_and_compression() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path(), 12, 5);
    let m = mnist::load(dir.path()).unwrap();
    assert_eq!(m.train_images, images(12, 28, 28, 1));
    assert_eq!(m.train_labels, labels(12, 2));
    assert_eq!(m.test_images, images(5, 28, 28, 3));
    assert_eq!(m.test_labels, labels(5, 4));
    let (ti, tl) = mnist::load_test(dir.path()).unwrap();
    assert_eq!((ti.count, tl.labels.len()), (5, 5));
}

#[test]
fn load_test_does_not_need_training_files() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path(), 3, 4);
    std::fs::remove_file(dir.path().join(TRAIN_IMAGES)).unwrap();
    let (ti, tl) = mnist::load_test(dir.path()).unwrap();
    assert_eq!(ti, images(4, 28, 28, 3));
    assert_eq!(tl, labels(4, 4));
    let e = fails(mnist::load(dir.path()));
    assert!(e.to_string().contains(TRAIN_IMAGES), "{e}");
}

#[test]
fn count_mismatch_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path(), 12, 5);
    write_labels(&dir.path().join(TRAIN_LABELS), &labels(11, 2)).unwrap();
    let e = fails(mnist::load(dir.path()));
    let m = e.to_string();
    assert!(
        matches!(
            e,
            DataError::CountMismatch {
                images: 12,
                labels: 11,
                ..
            }
        ),
        "{m}"
    );
    assert!(m.contains(TRAIN_IMAGES) && m.contains(TRAIN_LABELS), "{m}");
}

#[test]
fn images_must_be_28x28() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path(), 2, 2);
    std::fs::remove_file(dir.path().join("t10k-images.idx3-ubyte.gz")).unwrap();
    write_images(&dir.path().join(TEST_IMAGES), &images(2, 28, 27, 9)).unwrap();
    let e = fails(mnist::load_test(dir.path()));
    let m = e.to_string();
    assert!(matches!(e, DataError::BadDimensions { .. }), "{m}");
    assert!(
        m.contains("28x28") && m.contains("28x27") && m.contains(TEST_IMAGES),
        "{m}"
    );
}

#[test]
fn labels_must_be_digits() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path(), 2, 3);
    let lp = dir.path().join("t10k-labels.idx1-ubyte");
    write_labels(
        &lp,
        &Labels {
            labels: vec![1, 10, 3],
        },
    )
    .unwrap();
    let e = fails(mnist::load_test(dir.path()));
    assert!(
        matches!(
            e,
            DataError::BadLabel {
                index: 1,
                value: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with(&lp.display().to_string()), "{e}");
}

/// The real MNIST in the workspace's `data/mnist` (fetched by
/// `scripts/test`): checksums, counts and known labels.
#[test]
fn real_mnist() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = bnn_testkit::paths::mnist_dir();
    fetch::verify(&dir).unwrap();
    let m = mnist::load(&dir).unwrap();
    assert_eq!(m.train_images.count, 60_000);
    assert_eq!(m.test_images.count, 10_000);
    assert_eq!(m.train_labels.labels.len(), 60_000);
    // Known first labels of the official files.
    assert_eq!(&m.train_labels.labels[..5], &[5, 0, 4, 1, 9]);
    assert_eq!(&m.test_labels.labels[..5], &[7, 2, 1, 0, 4]);
    let mut counts = [0usize; 10];
    for &l in &m.test_labels.labels {
        counts[l as usize] += 1;
    }
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    // The streaming reader agrees with the whole-file reader on real data.
    let mut s = bnn_data::idx::ImageStream::open(&dir.join(TEST_IMAGES)).unwrap();
    let mut buf = Vec::new();
    let mut all = Vec::new();
    while s.next_chunk(999, &mut buf).unwrap() > 0 {
        all.extend_from_slice(&buf);
    }
    assert_eq!(all, m.test_images.pixels);
    let _: &Images = &m.test_images;
}
