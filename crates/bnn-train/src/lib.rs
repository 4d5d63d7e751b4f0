//! # bnn-train: float-latent training of binary MLPs and CNNs
//!
//! Latent weights are floats; the forward pass uses their signs, and hidden
//! activations are signs of the pre-activation (of its batch norm, when
//! enabled). The backward pass treats each sign as the identity where
//! |pre-activation| ≤ clip and as zero elsewhere (the straight-through
//! estimator). After training, the signs are packed and each neuron's bias
//! or batch norm is folded into an integer threshold on its XNOR-popcount dot
//! product ([`export`]), so the exported [`bnn_core::Model`] runs without
//! floating point until the output scores.
//!
//! Convolutional models (`--arch`, [`arch`]) put convolutions, each with an
//! optional 2×2 max pool, batch norm and sign, before the dense layers
//! ([`cnn`], with the im2col arithmetic in [`conv`] and the batch norms of
//! their maps in [`mapnorm`]); their batch norms fold
//! into per-channel thresholds the same way.
//!
//! Determinism: every random draw comes from a seeded ChaCha stream per
//! epoch, and every parallel reduction is split in fixed tiles, so a seed
//! gives the same bytes for any thread count, and a resumed run
//! ([`checkpoint`]) ends where the uninterrupted one does.
//!
//! ```no_run
//! # fn main() -> bnn_train::Result<()> {
//! let config = bnn_train::recipe("seed")?;
//! let data = bnn_train::data::synthetic(2000, 500, 7);
//! let outcome = bnn_train::train(
//!     &config,
//!     &data,
//!     &mut bnn_train::progress::Silent,
//!     &bnn_train::TrainOptions::default(),
//! )?;
//! println!("test accuracy {:.2}%", 100.0 * outcome.test_accuracy);
//! # Ok(()) }
//! ```

// Every public item says what it is for; clippy `-D warnings` in CI keeps it so.
#![warn(missing_docs)]

pub mod arch;
pub mod checkpoint;
pub mod cnn;
pub mod config;
pub mod conv;
pub mod data;
pub mod error;
pub mod eval;
pub mod export;
pub mod linalg;
pub mod loss;
pub mod mapnorm;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod optim;
pub mod output;
pub mod prepare;
pub mod progress;
pub mod recipe;
pub mod scratch;
pub mod step;
pub mod train;

pub use config::{Input, Loss, ModelKind, Optimizer, Rule, Schedule, TrainConfig};
pub use data::Dataset;
pub use error::{Result, TrainError};
pub use progress::Progress;
pub use recipe::{recipe, RECIPES};
pub use train::{finish, init, run_epochs, train, TrainOptions, TrainOutcome, Trained};
