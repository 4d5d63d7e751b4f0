//! Benchmarks that compare the 1-bit engine with the FP32 engine on the
//! same machine, in the same run.
//!
//! Engines are interleaved (A B C A B C ...) after a warm-up and each figure
//! is the median of the repetitions, so that slow drift on a shared machine
//! (frequency, other load) hits every engine alike and the ratios stay
//! meaningful even when absolute numbers move. Each timed run follows
//! [`WARM_UP`] of untimed work by the same engine, so that no engine is
//! timed while the core is still adjusting to it after the one before.
//! Every throughput comes with
//! the accuracy of the same run's predictions when the images have labels;
//! a model of a shape no data set here fits is timed on fixed random
//! images ([`random_images`]), and the report says so.

mod report;
mod run;
mod stand_in;

pub use report::{percent, thousands, BenchReport, Latency, ModelSummary, Throughput, MNIST_DATA};
pub use run::{run, Candidate, Config, Engine, WARM_UP};
pub use stand_in::{
    cnn_small_stand_in, cnv_stand_in, random_images, u8_stand_in, CNN_SMALL_ARCH, CNV_ARCH,
};
