//! # bnn-fp32: the FP32 baseline
//!
//! The 1-bit engine's claims are only as good as the baseline they are
//! measured against, so this crate runs the same networks in plain f32 the
//! way a tuned runtime would: a batch is a GEMM per layer over chunks of images
//! (`ndarray`/`matrixmultiply` sgemm with run-time SIMD selection, weights
//! pre-transposed once, bias and activation fused into one pass, chunks in
//! parallel with rayon), and a single image is a vectorised matrix–vector
//! loop with per-thread buffers. Convolutions are im2col + the same sgemm,
//! image by image ([`conv`]).
//!
//! [`from_binary`] turns a `bnn_core::Model` into the same network in f32;
//! its scores equal the binary engine's bit for bit, so timing the two
//! compares engines, not networks. [`format`](mod@format) reads and writes the FP32
//! model file (`docs/FP32_FORMAT.md`).

// Every public item says what it is for; clippy `-D warnings` in CI keeps it so.
#![warn(missing_docs)]

mod batch;
pub mod conv;
mod convert;
pub mod error;
pub mod format;
pub mod model;
mod single;

pub use batch::CHUNK;
pub use conv::{ConvF32, MapShape, Padding};
pub use convert::from_binary;
pub use error::Fp32Error;
pub use model::{DenseF32, Fp32Model, Hidden, InputTransform};
