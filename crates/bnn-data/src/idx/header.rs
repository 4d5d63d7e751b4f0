//! The IDX header: which kind of file, its dimensions, and the sizes they
//! imply, computed without overflow.

use std::io::Read;
use std::path::Path;

use super::{IMAGES_MAGIC, LABELS_MAGIC};
use crate::error::DataError;
use bnn_io::read::read_full;

/// The two IDX layouts MNIST uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Magic 0x803: count, rows, cols.
    Images,
    /// Magic 0x801: count.
    Labels,
}

impl Kind {
    /// Human name used in error messages.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Kind::Images => "IDX image file",
            Kind::Labels => "IDX label file",
        }
    }

    fn magic(self) -> u32 {
        match self {
            Kind::Images => IMAGES_MAGIC,
            Kind::Labels => LABELS_MAGIC,
        }
    }

    fn ndims(self) -> usize {
        match self {
            Kind::Images => 3,
            Kind::Labels => 1,
        }
    }

    /// Header size in bytes: magic plus one `u32` per dimension.
    pub(crate) fn header_len(self) -> u64 {
        4 + 4 * self.ndims() as u64
    }
}

/// A validated IDX header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    pub(crate) count: u64,
    /// Rows per image; 1 for labels.
    pub(crate) rows: u64,
    /// Columns per image; 1 for labels.
    pub(crate) cols: u64,
    /// Bytes per item (`rows * cols`).
    pub(crate) item_len: u64,
    /// Bytes after the header (`count * item_len`).
    pub(crate) data_len: u64,
}

impl Header {
    /// Builds a header from dimensions, rejecting zeros and sizes that do not
    /// fit in a `u64` (including the header itself).
    pub(crate) fn new(
        path: &Path,
        kind: Kind,
        count: u64,
        rows: u64,
        cols: u64,
    ) -> Result<Header, DataError> {
        let bad = |detail: String| DataError::BadDimensions {
            path: path.to_path_buf(),
            what: kind.what(),
            detail,
        };
        let dims = match kind {
            Kind::Images => format!("{count} images of {rows}x{cols}"),
            Kind::Labels => format!("{count} labels"),
        };
        if rows == 0 || cols == 0 {
            return Err(bad(format!("header claims {dims}; zero is not allowed")));
        }
        let item_len = rows.checked_mul(cols);
        let data_len = item_len.and_then(|n| n.checked_mul(count));
        let total = data_len.and_then(|n| n.checked_add(kind.header_len()));
        match (item_len, data_len, total) {
            (Some(item_len), Some(data_len), Some(_)) => Ok(Header {
                kind,
                count,
                rows,
                cols,
                item_len,
                data_len,
            }),
            _ => Err(bad(format!(
                "header claims {dims}, which overflows a 64-bit size"
            ))),
        }
    }

    /// Reads and validates the header at the start of `reader`.
    ///
    /// `found_in` names where the bytes come from ("file" or "decompressed
    /// data") for truncation messages.
    pub(crate) fn read(
        reader: &mut dyn Read,
        path: &Path,
        kind: Kind,
        found_in: &str,
    ) -> Result<Header, DataError> {
        let mut buf = [0u8; 16];
        let len = kind.header_len() as usize;
        let got = read_full(reader, &mut buf[..len])
            .map_err(|e| DataError::io(path, "reading IDX header", e))?;
        // The magic is checked as soon as it is there, so that a file of the
        // wrong kind is reported as such even when it is also short.
        if got >= 4 {
            let found = be_u32(&buf[0..4]);
            if found != kind.magic() {
                return Err(DataError::BadMagic {
                    path: path.to_path_buf(),
                    what: kind.what(),
                    expected: kind.magic(),
                    found,
                });
            }
        }
        if got < len {
            return Err(DataError::Truncated {
                path: path.to_path_buf(),
                what: kind.what(),
                expected: len as u64,
                found: got as u64,
                detail: format!("the header needs {len} bytes but {found_in} has only {got} bytes"),
            });
        }
        let count = u64::from(be_u32(&buf[4..8]));
        let (rows, cols) = match kind {
            Kind::Images => (
                u64::from(be_u32(&buf[8..12])),
                u64::from(be_u32(&buf[12..16])),
            ),
            Kind::Labels => (1, 1),
        };
        Header::new(path, kind, count, rows, cols)
    }

    /// Total bytes the header implies, header included.
    pub(crate) fn total_len(&self) -> u64 {
        self.kind.header_len() + self.data_len
    }

    /// "10000 images of 28x28 (7840016 bytes)", for error messages.
    pub(crate) fn claim(&self) -> String {
        match self.kind {
            Kind::Images => format!(
                "{} images of {}x{} ({} bytes)",
                self.count,
                self.rows,
                self.cols,
                self.total_len()
            ),
            Kind::Labels => format!("{} labels ({} bytes)", self.count, self.total_len()),
        }
    }

    /// The error for a file or stream with `found` bytes in all, fewer than
    /// the header claims.
    pub(crate) fn truncated(&self, path: &Path, found: u64, found_in: &str) -> DataError {
        DataError::Truncated {
            path: path.to_path_buf(),
            what: self.kind.what(),
            expected: self.total_len(),
            found,
            detail: format!(
                "header claims {} but {found_in} has {found} bytes",
                self.claim()
            ),
        }
    }

    /// The error for a gzip stream that stops before its end (missing data or
    /// a missing trailer), after `found` decompressed bytes in all.
    pub(crate) fn gzip_cut(&self, path: &Path, found: u64) -> DataError {
        DataError::Truncated {
            path: path.to_path_buf(),
            what: self.kind.what(),
            expected: self.total_len(),
            found,
            detail: format!(
                "gzip stream is cut off after {found} decompressed bytes; header claims {}",
                self.claim()
            ),
        }
    }

    /// The error for a gzip file whose stream ends after `found`
    /// decompressed bytes and is followed by bytes that are not gzip.
    pub(crate) fn after_gzip(&self, path: &Path, found: u64) -> DataError {
        DataError::TrailingData {
            path: path.to_path_buf(),
            what: self.kind.what(),
            expected: self.total_len(),
            detail: format!(
                "the gzip stream ends after {found} decompressed bytes and is followed by \
                 bytes that are not gzip data; header claims {}",
                self.claim()
            ),
        }
    }

    /// The error for a file or stream longer than the header claims.
    /// `found` is the total length when known.
    pub(crate) fn trailing(&self, path: &Path, found: Option<u64>, found_in: &str) -> DataError {
        let has = match found {
            Some(n) => format!("{found_in} has {n} bytes"),
            None => format!("{found_in} continues past that"),
        };
        DataError::TrailingData {
            path: path.to_path_buf(),
            what: self.kind.what(),
            expected: self.total_len(),
            detail: format!("header claims {} but {has}", self.claim()),
        }
    }

    /// Compares the claimed size with a raw file's length, before any data
    /// is read or allocated.
    pub(crate) fn check_file_len(&self, path: &Path, file_len: u64) -> Result<(), DataError> {
        use std::cmp::Ordering;
        match file_len.cmp(&self.total_len()) {
            Ordering::Less => Err(self.truncated(path, file_len, "file")),
            Ordering::Greater => Err(self.trailing(path, Some(file_len), "file")),
            Ordering::Equal => Ok(()),
        }
    }

    /// Encodes the header for writing.
    pub(crate) fn encode(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.kind.magic().to_be_bytes());
        // `write` checked that the dimensions fit in u32.
        let dims: &[u64] = match self.kind {
            Kind::Images => &[self.count, self.rows, self.cols],
            Kind::Labels => &[self.count],
        };
        for &d in dims {
            out.extend_from_slice(&(d as u32).to_be_bytes());
        }
        out
    }
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
