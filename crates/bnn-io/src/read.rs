//! Reading a length-prefixed payload without trusting the length.
//!
//! Headers in IDX, gzip and zip files state how much data follows, but a
//! corrupt or hostile header can claim terabytes. Allocating that up front
//! would abort the process, so payloads are read through a limit and the
//! buffer grows only as bytes actually arrive.

use std::io::{self, Read};
use std::path::Path;

/// Most bytes reserved before any data has been seen. Larger payloads still
/// work; the buffer simply grows as they are read.
pub const MAX_RESERVE: usize = 16 << 20;

/// Appends to `buf` up to `expected + 1` bytes from `reader` and returns how
/// many were appended.
///
/// Reading one byte more than expected lets the caller tell "exactly right"
/// (`== expected`) from "too long" (`> expected`) and "too short"
/// (`< expected`) without reading an unbounded tail. On error the bytes read
/// so far stay in `buf`, so the caller can report how far it got.
pub fn read_bounded<R: Read + ?Sized>(
    reader: &mut R,
    expected: u64,
    buf: &mut Vec<u8>,
) -> io::Result<u64> {
    let start = buf.len();
    let reserve = usize::try_from(expected).map_or(MAX_RESERVE, |n| n.min(MAX_RESERVE));
    buf.reserve(reserve);
    let result = reader.take(expected.saturating_add(1)).read_to_end(buf);
    result.map(|_| (buf.len() - start) as u64)
}

/// Reads until `buf` is full or the reader ends, returning the count read.
///
/// Unlike `read_exact`, a short read is reported as a count rather than an
/// error, so the caller can say how many bytes were found.
pub fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Why [`read_file`] failed.
#[derive(Debug)]
pub enum ReadFailure {
    /// The operating system refused.
    Io(std::io::Error),
    /// The path is a directory, or the file is larger than accepted.
    Problem(String),
}

/// Reads a whole model file, refusing directories and files over `max`
/// bytes before reading anything. Shared by the model readers of this
/// workspace, so they refuse the same things with the same words.
pub fn read_file(path: &Path, max: u64) -> Result<Vec<u8>, ReadFailure> {
    let meta = std::fs::metadata(path).map_err(ReadFailure::Io)?;
    if meta.is_dir() {
        return Err(ReadFailure::Problem(
            "is a directory, not a model file".into(),
        ));
    }
    if meta.len() > max {
        return Err(ReadFailure::Problem(format!(
            "{} bytes is too large for a model file",
            meta.len()
        )));
    }
    std::fs::read(path).map_err(ReadFailure::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_read_stops_one_past_expected() {
        let data = [7u8; 100];
        let mut buf = Vec::new();
        assert_eq!(read_bounded(&mut &data[..], 10, &mut buf).unwrap(), 11);
        let mut buf = Vec::new();
        assert_eq!(read_bounded(&mut &data[..], 100, &mut buf).unwrap(), 100);
        let mut buf = Vec::new();
        assert_eq!(read_bounded(&mut &data[..], 500, &mut buf).unwrap(), 100);
    }

    #[test]
    fn huge_claim_does_not_reserve_huge_buffer() {
        let data = [1u8, 2, 3];
        let mut buf = Vec::new();
        let n = read_bounded(&mut &data[..], u64::MAX, &mut buf).unwrap();
        assert_eq!(n, 3);
        assert!(buf.capacity() <= MAX_RESERVE + 64);
    }

    #[test]
    fn read_full_reports_short_count() {
        let data = [1u8, 2, 3];
        let mut buf = [0u8; 8];
        assert_eq!(read_full(&mut &data[..], &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &data);
    }
}
