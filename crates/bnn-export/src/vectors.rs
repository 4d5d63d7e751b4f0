//! Test vectors for an export's testbench: images and what the engine says
//! about them (class and every score), so that the hardware is checked
//! against the engine, not against a second copy of the same arithmetic.

use bnn_core::{Model, RunOptions};

use crate::error::{ExportError, Result};

/// Images shipped with an export when the caller gives none.
pub const SYNTHETIC_IMAGES: usize = 16;

/// Most images a testbench carries (its files grow by about 2 KB each).
pub const MAX_IMAGES: usize = 10_000;

/// Images with the engine's classes and scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Vectors {
    /// Images, 1..=[`MAX_IMAGES`].
    pub count: usize,
    /// Bytes of one image: the model's input length.
    pub input_len: usize,
    /// `count × input_len` bytes, image after image.
    pub pixels: Vec<u8>,
    /// The engine's class for each image.
    pub classes: Vec<usize>,
    /// Scores per image: the model's output width.
    pub num_classes: usize,
    /// The engine's `num_classes` scores per image, image after image.
    pub scores: Vec<f32>,
}

impl Vectors {
    /// The engine's answers for `pixels` (`input_len` bytes per image).
    pub fn from_images(model: &Model, pixels: &[u8]) -> Result<Self> {
        let per = model.input_len();
        if pixels.is_empty() || !pixels.len().is_multiple_of(per) {
            return Err(ExportError::Option(format!(
                "test images: {} bytes is not a positive whole number of {per}-pixel images",
                pixels.len()
            )));
        }
        let count = pixels.len() / per;
        if count > MAX_IMAGES {
            return Err(ExportError::Option(format!(
                "test images: {count} images; a testbench carries at most {MAX_IMAGES}"
            )));
        }
        let p = model.predict_batch_with(pixels, RunOptions::default())?;
        Ok(Vectors {
            count,
            input_len: per,
            pixels: pixels.to_vec(),
            classes: p.classes,
            num_classes: p.num_classes,
            scores: p.scores,
        })
    }

    /// `count` images of uniformly random bytes from a fixed generator, so
    /// the same model always gets the same testbench.
    pub fn synthetic(model: &Model, count: usize) -> Result<Self> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let pixels: Vec<u8> = (0..count * model.input_len())
            .map(|_| {
                // splitmix64
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                (z ^ (z >> 31)) as u8
            })
            .collect();
        Self::from_images(model, &pixels)
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= count`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.input_len..(i + 1) * self.input_len]
    }

    /// The engine's scores for image `i`.
    ///
    /// # Panics
    /// If `i >= count`.
    pub fn scores_of(&self, i: usize) -> &[f32] {
        &self.scores[i * self.num_classes..(i + 1) * self.num_classes]
    }
}
