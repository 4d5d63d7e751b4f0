//! Writing IDX files, for tests and for users who cut small data sets.

use std::path::Path;

use super::header::{Header, Kind};
use super::{Images, Labels};
use crate::error::DataError;

/// Writes `images` as a raw IDX3 file.
///
/// A regular file is replaced atomically (readers never see a partial file)
/// and a device or FIFO is written through, by `bnn_io`'s rules. Fails if a
/// dimension is zero or above `u32::MAX`, or if `pixels` does not hold
/// exactly `count * rows * cols` bytes.
pub fn write_images(path: &Path, images: &Images) -> Result<(), DataError> {
    let dims = [images.count, images.rows, images.cols];
    let header = checked_header(path, Kind::Images, dims, images.pixels.len())?;
    write_atomic(path, &[&header.encode(), &images.pixels])
}

/// Writes `labels` as a raw IDX1 file, atomically like [`write_images`].
pub fn write_labels(path: &Path, labels: &Labels) -> Result<(), DataError> {
    let dims = [labels.labels.len(), 1, 1];
    let header = checked_header(path, Kind::Labels, dims, labels.labels.len())?;
    write_atomic(path, &[&header.encode(), &labels.labels])
}

/// Header and data as one atomic write (see `bnn_io::write`).
fn write_atomic(path: &Path, parts: &[&[u8]]) -> Result<(), DataError> {
    bnn_io::write::write_with(path, |w| {
        parts.iter().try_for_each(|part| w.write_all(part))
    })
    .map_err(|e| DataError::io(path, "writing", e))
}

fn checked_header(
    path: &Path,
    kind: Kind,
    [count, rows, cols]: [usize; 3],
    data_len: usize,
) -> Result<Header, DataError> {
    let bad = |detail: String| DataError::BadDimensions {
        path: path.to_path_buf(),
        what: kind.what(),
        detail,
    };
    if [count, rows, cols].iter().any(|&d| d > u32::MAX as usize) {
        return Err(bad(format!(
            "{count}x{rows}x{cols} does not fit the format's 32-bit dimensions"
        )));
    }
    // Checked here, not left to `Header::new`, whose message is a reader's.
    if rows == 0 || cols == 0 {
        return Err(bad(format!("{count}x{rows}x{cols}: zero is not allowed")));
    }
    let header = Header::new(path, kind, count as u64, rows as u64, cols as u64)?;
    if header.data_len != data_len as u64 {
        return Err(bad(format!(
            "{count}x{rows}x{cols} needs {} bytes of data but {data_len} were given",
            header.data_len
        )));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_device_is_a_disk_full_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full");
        let made = std::process::Command::new("mknod")
            .arg(&full)
            .args(["c", "1", "7"])
            .status()
            .expect("mknod (coreutils) is needed by this test");
        assert!(made.success(), "mknod needs root: run the tests as root");
        let images = Images {
            count: 2,
            rows: 28,
            cols: 28,
            pixels: vec![9; 2 * 784],
        };
        let err = write_images(&full, &images).unwrap_err();
        assert!(matches!(err, DataError::DiskFull { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: disk full", full.display())),
            "{err}"
        );
        // The device is still a device, and nothing else appeared.
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&full)
            .unwrap()
            .file_type()
            .is_char_device());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A regular file gets exactly header + pixels.
        let file = dir.path().join("x.idx");
        write_images(&file, &images).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(&bytes[..4], &[0, 0, 8, 3]);
        assert_eq!(bytes.len(), 16 + 2 * 784);
        assert!(bytes[16..].iter().all(|&b| b == 9));
    }
}
