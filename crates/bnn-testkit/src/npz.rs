//! Builders for NumPy files: `.npy` arrays with any header the test asks
//! for (including lying ones) and `.npz` zips of them.

use std::io::Write;

pub use zip::CompressionMethod;

/// A version 1.0 `.npy`: dtype `descr`, the shape literal as written (for
/// example `"(4, 6)"` or `"(3,)"`), then exactly `data`.
pub fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Little-endian bytes of `v` (`<i8`).
pub fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of `v` (`<f8`).
pub fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Little-endian bytes of `v` (`<f4`).
pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A zip holding `entries` (file name, bytes) in order.
pub fn zip_bytes<N: AsRef<str>>(entries: &[(N, Vec<u8>)], method: CompressionMethod) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        zip.start_file(name.as_ref(), options).expect("zip entry");
        zip.write_all(bytes).expect("zip into memory");
    }
    zip.finish().expect("zip into memory").into_inner()
}
