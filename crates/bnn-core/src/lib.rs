//! # bnn-core: binary neural networks as XNOR + popcount
//!
//! Weights, activations and inputs are ±1, stored one bit each in `u64`
//! words with **bit 1 = +1** and zero padding (see [`bits`]). For two such
//! vectors of length `n`,
//!
//! ```text
//! x · w = (#agreeing bits) − (#disagreeing bits) = n − 2·popcount(x XOR w)
//! ```
//!
//! so a dense layer is XOR and popcount over whole words ([`kernel`]). A
//! hidden neuron's `sign(x·w + b)` is an integer comparison of that dot
//! product, and so is a batch norm in front of the sign ([`layer::Threshold`]):
//! no floating point runs before the output layer.
//!
//! A u8-input model keeps the pixel values for its first layer
//! ([`pixel::PixelDense`]): `Σ p·w` over pixels 0..=255 and ±1 weights is
//! still an integer, so its thresholds fold the same way.
//!
//! [`model::Model`] runs one image or a batch (on rayon's threads with the
//! default feature `parallel`, in order without it); [`format`](mod@format) reads and
//! writes the `.bnn` file. With the `reference` feature, `reference` runs the
//! same network in f32 with `ndarray`: the oracle the packed engine is tested
//! against, kept out of the default build so the engine carries no
//! linear-algebra crate.

// Every public item says what it is for; clippy `-D warnings` in CI keeps it so.
#![warn(missing_docs)]

pub mod bits;
mod blank;
pub mod conv;
pub mod encoding;
pub mod error;
pub mod format;
pub mod input;
pub mod kernel;
pub mod layer;
pub mod model;
pub mod pixel;
#[cfg(feature = "reference")]
pub mod reference;
pub mod rule;
pub mod sparse;
pub mod threads;
pub mod transform;

pub use bits::BitMatrix;
pub use conv::{Conv2d, ConvStage, Layer, Padding};
pub use encoding::FeatureEncoding;
pub use error::{Error, Result};
pub use format::ModelFile;
pub use input::{InputEncoding, InputShape};
pub use kernel::Kernel;
pub use layer::{BinaryDense, Threshold, Transform};
pub use model::{DecisionRule, Model, Predictions, RawSection, RunOptions};
pub use pixel::PixelDense;
#[cfg(feature = "reference")]
pub use reference::Reference;
pub use sparse::LayerMode;
pub use threads::Threads;
