//! Builders for the bytes of input files, including damaged ones: the
//! headers say whatever the test asks, whether or not the data agree.

use std::io::Write;

use bnn_data::idx::{Images, Labels};

use crate::bytes::bytes;

/// An IDX file: `magic`, the big-endian `dims`, then exactly `data`.
pub fn idx_bytes(magic: u32, dims: impl AsRef<[u32]>, data: &[u8]) -> Vec<u8> {
    let dims = dims.as_ref();
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&magic.to_be_bytes());
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// An IDX3 image header with arbitrary (possibly lying) dimensions.
pub fn image_header(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    idx_bytes(0x0803, [count, rows, cols], &[])
}

/// `bytes`, gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// `count` random images of `rows × cols` pixels.
pub fn images(count: usize, rows: usize, cols: usize, seed: u64) -> Images {
    Images {
        count,
        rows,
        cols,
        pixels: bytes(count * rows * cols, seed),
    }
}

/// `count` random labels in 0..10.
pub fn labels(count: usize, seed: u64) -> Labels {
    Labels {
        labels: bytes(count, seed).into_iter().map(|b| b % 10).collect(),
    }
}

/// Writes `bytes` to `path`, failing the test with the path on error.
#[track_caller]
pub fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The names in `dir`, sorted: what a test expects to find there, and
/// nothing else.
pub fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
