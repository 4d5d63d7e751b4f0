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
    /// The path is a directory, the file is larger than accepted, or it holds
    /// more than its header describes.
    Problem(String),
}

/// How much of a file a reader needs next, judged from the bytes so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// At least this many bytes in all before the bytes can be judged again
    /// (the rest of a header, a table whose size the header gave).
    AtLeast(u64),
    /// The header has described the whole file: exactly this many bytes.
    Exactly(u64),
    /// The bytes so far already decide the answer (a wrong magic, a field out
    /// of range): read nothing more.
    Stop,
}

/// The message for a file that goes on after the `expected` bytes its header
/// describes; `extra` is how many more bytes it holds, when known (a regular
/// file) rather than merely seen (a pipe or a device). Shared by the readers,
/// so that they report it in the same words.
pub fn trailing_message(extra: Option<u64>, expected: u64) -> String {
    match extra {
        Some(n) => {
            format!("{n} bytes of trailing data after the {expected} bytes the header describes")
        }
        None => format!("trailing data after the {expected} bytes the header describes"),
    }
}

/// Reads a model file no further than its own header allows.
///
/// `want` is asked, after each stage, how much the bytes read so far call
/// for: the magic first, then the header, then the size the header gives.
/// A stream that is not a model (`/dev/zero`, a pipe of text) therefore
/// stops after its first bytes, and one that is never reads past its stated
/// end plus one byte (to notice trailing data). The bytes are returned for
/// the caller's parser, which reports a wrong magic or a short file in its
/// own words; files over `max` bytes and directories are refused here.
pub fn read_file(
    path: &Path,
    max: u64,
    mut want: impl FnMut(&[u8]) -> Want,
) -> Result<Vec<u8>, ReadFailure> {
    let file = std::fs::File::open(path).map_err(ReadFailure::Io)?;
    let meta = file.metadata().map_err(ReadFailure::Io)?;
    if meta.is_dir() {
        return Err(ReadFailure::Problem(
            "is a directory, not a model file".into(),
        ));
    }
    // Only a regular file's length is real; a device or a pipe reports 0.
    let known_len = meta.is_file().then_some(meta.len());
    if let Some(len) = known_len.filter(|&len| len > max) {
        return Err(ReadFailure::Problem(format!(
            "{len} bytes is too large for a model file"
        )));
    }
    let mut reader = io::BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        let have = buf.len() as u64;
        match want(&buf) {
            Want::Stop => break,
            Want::AtLeast(n) => {
                if n <= have || n > max {
                    break;
                }
                if read_bounded(&mut reader, n - have - 1, &mut buf).map_err(ReadFailure::Io)?
                    < n - have
                {
                    break;
                }
            }
            Want::Exactly(n) => {
                if n > max {
                    break;
                }
                let more = n.saturating_sub(have);
                read_bounded(&mut reader, more, &mut buf).map_err(ReadFailure::Io)?;
                if buf.len() as u64 > n {
                    let extra = known_len.filter(|&len| len > n).map(|len| len - n);
                    return Err(ReadFailure::Problem(trailing_message(extra, n)));
                }
                break;
            }
        }
    }
    Ok(buf)
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

    /// A toy format for the staged reader: magic `MG`, one byte giving the
    /// body length, the body.
    fn toy(bytes: &[u8]) -> Want {
        if bytes.len() < 2 {
            return if b"MG".starts_with(bytes) {
                Want::AtLeast(2)
            } else {
                Want::Stop
            };
        }
        if &bytes[..2] != b"MG" {
            return Want::Stop;
        }
        match bytes.get(2) {
            None => Want::AtLeast(3),
            Some(&n) => Want::Exactly(3 + u64::from(n)),
        }
    }

    /// A FIFO in `dir` fed by a thread with `head` and then `tail` repeated
    /// until the reader closes it, as `/dev/zero` or an endless pipe would.
    fn endless_fifo(dir: &Path, head: &'static [u8], tail: u8) -> std::path::PathBuf {
        let path = dir.join("stream");
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo (coreutils) is needed by this test");
        assert!(status.success(), "mkfifo {} failed", path.display());
        let writer = path.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(writer)
                .unwrap();
            let _ = f.write_all(head);
            let block = [tail; 4096];
            while f.write_all(&block).is_ok() {}
        });
        path
    }

    #[test]
    fn staged_read_stops_at_a_wrong_magic_on_an_endless_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = endless_fifo(dir.path(), b"", 0);
        let bytes = read_file(&path, 1 << 40, toy).unwrap();
        assert_eq!(bytes, [0, 0]);
    }

    #[test]
    fn staged_read_reads_one_byte_past_the_stated_end_of_a_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = endless_fifo(dir.path(), b"MG\x05hello", b'x');
        match read_file(&path, 1 << 40, toy) {
            Err(ReadFailure::Problem(p)) => {
                assert_eq!(p, "trailing data after the 8 bytes the header describes")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn staged_read_of_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        for (content, want) in [
            (&b"MG\x03abc"[..], Ok(&b"MG\x03abc"[..])),
            (b"MG\x03ab", Ok(b"MG\x03ab")),
            (b"MX\x03abc", Ok(b"MX")),
            (b"", Ok(b"")),
            (
                b"MG\x01abcd",
                Err("3 bytes of trailing data after the 4 bytes the header describes"),
            ),
        ] {
            std::fs::write(&path, content).unwrap();
            match (read_file(&path, 100, toy), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want),
                (Err(ReadFailure::Problem(p)), Err(want)) => assert_eq!(p, want),
                (got, want) => panic!("{content:?}: {got:?}, wanted {want:?}"),
            }
        }
        std::fs::write(&path, [0u8; 101]).unwrap();
        assert!(matches!(
            read_file(&path, 100, toy),
            Err(ReadFailure::Problem(p)) if p == "101 bytes is too large for a model file"
        ));
        assert!(matches!(
            read_file(dir.path(), 100, toy),
            Err(ReadFailure::Problem(p)) if p.contains("is a directory")
        ));
    }
}
