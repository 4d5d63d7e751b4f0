//! Parsing one `.npy` array from a stream of known length.
//!
//! Format (NumPy's `format.py`): the magic `\x93NUMPY`, a version byte pair,
//! a little-endian header length (2 bytes in version 1, 4 bytes in versions
//! 2 and 3), a Python dict literal giving `descr`, `fortran_order` and
//! `shape`, then the raw elements. The declared stream length (the zip
//! entry's uncompressed size) is checked against `product(shape) * itemsize`
//! before the data is read, and the data is read through a limit, so a lying
//! header or zip entry cannot cause a large allocation.

use std::io::Read;

use super::data::NpyData;
use super::pydict::{describe, parse_dict, quote, PyValue};
use super::NpyArray;
use bnn_io::read::{read_bounded, read_full};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Longest header accepted. NumPy pads headers to 64 bytes and they are
/// normally under 200; this only guards against absurd lengths.
const MAX_HEADER_LEN: u64 = 1 << 20;

/// Element type from a `descr` string such as `<i8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dtype {
    /// `b` (bool), `i` (signed), `u` (unsigned) or `f` (float).
    kind: u8,
    /// Bytes per element.
    size: usize,
    big_endian: bool,
}

/// The dtypes [`read_npy_limited`] accepts, for its message about any other.
const SUPPORTED: &str = "bool, int8/16/32/64, uint8/16/32/64, float32/64";

/// The element type of `descr`, or the descr as quoted in a message (cut
/// short) when it is not one this reader knows.
fn parse_descr(descr: &str) -> Result<Dtype, String> {
    let unsupported = || format!("'{}'", quote(descr));
    let bytes = descr.as_bytes();
    if bytes.len() < 3 {
        return Err(unsupported());
    }
    // Bytes, not `str` slicing: the first two characters may be multi-byte.
    let size: usize = std::str::from_utf8(&bytes[2..])
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(unsupported)?;
    let kind = bytes[1];
    let valid = matches!(
        (kind, size),
        (b'b', 1) | (b'i' | b'u', 1 | 2 | 4 | 8) | (b'f', 4 | 8)
    );
    if !valid {
        return Err(unsupported());
    }
    let big_endian = match bytes[0] {
        b'<' | b'|' => false,
        b'>' => true,
        // '=' (native) is never written by NumPy; refuse to guess.
        _ => return Err(unsupported()),
    };
    Ok(Dtype {
        kind,
        size,
        big_endian,
    })
}

/// What a `.npy` header declares, and where the data starts.
pub(crate) struct Header {
    /// The element type, or (`Err`) the header's `descr` as quoted in a
    /// message: each reader says in its own words which dtypes it takes.
    pub(crate) dtype: Result<Dtype, String>,
    pub(crate) fortran: bool,
    pub(crate) shape: Vec<usize>,
    /// Bytes before the first element: prefix and header.
    pub(crate) data_start: u64,
    /// The `descr` as written, when it is a string (string dtypes such as
    /// `<U5` are not [`Dtype`]s, and are read by [`read_npy_strings`]).
    pub(crate) descr: Option<String>,
}

impl Dtype {
    pub(crate) fn is_u8(self) -> bool {
        self.kind == b'u' && self.size == 1
    }

    /// The `descr` as NumPy writes it, e.g. `<f8`.
    pub(crate) fn descr(self) -> String {
        header_descr(&self)
    }
}

fn io(what: &str, e: std::io::Error) -> String {
    format!("reading {what}: {e}")
}

/// Reads one `.npy` array of exactly `declared` bytes from `reader`.
///
/// Errors are plain descriptions; the caller adds the file and array name.
#[cfg(test)]
pub(crate) fn read_npy(reader: &mut dyn Read, declared: u64) -> Result<NpyArray, String> {
    read_npy_limited(reader, declared, u64::MAX)
}

/// The element count of `shape`, refused past `max` before anything is
/// read: a header can claim any size its stream then backs with a
/// decompression bomb.
fn element_count(shape: &[usize], max: u64) -> Result<usize, String> {
    let overflows = || format!("shape {} overflows", shape_str(shape));
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflows)?;
    if count as u64 > max {
        return Err(format!(
            "shape {} holds {count} values, more than the {max} accepted",
            shape_str(shape)
        ));
    }
    Ok(count)
}

/// Reads one `.npy` array of exactly `declared` bytes and at most `max`
/// elements from `reader`.
///
/// Errors are plain descriptions; the caller adds the file and array name.
pub(crate) fn read_npy_limited(
    reader: &mut dyn Read,
    declared: u64,
    max: u64,
) -> Result<NpyArray, String> {
    let Header {
        dtype,
        fortran,
        shape,
        data_start,
        ..
    } = read_header(reader, Some(declared))?;
    let dtype = dtype.map_err(|d| format!("unsupported dtype {d} (supported: {SUPPORTED})"))?;

    let count = element_count(&shape, max)?;
    let overflows = || format!("shape {} overflows", shape_str(&shape));
    let nbytes = count.checked_mul(dtype.size).ok_or_else(overflows)? as u64;
    let present = declared - data_start;
    let need = || {
        format!(
            "shape {} of {} needs {nbytes} bytes of data",
            shape_str(&shape),
            header_descr(&dtype)
        )
    };
    if present < nbytes {
        return Err(format!(
            "truncated data: {} but only {present} are present",
            need()
        ));
    }
    if present > nbytes {
        return Err(format!(
            "trailing data: {} but {present} are present",
            need()
        ));
    }
    let mut raw = Vec::new();
    let got = read_bounded(reader, nbytes, &mut raw).map_err(|e| io("data", e))?;
    if got != nbytes {
        return Err(format!(
            "truncated data: {} but the stream held {got}",
            need()
        ));
    }
    let mut data = decode(&raw, dtype)?;
    if fortran {
        data = data.fortran_to_c(&shape);
    }
    Ok(NpyArray { shape, data })
}

/// Longest string element accepted, in characters: class names are short.
const MAX_STRING_CHARS: usize = 4096;

/// Reads a `.npy` array of strings, NumPy's `<U{n}` (UCS-4) or `|S{n}`
/// (bytes, UTF-8 here) of exactly `declared` bytes, at most `max` elements;
/// each element loses its trailing NULs, NumPy's padding. An object array
/// (`|O`, what `np.array(list_of_str, dtype=object)` saves) holds pickles,
/// which are never read.
pub(crate) fn read_npy_strings(
    reader: &mut dyn Read,
    declared: u64,
    max: u64,
) -> Result<(Vec<usize>, Vec<String>), String> {
    let header = read_header(reader, Some(declared))?;
    let descr = header.descr.as_deref().unwrap_or("");
    let bytes = descr.as_bytes();
    if descr.ends_with('O') && bytes.len() <= 3 {
        return Err("object arrays are not supported, save with dtype=str".into());
    }
    let width: Option<usize> = bytes
        .get(2..)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .filter(|&n| (1..=MAX_STRING_CHARS).contains(&n));
    let (unicode, big_endian, width) = match (bytes.first(), bytes.get(1), width) {
        (Some(b'<' | b'|'), Some(b'U'), Some(n)) => (true, false, n),
        (Some(b'>'), Some(b'U'), Some(n)) => (true, true, n),
        (Some(b'|' | b'<' | b'>'), Some(b'S'), Some(n)) => (false, false, n),
        _ => {
            let shown = header
                .dtype
                .map_or_else(|quoted| quoted, |d| format!("'{}'", d.descr()));
            return Err(format!(
                "dtype {shown} is not a string dtype (<U or |S of 1 to {MAX_STRING_CHARS} characters)"
            ));
        }
    };
    let item = if unicode { 4 * width } else { width };
    let count = element_count(&header.shape, max)?;
    let nbytes = (count as u64).saturating_mul(item as u64);
    let present = declared - header.data_start;
    if present != nbytes {
        return Err(format!(
            "shape {} of {descr} needs {nbytes} bytes of data but {present} are present",
            shape_str(&header.shape)
        ));
    }
    let mut raw = Vec::new();
    let got = read_bounded(reader, nbytes, &mut raw).map_err(|e| io("data", e))?;
    if got != nbytes {
        return Err(format!(
            "truncated data: {nbytes} bytes needed but the stream held {got}"
        ));
    }
    let mut out = Vec::with_capacity(count);
    for (i, chunk) in raw.chunks_exact(item.max(1)).take(count).enumerate() {
        let text = if unicode {
            let mut s = String::new();
            for unit in chunk.chunks_exact(4) {
                let a = [unit[0], unit[1], unit[2], unit[3]];
                let code = if big_endian {
                    u32::from_be_bytes(a)
                } else {
                    u32::from_le_bytes(a)
                };
                s.push(char::from_u32(code).ok_or_else(|| {
                    format!("element {i} holds {code:#x}, not a Unicode character")
                })?);
            }
            s
        } else {
            String::from_utf8(chunk.to_vec())
                .map_err(|_| format!("element {i} is not UTF-8 text"))?
        };
        out.push(text.trim_end_matches('\0').to_string());
    }
    Ok((header.shape, out))
}

/// Reads the prefix and header of a `.npy` stream, leaving `reader` at the
/// first element; `declared` is the stream's length when it is known.
pub(crate) fn read_header(reader: &mut dyn Read, declared: Option<u64>) -> Result<Header, String> {
    let mut prefix = [0u8; 12];
    if let Some(declared) = declared.filter(|&d| d < 10) {
        return Err(format!(
            "truncated .npy: {declared} bytes, shorter than the 10-byte minimum header"
        ));
    }
    let got = read_full(reader, &mut prefix[..10]).map_err(|e| io("header", e))?;
    if got < 10 {
        return Err(format!("truncated .npy: header cut off after {got} bytes"));
    }
    if &prefix[..6] != MAGIC {
        return Err(format!(
            "not a .npy array: bad magic {:02x?} (expected \\x93NUMPY)",
            &prefix[..6]
        ));
    }
    let (major, minor) = (prefix[6], prefix[7]);
    let (header_len, prefix_len) = match major {
        1 => (u64::from(u16::from_le_bytes([prefix[8], prefix[9]])), 10u64),
        2 | 3 => {
            let got = read_full(reader, &mut prefix[10..12]).map_err(|e| io("header", e))?;
            if got < 2 {
                return Err("truncated .npy: header cut off".to_string());
            }
            let len = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
            (u64::from(len), 12u64)
        }
        _ => return Err(format!("unsupported .npy format version {major}.{minor}")),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(format!("implausible .npy header length {header_len}"));
    }
    let data_start = prefix_len + header_len;
    if let Some(declared) = declared.filter(|&d| data_start > d) {
        return Err(format!(
            "truncated .npy: header needs {data_start} bytes but the array has {declared}"
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    let got = read_full(reader, &mut header).map_err(|e| io("header", e))?;
    if got < header.len() {
        return Err(format!(
            "truncated .npy: header cut off after {} bytes",
            prefix_len + got as u64
        ));
    }
    let header = String::from_utf8(header).map_err(|_| "header is not text".to_string())?;
    let (dtype, fortran, shape, descr) = parse_header(&header)?;
    Ok(Header {
        dtype,
        fortran,
        shape,
        data_start,
        descr,
    })
}

#[allow(clippy::type_complexity)]
fn parse_header(
    header: &str,
) -> Result<(Result<Dtype, String>, bool, Vec<usize>, Option<String>), String> {
    let dict = parse_dict(header).map_err(|e| format!("bad .npy header: {e}"))?;
    let get = |key: &str| {
        dict.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("bad .npy header: no '{key}' key"))
    };
    let (dtype, descr) = match get("descr")? {
        PyValue::Str(s) => (parse_descr(s), Some(s.clone())),
        other => (
            Err(format!("{} (a structured array)", describe(other))),
            None,
        ),
    };
    let fortran = match get("fortran_order")? {
        PyValue::Bool(b) => *b,
        other => {
            return Err(format!(
                "bad .npy header: fortran_order is {}",
                describe(other)
            ))
        }
    };
    let shape = match get("shape")? {
        PyValue::Tuple(items) => items
            .iter()
            .map(|v| match v {
                PyValue::Int(n) => {
                    usize::try_from(*n).map_err(|_| format!("dimension {n} too large"))
                }
                other => Err(format!("bad .npy header: shape holds {}", describe(other))),
            })
            .collect::<Result<Vec<usize>, String>>()?,
        other => return Err(format!("bad .npy header: shape is {}", describe(other))),
    };
    Ok((dtype, fortran, shape, descr))
}

/// Dimensions a shape shows in full in a message; a longer one shows its
/// first few and its rank, so a hostile header of ten thousand dimensions
/// gives a line, not 90 KB.
const SHOWN_DIMS: usize = 6;

/// "(512, 784)", as Python writes it; past [`SHOWN_DIMS`] dimensions,
/// "(1, 1, 1, 1, 1, 1, … 10000 dimensions)".
pub(crate) fn shape_str(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ if shape.len() > SHOWN_DIMS => {
            let dims: Vec<String> = shape[..SHOWN_DIMS].iter().map(usize::to_string).collect();
            format!("({}, … {} dimensions)", dims.join(", "), shape.len())
        }
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

fn header_descr(d: &Dtype) -> String {
    let order = if d.size == 1 {
        '|'
    } else if d.big_endian {
        '>'
    } else {
        '<'
    };
    format!("{order}{}{}", d.kind as char, d.size)
}

/// Builds a typed vector from raw bytes, `$t` being the element type.
macro_rules! decode_as {
    ($raw:expr, $t:ty, $big:expr) => {{
        const N: usize = std::mem::size_of::<$t>();
        $raw.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                if $big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            })
            .collect::<Vec<$t>>()
    }};
}

fn decode(raw: &[u8], d: Dtype) -> Result<NpyData, String> {
    let be = d.big_endian;
    Ok(match (d.kind, d.size) {
        (b'b', 1) => NpyData::Bool(
            raw.iter()
                .enumerate()
                .map(|(i, &b)| match b {
                    0 => Ok(false),
                    1 => Ok(true),
                    _ => Err(format!("bool element {i} has byte value {b}, not 0 or 1")),
                })
                .collect::<Result<_, _>>()?,
        ),
        (b'i', 1) => NpyData::I8(decode_as!(raw, i8, be)),
        (b'i', 2) => NpyData::I16(decode_as!(raw, i16, be)),
        (b'i', 4) => NpyData::I32(decode_as!(raw, i32, be)),
        (b'i', 8) => NpyData::I64(decode_as!(raw, i64, be)),
        (b'u', 1) => NpyData::U8(raw.to_vec()),
        (b'u', 2) => NpyData::U16(decode_as!(raw, u16, be)),
        (b'u', 4) => NpyData::U32(decode_as!(raw, u32, be)),
        (b'u', 8) => NpyData::U64(decode_as!(raw, u64, be)),
        (b'f', 4) => NpyData::F32(decode_as!(raw, f32, be)),
        (b'f', 8) => NpyData::F64(decode_as!(raw, f64, be)),
        _ => return Err(format!("unsupported dtype {}", header_descr(&d))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal `.npy` writer (version 1.0).
    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn read(bytes: &[u8]) -> Result<NpyArray, String> {
        read_npy(&mut &bytes[..], bytes.len() as u64)
    }

    #[test]
    fn little_and_big_endian() {
        let le: Vec<u8> = [1i32, -2].iter().flat_map(|x| x.to_le_bytes()).collect();
        let be: Vec<u8> = [1i32, -2].iter().flat_map(|x| x.to_be_bytes()).collect();
        for (descr, data) in [("<i4", le), (">i4", be)] {
            let a = read(&npy(descr, false, "(2,)", &data)).unwrap();
            assert_eq!(a.shape, [2]);
            assert_eq!(a.data, NpyData::I32(vec![1, -2]));
        }
    }

    #[test]
    fn every_dtype() {
        let cases: Vec<(&str, Vec<u8>, NpyData)> = vec![
            ("|b1", vec![1, 0], NpyData::Bool(vec![true, false])),
            ("|i1", vec![255, 1], NpyData::I8(vec![-1, 1])),
            ("<i2", vec![255, 255, 1, 0], NpyData::I16(vec![-1, 1])),
            (
                "<i8",
                [-1i64, 1].iter().flat_map(|x| x.to_le_bytes()).collect(),
                NpyData::I64(vec![-1, 1]),
            ),
            ("|u1", vec![3, 4], NpyData::U8(vec![3, 4])),
            ("<u1", vec![3, 4], NpyData::U8(vec![3, 4])),
            ("<u2", vec![3, 0, 4, 0], NpyData::U16(vec![3, 4])),
            (
                "<u4",
                [3u32, 4].iter().flat_map(|x| x.to_le_bytes()).collect(),
                NpyData::U32(vec![3, 4]),
            ),
            (
                "<u8",
                [3u64, 4].iter().flat_map(|x| x.to_le_bytes()).collect(),
                NpyData::U64(vec![3, 4]),
            ),
            (
                "<f4",
                [0.5f32, -1.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                NpyData::F32(vec![0.5, -1.0]),
            ),
            (
                "<f8",
                [0.5f64, -1.0]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect(),
                NpyData::F64(vec![0.5, -1.0]),
            ),
        ];
        for (descr, data, expected) in cases {
            let a =
                read(&npy(descr, false, "(2,)", &data)).unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!(a.data, expected, "{descr}");
        }
    }

    #[test]
    fn version_2_header() {
        let v1 = npy("<i2", false, "(1,)", &[5, 0]);
        let mut v2 = MAGIC.to_vec();
        v2.extend_from_slice(&[2, 0]);
        let hlen = u16::from_le_bytes([v1[8], v1[9]]) as u32;
        v2.extend_from_slice(&hlen.to_le_bytes());
        v2.extend_from_slice(&v1[10..]);
        assert_eq!(read(&v2).unwrap().data, NpyData::I16(vec![5]));
        let mut v9 = v1.clone();
        v9[6] = 9;
        assert!(read(&v9).unwrap_err().contains("version 9.0"));
    }

    #[test]
    fn fortran_order_is_converted() {
        let data: Vec<u8> = vec![1, 4, 2, 5, 3, 6];
        let a = read(&npy("|i1", true, "(2, 3)", &data)).unwrap();
        assert_eq!(a.data, NpyData::I8(vec![1, 2, 3, 4, 5, 6]));
    }

    #[test]
    fn size_is_checked_before_reading() {
        let e = read(&npy("<f8", false, "(3,)", &[0; 16])).unwrap_err();
        assert!(
            e.contains("truncated data: shape (3,) of <f8 needs 24 bytes"),
            "{e}"
        );
        let e = read(&npy("<f8", false, "(1,)", &[0; 16])).unwrap_err();
        assert!(e.contains("trailing data"), "{e}");
        // A declared size that lies about a short stream.
        let bytes = npy("<f8", false, "(2,)", &[0; 8]);
        let e = read_npy(&mut &bytes[..], bytes.len() as u64 + 8).unwrap_err();
        assert!(e.contains("stream held 8"), "{e}");
        // A shape claiming an astronomical size fails without allocating.
        let e = read(&npy("<f8", false, "(4000000000, 4000000000)", &[])).unwrap_err();
        assert!(
            e.contains("truncated data") || e.contains("overflow"),
            "{e}"
        );
        let e = read(&npy("<f8", false, "(18446744073709551615, 2)", &[])).unwrap_err();
        assert!(e.contains("overflow"), "{e}");
    }

    #[test]
    fn bad_inputs() {
        assert!(read(b"\x93NUMP").unwrap_err().contains("truncated"));
        assert!(read(b"PK\x03\x04xxxxxxxxxx")
            .unwrap_err()
            .contains("bad magic"));
        let e = read(&npy("<c16", false, "(1,)", &[0; 16])).unwrap_err();
        assert!(e.contains("unsupported dtype '<c16'"), "{e}");
        let e = read(&npy("=i4", false, "(1,)", &[0; 4])).unwrap_err();
        assert!(e.contains("unsupported dtype"), "{e}");
        let e = read(&npy("|b1", false, "(2,)", &[1, 2])).unwrap_err();
        assert!(e.contains("bool element 1 has byte value 2"), "{e}");
        let mut cut = npy("<i4", false, "(1,)", &[0; 4]);
        cut.truncate(40);
        assert!(read(&cut).unwrap_err().contains("truncated"));
    }

    #[test]
    fn string_arrays() {
        let ucs4: Vec<u8> = "ab\0c\0\0"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect();
        let bytes = npy("<U3", false, "(2,)", &ucs4);
        let (shape, names) = read_npy_strings(&mut &bytes[..], bytes.len() as u64, 10).unwrap();
        assert_eq!(
            (shape, names),
            (vec![2], vec!["ab".to_string(), "c".to_string()])
        );
        let bytes = npy("|S2", false, "(2,)", b"x\0yz");
        let (_, names) = read_npy_strings(&mut &bytes[..], bytes.len() as u64, 10).unwrap();
        assert_eq!(names, ["x", "yz"]);
        let bytes = npy("|O", false, "(1,)", &[0; 8]);
        let e = read_npy_strings(&mut &bytes[..], bytes.len() as u64, 10).unwrap_err();
        assert_eq!(e, "object arrays are not supported, save with dtype=str");
        let bytes = npy("<i8", false, "(1,)", &[0; 8]);
        let e = read_npy_strings(&mut &bytes[..], bytes.len() as u64, 10).unwrap_err();
        assert!(e.starts_with("dtype '<i8' is not a string dtype"), "{e}");
        let bytes = npy("|S1", false, "(3,)", b"abc");
        let e = read_npy_strings(&mut &bytes[..], bytes.len() as u64, 2).unwrap_err();
        assert!(
            e.contains("holds 3 values, more than the 2 accepted"),
            "{e}"
        );
    }

    #[test]
    fn the_element_limit_is_checked_before_reading() {
        // The header claims 2^20 elements; no data follows, and the limit
        // speaks before the size check does.
        let bytes = npy("|u1", false, "(1024, 1024)", &[]);
        let e = read_npy_limited(&mut &bytes[..], bytes.len() as u64, 1000).unwrap_err();
        assert!(
            e.contains("(1024, 1024) holds 1048576 values, more than the 1000"),
            "{e}"
        );
    }

    #[test]
    fn scalar_shape() {
        let a = read(&npy("<f8", false, "()", &1.5f64.to_le_bytes())).unwrap();
        assert!(a.shape.is_empty());
        assert_eq!(a.to_f64(), [1.5]);
        assert_eq!(shape_str(&[512, 784]), "(512, 784)");
        assert_eq!(shape_str(&[10]), "(10,)");
        assert_eq!(shape_str(&[1; 6]), "(1, 1, 1, 1, 1, 1)");
        assert_eq!(
            shape_str(&[1; 10_000]),
            "(1, 1, 1, 1, 1, 1, … 10000 dimensions)"
        );
    }

    #[test]
    fn messages_quote_the_header_cut_short() {
        let many = format!("({})", "1, ".repeat(10_000));
        let e = read(&npy("<f8", false, &many, &[0; 16])).unwrap_err();
        assert!(e.len() < 200, "{} bytes: {}", e.len(), &e[..200]);
        assert!(e.contains("… 10000 dimensions"), "{e}");
        let e = read(&npy(&"x".repeat(5000), false, "(1,)", &[0; 8])).unwrap_err();
        assert!(
            e.len() < 200 && e.starts_with("unsupported dtype 'xxx"),
            "{e}"
        );
        let e = read(&npy("|O", false, "(1,)", &[0; 8])).unwrap_err();
        assert!(
            e.contains("unsupported dtype '|O' (supported: bool,"),
            "{e}"
        );
    }
}
