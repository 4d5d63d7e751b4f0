//! Opening an IDX file that may or may not be gzip-compressed.
//!
//! MNIST is distributed both ways and people rename files freely, so the
//! decision is made from the gzip magic bytes (`1f 8b`) rather than from a
//! `.gz` extension.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
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
    /// Length of the file when it is raw; `None` when gzip-compressed, since
    /// the decompressed size is only known after reading it all.
    pub(crate) raw_len: Option<u64>,
}

impl Source {
    /// Opens `path`, sniffing for gzip.
    pub(crate) fn open(path: &Path) -> Result<Source, DataError> {
        let mut file = File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| DataError::io(path, "reading metadata", e))?
            .len();
        let mut magic = [0u8; 2];
        let got =
            read_full(&mut file, &mut magic).map_err(|e| DataError::io(path, "reading", e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| DataError::io(path, "seeking", e))?;
        let reader = BufReader::with_capacity(1 << 16, file);
        if got == 2 && magic == GZIP_MAGIC {
            Ok(Source {
                reader: Box::new(MultiGzDecoder::new(reader)),
                raw_len: None,
            })
        } else {
            Ok(Source {
                reader: Box::new(reader),
                raw_len: Some(len),
            })
        }
    }

    /// Words for where the bytes come from, used in size messages.
    pub(crate) fn found_in(&self) -> &'static str {
        if self.raw_len.is_some() {
            "file"
        } else {
            "decompressed data"
        }
    }
}

/// Whether an error from reading means the compressed stream stopped early,
/// which is reported as truncation rather than as an I/O failure.
pub(crate) fn is_eof(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::UnexpectedEof
}
