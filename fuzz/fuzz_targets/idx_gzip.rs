//! IDX files behind a valid gzip layer: the input is compressed first, so
//! mutations reach the IDX header and data as the gzip path decodes them.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::idx_gzip(data, scratch_dir())));
