//! Reading an IDX image file of any size: unsigned bytes of rank 3
//! (`N×H×W`, magic `0x00000803`) or rank 4 (`N×H×W×C`, `0x00000804`), as
//! data sets other than MNIST store their images. The same checks as
//! [`super::read_images`]: the magic, zero or overflowing dimensions, the
//! claimed size against the file (or the decompressed stream), and here a
//! ceiling on the values, all before the data is allocated.

use std::path::Path;

use super::source::{is_eof, is_not_gzip, Source};
use crate::error::DataError;
use bnn_io::read::{read_bounded, read_full};

const WHAT: &str = "IDX image file";

/// Images of one shape, in HWC order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStack {
    /// Number of images: the header's first dimension.
    pub count: usize,
    /// Rows of each image, in pixels.
    pub height: usize,
    /// Columns of each image, in pixels.
    pub width: usize,
    /// 1 for a rank-3 file.
    pub channels: usize,
    /// `count * height * width * channels` bytes.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file of rank 3 or 4, raw or gzip, holding at most
/// `max_values` pixels.
pub fn read_image_stack(path: &Path, max_values: u64) -> Result<ImageStack, DataError> {
    let mut src = Source::open(path)?;
    let found_in = src.found_in();
    let truncated = |expected: u64, found: u64, detail: String| DataError::Truncated {
        path: path.to_path_buf(),
        what: WHAT,
        expected,
        found,
        detail,
    };
    let mut head = [0u8; 20];
    let got = read_full(&mut src.reader, &mut head[..4])
        .map_err(|e| DataError::io(path, "reading IDX header", e))?;
    if got < 4 {
        return Err(truncated(
            4,
            got as u64,
            format!("the magic number needs 4 bytes but {found_in} has only {got} bytes"),
        ));
    }
    let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let rank = match magic {
        0x0803 => 3,
        0x0804 => 4,
        found => {
            return Err(DataError::BadMagic {
                path: path.to_path_buf(),
                what: WHAT,
                expected: super::IMAGES_MAGIC,
                found,
            })
        }
    };
    let header_len = 4 + 4 * rank;
    let got = 4 + read_full(&mut src.reader, &mut head[4..header_len])
        .map_err(|e| DataError::io(path, "reading IDX header", e))?;
    if got < header_len {
        return Err(truncated(
            header_len as u64,
            got as u64,
            format!("the header needs {header_len} bytes but {found_in} has only {got} bytes"),
        ));
    }
    let dims: Vec<u64> = head[4..header_len]
        .chunks_exact(4)
        .map(|d| u64::from(u32::from_be_bytes([d[0], d[1], d[2], d[3]])))
        .collect();
    let (count, h, w, c) = (dims[0], dims[1], dims[2], dims.get(3).copied().unwrap_or(1));
    let claim = format!("{count} images of {h}x{w}x{c}");
    let bad = |detail: String| DataError::BadDimensions {
        path: path.to_path_buf(),
        what: WHAT,
        detail,
    };
    if h == 0 || w == 0 || c == 0 {
        return Err(bad(format!("header claims {claim}; zero is not allowed")));
    }
    // Each factor is below 2^32, so the product of the four stays within
    // u128; the ceiling is far below u64.
    let values = u128::from(count) * u128::from(h) * u128::from(w) * u128::from(c);
    if values > u128::from(max_values) {
        return Err(bad(format!(
            "header claims {claim}, {values} pixels, more than the {max_values} accepted"
        )));
    }
    let values = values as u64;
    let total = header_len as u64 + values;
    if let Some(len) = src.raw_len {
        if len < total {
            return Err(truncated(
                total,
                len,
                format!("header claims {claim} ({total} bytes) but the file has {len} bytes"),
            ));
        }
        if len > total {
            return Err(DataError::TrailingData {
                path: path.to_path_buf(),
                what: WHAT,
                expected: total,
                detail: format!(
                    "header claims {claim} ({total} bytes) but the file has {len} bytes"
                ),
            });
        }
    }
    let mut pixels = Vec::new();
    let got = match read_bounded(&mut src.reader, values, &mut pixels) {
        Ok(n) => n,
        Err(e) if is_eof(&e) => {
            let found = header_len as u64 + pixels.len() as u64;
            return Err(truncated(
                total,
                found,
                format!("gzip stream is cut off after {found} decompressed bytes; header claims {claim} ({total} bytes)"),
            ));
        }
        Err(e) if is_not_gzip(&e) => {
            return Err(DataError::TrailingData {
                path: path.to_path_buf(),
                what: WHAT,
                expected: total,
                detail: format!(
                    "the gzip stream is followed by bytes that are not gzip data; header claims {claim} ({total} bytes)"
                ),
            })
        }
        Err(e) => return Err(DataError::io(path, "reading IDX data", e)),
    };
    if got < values {
        let found = header_len as u64 + got;
        return Err(truncated(
            total,
            found,
            format!("header claims {claim} ({total} bytes) but {found_in} has {found} bytes"),
        ));
    }
    if got > values {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            what: WHAT,
            expected: total,
            detail: format!(
                "header claims {claim} ({total} bytes) but {found_in} continues past that"
            ),
        });
    }
    Ok(ImageStack {
        count: count as usize,
        height: h as usize,
        width: w as usize,
        channels: c as usize,
        pixels,
    })
}
