//! CIFAR-10 and CIFAR-100 binary batches, read as labelled data sets.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::cifar(data, scratch_dir())));
