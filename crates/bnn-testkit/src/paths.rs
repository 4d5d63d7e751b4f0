//! The repository's own files the tests read: the shipped models, the
//! seed's weights and MNIST. A missing one fails the test with the command
//! that restores it.

use std::path::{Path, PathBuf};

use bnn_core::Model;
use bnn_data::idx::Images;

/// The workspace root, which `weights/` and `data/` are relative to.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// The shipped seed model.
pub fn seed_model() -> PathBuf {
    shipped(root().join("weights/seed.bnn"))
}

/// The seed project's NumPy weights, shipped byte-identical.
pub fn seed_npz() -> PathBuf {
    shipped(root().join("weights/seed/bnn_weights_1bit.npz"))
}

fn shipped(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{}: this shipped file is missing; restore it with `git checkout -- weights`",
        path.display()
    );
    path
}

/// The shipped seed model, loaded.
pub fn load_seed() -> Model {
    bnn_core::format::load(&seed_model())
        .unwrap_or_else(|e| panic!("cannot load the shipped seed model: {e}"))
        .model
}

const MNIST_FILES: [&str; 4] = [
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
];

/// The MNIST files absent from `dir` (raw or `.gz`).
pub fn missing_mnist_files(dir: &Path) -> Vec<&'static str> {
    MNIST_FILES
        .into_iter()
        .filter(|n| !dir.join(n).is_file() && !dir.join(format!("{n}.gz")).is_file())
        .collect()
}

/// `data/mnist`; the test fails, naming the fetch command, if any file is
/// absent.
pub fn mnist_dir() -> PathBuf {
    let dir = root().join("data/mnist");
    let missing = missing_mnist_files(&dir);
    assert!(
        missing.is_empty(),
        "{} (no {} in {})",
        crate::need::missing(&crate::need::MNIST),
        missing.join(", "),
        dir.display()
    );
    dir
}

/// The 10,000 MNIST test images.
pub fn mnist_test_images() -> Images {
    let (images, _labels) = bnn_data::mnist::load_test(&mnist_dir())
        .unwrap_or_else(|e| panic!("cannot load the MNIST test set: {e}"));
    images
}
