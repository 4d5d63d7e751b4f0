//! A `.npy` array of uint8 images read a chunk at a time, as
//! [`crate::idx::ImageStream`] reads IDX: memory is bounded by the chunk,
//! never by the count in the header, and the header is checked (magic,
//! version, dtype, order, shape, overflow) before any data is read. A
//! regular file's length is compared with the shape at once; a pipe's as
//! it is read.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::npy::{read_header, shape_str};
use crate::error::DataError;
use crate::idx::source::{is_eof, Source};
use bnn_io::read::{read_bounded, read_full};

const WHAT: &str = ".npy image array";

/// Images from a `.npy` file of dtype uint8 and shape (N, inputs) or
/// (N, H, W[, C]), C order.
pub struct NpyImages {
    path: PathBuf,
    src: Source,
    shape: Vec<usize>,
    count: usize,
    image_len: usize,
    data_start: u64,
    /// Images handed out so far.
    done: usize,
}

impl std::fmt::Debug for NpyImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyImages")
            .field("path", &self.path)
            .field("shape", &self.shape)
            .field("done", &self.done)
            .finish()
    }
}

impl NpyImages {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<NpyImages, DataError> {
        NpyImages::start(path, Source::open(path)?)
    }

    /// Reads a `.npy` stream that is already open (a pipe, or a file whose
    /// first bytes were read to recognise it and are chained back in
    /// front); `len` is the length of a regular file, when known.
    pub fn from_reader(
        path: &Path,
        reader: impl Read + Send + 'static,
        len: Option<u64>,
    ) -> Result<NpyImages, DataError> {
        NpyImages::start(path, Source::from_reader(path, reader, len)?)
    }

    fn start(path: &Path, mut src: Source) -> Result<NpyImages, DataError> {
        let bad = |detail: String| DataError::Npy {
            path: path.to_path_buf(),
            detail,
        };
        let header = read_header(&mut src.reader, src.raw_len).map_err(bad)?;
        let shape = header.shape;
        match header.dtype {
            Ok(d) if d.is_u8() => {}
            other => {
                // Any other dtype, one this crate reads elsewhere or not:
                // the message names the one dtype images may have.
                let shown = other.map_or_else(|quoted| quoted, |d| format!("'{}'", d.descr()));
                return Err(bad(format!(
                    "dtype {shown} is not uint8 (pixels 0..=255), the only dtype read as \
                     images: convert with array.astype(numpy.uint8)"
                )));
            }
        }
        if header.fortran {
            return Err(bad(format!(
                "shape {} is in Fortran order, which cannot be read image by image: \
                 save numpy.ascontiguousarray(array)",
                shape_str(&shape)
            )));
        }
        if !(2..=4).contains(&shape.len()) {
            return Err(bad(format!(
                "shape {} is not (N, inputs) or (N, H, W[, C])",
                shape_str(&shape)
            )));
        }
        let overflow = || bad(format!("shape {} overflows", shape_str(&shape)));
        let image_len = shape[1..]
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(overflow)?;
        if image_len == 0 {
            return Err(bad(format!(
                "shape {} has images of no pixels",
                shape_str(&shape)
            )));
        }
        let count = shape[0];
        let data_len = count
            .checked_mul(image_len)
            .and_then(|n| u64::try_from(n).ok())
            .and_then(|n| n.checked_add(header.data_start))
            .ok_or_else(overflow)?;
        if let Some(len) = src.raw_len {
            if len != data_len {
                let detail = format!(
                    "shape {} needs {data_len} bytes but the file has {len}",
                    shape_str(&shape)
                );
                let path = path.to_path_buf();
                return Err(if len < data_len {
                    DataError::Truncated {
                        path,
                        what: WHAT,
                        expected: data_len,
                        found: len,
                        detail,
                    }
                } else {
                    DataError::TrailingData {
                        path,
                        what: WHAT,
                        expected: data_len,
                        detail,
                    }
                });
            }
        }
        Ok(NpyImages {
            path: path.to_path_buf(),
            src,
            data_start: header.data_start,
            shape,
            count,
            image_len,
            done: 0,
        })
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The array's shape, the image count first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.image_len
    }

    /// The shape as Python writes it: `(60000, 28, 28)`.
    pub fn shape_text(&self) -> String {
        shape_str(&self.shape)
    }

    /// Replaces the contents of `buf` with the next `max_images` images
    /// (fewer at the end) and returns how many it holds; 0 at the end.
    /// Fails when the data ends early or continues past the last image.
    pub fn next_chunk(&mut self, max_images: usize, buf: &mut Vec<u8>) -> Result<usize, DataError> {
        buf.clear();
        let n = max_images.min(self.count - self.done);
        if n == 0 {
            return Ok(0);
        }
        let want = (n * self.image_len) as u64;
        let before = self.data_start + (self.done * self.image_len) as u64;
        let got = match read_bounded(&mut (&mut self.src.reader).take(want), want, buf) {
            Ok(got) => got,
            Err(e) if is_eof(&e) => buf.len() as u64,
            Err(e) => return Err(DataError::io(&self.path, "reading .npy data", e)),
        };
        if got < want {
            return Err(self.truncated(before + got));
        }
        self.done += n;
        if self.done == self.count {
            let mut probe = [0u8; 1];
            let extra = match read_full(&mut self.src.reader, &mut probe) {
                Ok(n) => n,
                Err(e) if is_eof(&e) => return Err(self.truncated(self.expected())),
                Err(e) => return Err(DataError::io(&self.path, "reading .npy data", e)),
            };
            if extra > 0 {
                return Err(DataError::TrailingData {
                    path: self.path.clone(),
                    what: WHAT,
                    expected: self.expected(),
                    detail: format!(
                        "shape {} needs {} bytes but the {} continues past them",
                        self.shape_text(),
                        self.expected(),
                        self.src.found_in()
                    ),
                });
            }
        }
        Ok(n)
    }

    /// Bytes the header implies, header included.
    fn expected(&self) -> u64 {
        self.data_start + (self.count * self.image_len) as u64
    }

    fn truncated(&self, found: u64) -> DataError {
        DataError::Truncated {
            path: self.path.clone(),
            what: WHAT,
            expected: self.expected(),
            found,
            detail: format!(
                "shape {} needs {} bytes but the {} has {found}",
                self.shape_text(),
                self.expected(),
                self.src.found_in()
            ),
        }
    }
}
