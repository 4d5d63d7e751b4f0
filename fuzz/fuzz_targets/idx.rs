//! IDX files as found on disk: raw, or gzip when they start with its magic.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::idx(data, scratch_dir())));
