//! CSV files, read as a labelled data set (`bnn_data::labelled::open`).
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::csv(data, scratch_dir())));
