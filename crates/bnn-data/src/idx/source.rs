//! Opening an IDX file that may or may not be gzip-compressed.
//!
//! MNIST is distributed both ways and people rename files freely, so the
//! decision is made from the gzip magic bytes (`1f 8b`) rather than from a
//! `.gz` extension.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::DataError;
use bnn_io::read::read_full;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An open IDX byte stream.
pub(crate) struct Source {
    /// Decompressed bytes, starting at the IDX header.
    pub(crate) reader: Box<dyn Read + Send>,
    /// Length of the file when it is raw and regular; `None` when it is
    /// gzip-compressed (the decompressed size is only known after reading it
    /// all) or a pipe or device (no length until it ends).
    pub(crate) raw_len: Option<u64>,
    compressed: bool,
}

impl Source {
    /// Opens `path`, sniffing for gzip.
    pub(crate) fn open(path: &Path) -> Result<Source, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
        let meta = file
            .metadata()
            .map_err(|e| DataError::io(path, "reading metadata", e))?;
        let len = meta.is_file().then_some(meta.len());
        Source::from_reader(path, file, len)
    }

    /// Wraps bytes that are already open, sniffing for gzip from the
    /// stream itself: nothing is read twice and nothing is sought, so pipes,
    /// FIFOs and `/dev/stdin` work like files. `len` is the length of a raw
    /// regular file, if known.
    pub(crate) fn from_reader(
        path: &Path,
        mut reader: impl Read + Send + 'static,
        len: Option<u64>,
    ) -> Result<Source, DataError> {
        let mut magic = [0u8; 2];
        let got =
            read_full(&mut reader, &mut magic).map_err(|e| DataError::io(path, "reading", e))?;
        let whole = io::Cursor::new(magic[..got].to_vec()).chain(reader);
        let reader = BufReader::with_capacity(1 << 16, whole);
        if got == 2 && magic == GZIP_MAGIC {
            Ok(Source {
                reader: Box::new(MultiGzDecoder::new(reader)),
                raw_len: None,
                compressed: true,
            })
        } else {
            Ok(Source {
                reader: Box::new(reader),
                raw_len: len,
                compressed: false,
            })
        }
    }

    /// Words for where the bytes come from, used in size messages.
    pub(crate) fn found_in(&self) -> &'static str {
        if self.compressed {
            "decompressed data"
        } else {
            "file"
        }
    }
}

/// Whether an error from reading means the compressed stream stopped early,
/// which is reported as truncation rather than as an I/O failure.
pub(crate) fn is_eof(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof
}
