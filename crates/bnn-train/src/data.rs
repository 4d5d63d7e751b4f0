//! Images and labels as the trainer sees them: a training split whose last
//! images are held out for validation, and a test split touched once per
//! reported model.

use crate::config::{CLASSES, INPUTS};
use crate::error::{Result, TrainError};

/// A borrowed run of images (`INPUTS` bytes each) and their labels.
#[derive(Clone, Copy, Debug)]
pub struct Split<'a> {
    pub pixels: &'a [u8],
    pub labels: &'a [u8],
}

impl<'a> Split<'a> {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &'a [u8] {
        &self.pixels[i * INPUTS..(i + 1) * INPUTS]
    }

    /// The first `n` images (all of them when `n` is larger).
    pub fn take(&self, n: usize) -> Split<'a> {
        let n = n.min(self.len());
        Split {
            pixels: &self.pixels[..n * INPUTS],
            labels: &self.labels[..n],
        }
    }
}

/// Training and test images, checked once so that the loops need not.
#[derive(Clone, Debug)]
pub struct Dataset {
    train_pixels: Vec<u8>,
    train_labels: Vec<u8>,
    test_pixels: Vec<u8>,
    test_labels: Vec<u8>,
}

impl Dataset {
    /// Checks that every image has `INPUTS` pixels and every label is a class.
    pub fn new(
        train_pixels: Vec<u8>,
        train_labels: Vec<u8>,
        test_pixels: Vec<u8>,
        test_labels: Vec<u8>,
    ) -> Result<Self> {
        for (name, pixels, labels) in [
            ("training", &train_pixels, &train_labels),
            ("test", &test_pixels, &test_labels),
        ] {
            if pixels.len() != labels.len() * INPUTS {
                return Err(TrainError::Data(format!(
                    "{name} set: {} pixel bytes for {} labels of {INPUTS}-pixel images",
                    pixels.len(),
                    labels.len()
                )));
            }
            if let Some(i) = labels.iter().position(|&l| usize::from(l) >= CLASSES) {
                return Err(TrainError::Data(format!(
                    "{name} label {i} is {}, not a class 0..{CLASSES}",
                    labels[i]
                )));
            }
            if labels.is_empty() {
                return Err(TrainError::Data(format!("the {name} set is empty")));
            }
        }
        Ok(Dataset {
            train_pixels,
            train_labels,
            test_pixels,
            test_labels,
        })
    }

    pub fn train_len(&self) -> usize {
        self.train_labels.len()
    }

    /// The training split minus the last `validation` images, and those
    /// images.
    pub fn train_and_validation(&self, validation: usize) -> (Split<'_>, Split<'_>) {
        let n = self.train_len() - validation.min(self.train_len());
        (
            Split {
                pixels: &self.train_pixels[..n * INPUTS],
                labels: &self.train_labels[..n],
            },
            Split {
                pixels: &self.train_pixels[n * INPUTS..],
                labels: &self.train_labels[n..],
            },
        )
    }

    pub fn test(&self) -> Split<'_> {
        Split {
            pixels: &self.test_pixels,
            labels: &self.test_labels,
        }
    }

    /// The first `train` training and `test` test images (for quick runs).
    pub fn truncated(&self, train: usize, test: usize) -> Result<Self> {
        let train = train.min(self.train_len());
        let test = test.min(self.test_labels.len());
        Dataset::new(
            self.train_pixels[..train * INPUTS].to_vec(),
            self.train_labels[..train].to_vec(),
            self.test_pixels[..test * INPUTS].to_vec(),
            self.test_labels[..test].to_vec(),
        )
    }
}

/// Copies a 28×28 image moved by `(dx, dy)` pixels, filling with 0.
pub fn shift_image(src: &[u8], dx: i32, dy: i32, dst: &mut [u8]) {
    const SIDE: i32 = 28;
    dst.fill(0);
    for y in 0..SIDE {
        let sy = y - dy;
        if !(0..SIDE).contains(&sy) {
            continue;
        }
        for x in 0..SIDE {
            let sx = x - dx;
            if (0..SIDE).contains(&sx) {
                dst[(y * SIDE + x) as usize] = src[(sy * SIDE + sx) as usize];
            }
        }
    }
}

/// Copies a 28×28 image rotated by `angle` (radians) and scaled by
/// `factor` about its centre, then moved by `at` pixels; each pixel is the
/// bilinear blend of the four source pixels around its preimage (0 outside
/// the image), rounded. Rotation and scale by 0 and 1 with whole-pixel
/// moves give [`shift_image`]'s result.
pub fn warp_image(src: &[u8], angle: f32, factor: f32, at: (f32, f32), dst: &mut [u8]) {
    const SIDE: usize = 28;
    const MID: f32 = 13.5;
    let (c, s) = (angle.cos() / factor, angle.sin() / factor);
    let pixel = |x: f32, y: f32| -> f32 {
        if (0.0..SIDE as f32).contains(&x) && (0.0..SIDE as f32).contains(&y) {
            f32::from(src[y as usize * SIDE + x as usize])
        } else {
            0.0
        }
    };
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (u, v) = (x as f32 - MID - at.0, y as f32 - MID - at.1);
            let sx = c * u + s * v + MID;
            let sy = -s * u + c * v + MID;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let blend = pixel(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + pixel(x0 + 1.0, y0) * fx * (1.0 - fy)
                + pixel(x0, y0 + 1.0) * (1.0 - fx) * fy
                + pixel(x0 + 1.0, y0 + 1.0) * fx * fy;
            dst[y * SIDE + x] = blend.round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// Small, learnable, MNIST-shaped data for tests and smoke runs: each class
/// is a random binary prototype, and each image flips a tenth of its
/// prototype's pixels.
pub fn synthetic(train: usize, test: usize, seed: u64) -> Dataset {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let prototypes: Vec<Vec<bool>> = (0..CLASSES)
        .map(|_| (0..INPUTS).map(|_| rng.gen_bool(0.35)).collect())
        .collect();
    let mut make = |n: usize| {
        let mut pixels = Vec::with_capacity(n * INPUTS);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.gen_range(0..CLASSES);
            labels.push(c as u8);
            for &on in &prototypes[c] {
                let on = on ^ rng.gen_bool(0.1);
                pixels.push(if on {
                    rng.gen_range(128..=255)
                } else {
                    rng.gen_range(0..128)
                });
            }
        }
        (pixels, labels)
    };
    let (trp, trl) = make(train);
    let (tep, tel) = make(test);
    Dataset::new(trp, trl, tep, tel).expect("synthetic data is well formed")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without rotation or scale the warp is the whole-pixel shift; a
    /// quarter turn moves a pixel where the geometry says; a doubling
    /// spreads a pixel's ink over four pixels that keep it.
    #[test]
    fn warp_is_the_shift_and_turns_and_scales() {
        let src: Vec<u8> = (0..INPUTS).map(|i| (i * 37 % 256) as u8).collect();
        let (mut warped, mut shifted) = (vec![0u8; INPUTS], vec![0u8; INPUTS]);
        for (dx, dy) in [(0, 0), (1, -2), (-1, 1), (3, 0)] {
            warp_image(&src, 0.0, 1.0, (dx as f32, dy as f32), &mut warped);
            shift_image(&src, dx, dy, &mut shifted);
            assert_eq!(warped, shifted, "shift ({dx}, {dy})");
        }
        let mut dot = vec![0u8; INPUTS];
        dot[2 * 28 + 20] = 200; // x 20, y 2
        warp_image(
            &dot,
            std::f32::consts::FRAC_PI_2,
            1.0,
            (0.0, 0.0),
            &mut warped,
        );
        // Output (x, y) reads source (y', ...): x = 13.5 − (y_src − 13.5)
        // rotated, so source (20, 2) lands on (25, 20).
        let lit: Vec<usize> = (0..INPUTS).filter(|&i| warped[i] > 0).collect();
        assert_eq!(lit, [20 * 28 + 25], "quarter turn");
        assert_eq!(warped[20 * 28 + 25], 200);
        let mut block = vec![0u8; INPUTS];
        block[13 * 28 + 13] = 160;
        warp_image(&block, 0.0, 2.0, (0.0, 0.0), &mut warped);
        let ink: u32 = warped.iter().map(|&p| u32::from(p)).sum();
        assert!(warped.iter().filter(|&&p| p > 0).count() > 1, "spread");
        assert!((160..=4 * 160).contains(&ink), "ink {ink}");
    }

    #[test]
    fn rejects_bad_labels_and_lengths() {
        let e = Dataset::new(vec![0; INPUTS], vec![10], vec![0; INPUTS], vec![1]).unwrap_err();
        assert!(e.to_string().contains("label 0 is 10"), "{e}");
        let e = Dataset::new(vec![0; INPUTS - 1], vec![1], vec![0; INPUTS], vec![1]).unwrap_err();
        assert!(e.to_string().contains("training set"), "{e}");
    }

    #[test]
    fn validation_is_the_tail() {
        let d = synthetic(10, 2, 1);
        let (t, v) = d.train_and_validation(3);
        assert_eq!((t.len(), v.len()), (7, 3));
        assert_eq!(v.image(0), &d.train_pixels[7 * INPUTS..8 * INPUTS]);
    }

    #[test]
    fn shift_moves_pixels() {
        let mut src = vec![0u8; INPUTS];
        src[28 * 5 + 7] = 200;
        let mut dst = vec![0u8; INPUTS];
        shift_image(&src, 1, -2, &mut dst);
        assert_eq!(dst[28 * 3 + 8], 200);
        assert_eq!(dst.iter().filter(|&&p| p != 0).count(), 1);
        src[0] = 9;
        shift_image(&src, -1, 0, &mut dst);
        assert_eq!(
            dst.iter().filter(|&&p| p != 0).count(),
            1,
            "pixel 0 falls off"
        );
    }
}
