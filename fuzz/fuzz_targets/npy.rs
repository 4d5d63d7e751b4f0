//! `.npy` arrays: the input is stored uncompressed as `fc1_w.npy` in a
//! valid zip, so mutations reach the array parser rather than the zip's.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::npy(data, scratch_dir())));
