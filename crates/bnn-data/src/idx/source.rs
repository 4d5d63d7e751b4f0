//! Opening an IDX file that may or may not be gzip-compressed.
//!
//! MNIST is distributed both ways and people rename files freely, so the
//! decision is made from the gzip magic bytes (`1f 8b`) rather than from a
//! `.gz` extension.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;

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
                reader: Box::new(Members::new(reader)),
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

/// The error a gzip file gives when a member is followed by bytes that do
/// not start another member: data after the stream, never read.
#[derive(Debug)]
pub(crate) struct NotGzip;

impl std::fmt::Display for NotGzip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("bytes after the end of the gzip stream are not gzip data")
    }
}

impl std::error::Error for NotGzip {}

/// Whether a read failed on bytes after the gzip stream (see [`NotGzip`]).
pub(crate) fn is_not_gzip(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|e| e.is::<NotGzip>())
}

/// The decompressed bytes of every gzip member in turn, as `gzip -d` reads
/// a file of several members (`cat a.gz b.gz`). Unlike flate2's
/// `MultiGzDecoder`, bytes after a member that do not start another one
/// are an error of their own ([`NotGzip`]), not a member cut off: data
/// appended to a download is reported as what it is.
struct Members<R: BufRead> {
    state: State<R>,
}

enum State<R: BufRead> {
    /// Reading a member.
    Member(GzDecoder<R>),
    /// After the last member: nothing more.
    Done,
    /// After bytes that start no member: the error again.
    NotGzip,
}

impl<R: BufRead> Members<R> {
    fn new(reader: R) -> Self {
        Members {
            state: State::Member(GzDecoder::new(reader)),
        }
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut member = match std::mem::replace(&mut self.state, State::Done) {
                State::Member(member) => member,
                State::Done => return Ok(0),
                State::NotGzip => {
                    self.state = State::NotGzip;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, NotGzip));
                }
            };
            let read = member.read(buf);
            if !matches!(read, Ok(0)) || buf.is_empty() {
                self.state = State::Member(member);
                return read;
            }
            // This member is complete (its CRC and length checked). What
            // follows is the end, another member, or something else.
            let mut rest = member.into_inner();
            let next = rest.fill_buf()?;
            if next.is_empty() {
                return Ok(0);
            }
            let gzip = next[0] == GZIP_MAGIC[0] && next.get(1).is_none_or(|&b| b == GZIP_MAGIC[1]);
            self.state = if gzip {
                State::Member(GzDecoder::new(rest))
            } else {
                State::NotGzip
            };
        }
    }
}
