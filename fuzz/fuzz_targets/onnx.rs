//! ONNX models from bytes, through the whole import (reader, graph
//! checks, matcher), and the models that import run.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::checks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::onnx(data)));
