//! Reading an image file a chunk at a time.
//!
//! Augmented or synthetic data sets can be far larger than memory. The
//! stream keeps only the chunk the caller asks for, so memory is bounded by
//! the chunk size, never by the count in the file's header.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::header::{Header, Kind};
use super::source::{is_eof, is_not_gzip, Source};
use crate::error::DataError;
use bnn_io::read::{read_bounded, read_full};

/// A reader that yields images from an IDX3 file (raw or gzip) in chunks.
///
/// For a raw file the length is checked against the header when it is
/// opened. For a gzip file, truncation is reported by the chunk that runs
/// out of data, and data past the claimed end by the chunk that reads the
/// last image.
pub struct ImageStream {
    path: PathBuf,
    src: Source,
    header: Header,
    count: usize,
    image_len: usize,
    /// Images handed out so far.
    done: usize,
}

impl std::fmt::Debug for ImageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStream")
            .field("path", &self.path)
            .field("count", &self.count)
            .field("rows", &self.header.rows)
            .field("cols", &self.header.cols)
            .field("done", &self.done)
            .finish()
    }
}

impl ImageStream {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<ImageStream, DataError> {
        ImageStream::start(path, Source::open(path)?)
    }

    /// Reads an IDX3 stream that is already open (a pipe, a FIFO, a file
    /// whose first bytes were read to recognise it and are chained back in
    /// front), raw or gzip; `path` names it in errors. Its length is checked
    /// as it is read, since a stream has none to compare beforehand.
    pub fn from_reader(
        path: &Path,
        reader: impl Read + Send + 'static,
    ) -> Result<ImageStream, DataError> {
        ImageStream::start(path, Source::from_reader(path, reader, None)?)
    }

    fn start(path: &Path, mut src: Source) -> Result<ImageStream, DataError> {
        let found_in = src.found_in();
        let header = Header::read(&mut src.reader, path, Kind::Images, found_in)?;
        if let Some(len) = src.raw_len {
            header.check_file_len(path, len)?;
        }
        let too_big = || DataError::BadDimensions {
            path: path.to_path_buf(),
            what: Kind::Images.what(),
            detail: format!(
                "header claims {}, too large for this platform",
                header.claim()
            ),
        };
        let count = usize::try_from(header.count).map_err(|_| too_big())?;
        let image_len = usize::try_from(header.item_len).map_err(|_| too_big())?;
        Ok(ImageStream {
            path: path.to_path_buf(),
            src,
            header,
            count,
            image_len,
            done: 0,
        })
    }

    /// Number of images the header claims.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Rows per image.
    pub fn rows(&self) -> usize {
        self.header.rows as usize
    }

    /// Columns per image.
    pub fn cols(&self) -> usize {
        self.header.cols as usize
    }

    /// Bytes per image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.image_len
    }

    /// Replaces the contents of `buf` with the next `max_images` images (fewer
    /// at the end of the file) and returns how many it holds; 0 means the end
    /// was reached (or `max_images` was 0).
    ///
    /// Fails with [`DataError::Truncated`] if the data ends before the
    /// claimed count, and with [`DataError::TrailingData`] if a compressed
    /// file holds more than the claimed count.
    pub fn next_chunk(&mut self, max_images: usize, buf: &mut Vec<u8>) -> Result<usize, DataError> {
        buf.clear();
        let n = max_images.min(self.count - self.done);
        if n == 0 {
            return Ok(0);
        }
        // n <= count, so this is at most the data length, which fits a u64.
        let want = n as u64 * self.header.item_len;
        let mut chunk = (&mut self.src.reader).take(want);
        let before = Kind::Images.header_len() + self.done as u64 * self.header.item_len;
        let got = match read_bounded(&mut chunk, want, buf) {
            Ok(got) => got,
            Err(e) if is_eof(&e) => {
                let found = before + buf.len() as u64;
                return Err(self.header.gzip_cut(&self.path, found));
            }
            Err(e) if is_not_gzip(&e) => {
                let found = before + buf.len() as u64;
                return Err(self.header.after_gzip(&self.path, found));
            }
            Err(e) => return Err(DataError::io(&self.path, "reading IDX data", e)),
        };
        if got < want {
            let found_in = self.src.found_in();
            return Err(self.header.truncated(&self.path, before + got, found_in));
        }
        self.done += n;
        if self.done == self.count {
            self.check_end()?;
        }
        Ok(n)
    }

    /// After the last image, makes sure nothing follows it.
    fn check_end(&mut self) -> Result<(), DataError> {
        let mut probe = [0u8; 1];
        let extra = match read_full(&mut self.src.reader, &mut probe) {
            Ok(n) => n,
            Err(e) if is_eof(&e) => {
                return Err(self.header.gzip_cut(&self.path, self.header.total_len()));
            }
            Err(e) if is_not_gzip(&e) => {
                return Err(self.header.after_gzip(&self.path, self.header.total_len()));
            }
            Err(e) => return Err(DataError::io(&self.path, "reading IDX data", e)),
        };
        if extra > 0 {
            let found_in = self.src.found_in();
            return Err(self.header.trailing(&self.path, self.src.raw_len, found_in));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Bytes that can only be read forward, like a pipe.
    struct Pipe(std::collections::VecDeque<u8>);

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // A few bytes at a time, as pipes deliver them.
            let n = buf.len().min(3).min(self.0.len());
            for b in &mut buf[..n] {
                *b = self.0.pop_front().expect("counted");
            }
            Ok(n)
        }
    }

    fn idx(count: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = 0x803u32.to_be_bytes().to_vec();
        for d in [count, 2, 2] {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(pixels);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn all(bytes: Vec<u8>) -> Result<Vec<u8>, DataError> {
        let mut s = ImageStream::from_reader(Path::new("p"), Pipe(bytes.into()))?;
        assert_eq!((s.count(), s.rows(), s.cols()), (3, 2, 2));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while s.next_chunk(2, &mut buf)? > 0 {
            out.extend_from_slice(&buf);
        }
        Ok(out)
    }

    #[test]
    fn raw_and_gzip_streams_read_without_seeking() {
        let pixels: Vec<u8> = (0..12).collect();
        assert_eq!(all(idx(3, &pixels)).unwrap(), pixels);
        assert_eq!(all(gzip(&idx(3, &pixels))).unwrap(), pixels);
        let short = all(idx(3, &pixels[..11])).unwrap_err().to_string();
        assert!(short.contains("has 27 bytes"), "{short}");
        let long = all(idx(3, &[pixels.clone(), vec![9]].concat()))
            .unwrap_err()
            .to_string();
        assert!(long.contains("continues past"), "{long}");
    }
}
