//! `.bnn` models from bytes.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::checks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::bnn_model(data)));
