//! Reading a whole IDX file into memory, with every size checked.

use std::path::Path;

use super::header::{Header, Kind};
use super::source::{is_eof, is_not_gzip, Source};
use super::{Images, Labels};
use crate::error::DataError;
use bnn_io::read::read_bounded;

/// Reads an IDX3 image file (magic `0x00000803`), raw or gzip-compressed.
///
/// Fails if the magic is wrong, a dimension is zero, or the data is shorter
/// or longer than the header claims. For a raw file the claimed size is
/// compared with the file length before anything is allocated; for a gzip
/// file the buffer grows only as decompressed bytes arrive, so a header
/// claiming billions of images cannot trigger a huge allocation.
pub fn read_images(path: &Path) -> Result<Images, DataError> {
    let (header, pixels) = read_whole(path, Kind::Images)?;
    Ok(Images {
        count: to_usize(path, &header, header.count)?,
        rows: to_usize(path, &header, header.rows)?,
        cols: to_usize(path, &header, header.cols)?,
        pixels,
    })
}

/// Reads an IDX1 label file (magic `0x00000801`), raw or gzip-compressed,
/// with the same checks as [`read_images`].
pub fn read_labels(path: &Path) -> Result<Labels, DataError> {
    let (_, labels) = read_whole(path, Kind::Labels)?;
    Ok(Labels { labels })
}

fn read_whole(path: &Path, kind: Kind) -> Result<(Header, Vec<u8>), DataError> {
    let mut src = Source::open(path)?;
    let found_in = src.found_in();
    let header = Header::read(&mut src.reader, path, kind, found_in)?;
    if let Some(len) = src.raw_len {
        header.check_file_len(path, len)?;
    }
    let data_len = to_usize(path, &header, header.data_len)?;
    let mut data = Vec::new();
    if src.raw_len.is_some() {
        // The file length has been checked, so the claim is backed by bytes
        // on disk: allocate once instead of growing.
        data.reserve_exact(data_len);
    }
    let got = match read_bounded(&mut src.reader, header.data_len, &mut data) {
        Ok(n) => n,
        Err(e) if is_eof(&e) => {
            let found = kind.header_len() + data.len() as u64;
            return Err(header.gzip_cut(path, found));
        }
        Err(e) if is_not_gzip(&e) => {
            let found = kind.header_len() + data.len() as u64;
            return Err(header.after_gzip(path, found));
        }
        Err(e) => return Err(DataError::io(path, "reading IDX data", e)),
    };
    let found = kind.header_len() + got;
    if got < header.data_len {
        return Err(header.truncated(path, found, found_in));
    }
    if got > header.data_len {
        return Err(header.trailing(path, src.raw_len, found_in));
    }
    Ok((header, data))
}

/// Converts a size to `usize`, failing on platforms where it does not fit.
fn to_usize(path: &Path, header: &Header, n: u64) -> Result<usize, DataError> {
    usize::try_from(n).map_err(|_| DataError::BadDimensions {
        path: path.to_path_buf(),
        what: header.kind.what(),
        detail: format!(
            "header claims {}, too large for this platform",
            header.claim()
        ),
    })
}
