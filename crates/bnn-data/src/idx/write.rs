//! Writing IDX files, for tests and for users who cut small data sets.

use std::path::Path;

use super::header::{Header, Kind};
use super::{Images, Labels};
use crate::atomic::write_atomic;
use crate::error::DataError;

/// Writes `images` as a raw IDX3 file.
///
/// The file is written to a temporary name in the same directory and renamed
/// into place, so readers never see a partial file. Fails if a dimension is
/// zero or above `u32::MAX`, or if `pixels` does not hold exactly
/// `count * rows * cols` bytes.
pub fn write_images(path: &Path, images: &Images) -> Result<(), DataError> {
    let dims = [images.count, images.rows, images.cols];
    let header = checked_header(path, Kind::Images, dims, images.pixels.len())?;
    write_atomic(path, |w| {
        w.write_all(&header.encode())?;
        w.write_all(&images.pixels)
    })
}

/// Writes `labels` as a raw IDX1 file, atomically like [`write_images`].
pub fn write_labels(path: &Path, labels: &Labels) -> Result<(), DataError> {
    let dims = [labels.labels.len(), 1, 1];
    let header = checked_header(path, Kind::Labels, dims, labels.labels.len())?;
    write_atomic(path, |w| {
        w.write_all(&header.encode())?;
        w.write_all(&labels.labels)
    })
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
    let header = Header::new(path, kind, count as u64, rows as u64, cols as u64)?;
    if header.data_len != data_len as u64 {
        return Err(bad(format!(
            "{count}x{rows}x{cols} needs {} bytes of data but {data_len} were given",
            header.data_len
        )));
    }
    Ok(header)
}
