//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use bnn_data::idx::{Images, Labels};

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn images(count: usize, rows: usize, cols: usize, seed: u64) -> Images {
    Images {
        count,
        rows,
        cols,
        pixels: bytes(count * rows * cols, seed),
    }
}

pub fn labels(count: usize, seed: u64) -> Labels {
    Labels {
        labels: bytes(count, seed).into_iter().map(|b| b % 10).collect(),
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// An IDX3 header with arbitrary (possibly lying) dimensions.
pub fn image_header(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut h = 0x0803u32.to_be_bytes().to_vec();
    for d in [count, rows, cols] {
        h.extend_from_slice(&d.to_be_bytes());
    }
    h
}

pub fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}
