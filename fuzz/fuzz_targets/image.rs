//! The PNG and PGM images `bnn classify` reads, and its sniffing of what a
//! file holds.
//!
//! The readers are the CLI's own (`bnn::inputs`, from the library the
//! binary runs), so what is fuzzed is exactly what the binary runs; the
//! decoder they call is `bnn_data::image`, which is also run directly.
#![no_main]

use bnn::inputs;
use bnn_fuzz::budget::bounded;
use bnn_fuzz::{checks, scratch_dir};
use libfuzzer_sys::fuzz_target;

/// An MNIST model's input.
const PIXELS: usize = 28 * 28;

/// A model of [`PIXELS`] inputs that records no shape: any image of that
/// many pixels is decoded in full.
const TAKES: inputs::Takes = inputs::Takes {
    len: PIXELS,
    shape: bnn_core::InputShape::flat(PIXELS as u32),
    convolutional: false,
};

fuzz_target!(|data: &[u8]| {
    let path = scratch_dir().join("input.png");
    std::fs::write(&path, data).expect("cannot write the fuzz scratch file");
    let name = path.display().to_string();
    bounded(data.len(), || {
        match inputs::read_image(&path, None, &TAKES) {
            Ok(gray) => assert_eq!(gray.len(), PIXELS),
            Err(e) => checks::assert_one_line(&format!("{e:#}"), &name),
        }
        // A data set read whole is the labelled readers', fuzzed on their own.
        let whole = |p: &std::path::Path| -> anyhow::Result<inputs::Source> {
            anyhow::bail!("{}: read whole", p.display())
        };
        if let Err(e) = inputs::expand(std::slice::from_ref(&path), &whole, false) {
            checks::assert_one_line(&format!("{e:#}"), &name);
        }
        // The decoder itself, as the image folders use it: any size,
        // colour kept, the header's claim bounded by the bytes.
        let decoded = match bnn_data::image::sniff(data) {
            Some(bnn_data::image::Format::Png) => {
                bnn_data::image::decode_png_bounded(data, None).ok()
            }
            Some(bnn_data::image::Format::Pgm) => bnn_data::image::decode_pgm(data).ok(),
            None => None,
        };
        if let Some(d) = decoded {
            assert!(d.channels == 1 || d.channels == 3);
            assert_eq!(d.pixels.len(), d.width * d.height * d.channels);
        }
    });
});
