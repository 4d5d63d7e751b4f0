//! Trees of class folders of PNG and PGM images, built from the input
//! (see `checks::image_folder`), read as labelled data sets.
#![no_main]

use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bounded(data.len(), || checks::image_folder(data, scratch_dir())));
