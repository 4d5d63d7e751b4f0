//! Images and labels as the trainer sees them: a training split whose last
//! images are held out for validation, and a test split touched once per
//! reported model.

use crate::config::{CLASSES, INPUT_MAP, MAX_CLASSES};
use crate::error::{Result, TrainError};

/// A borrowed run of images (`image_len` bytes each) and their labels.
#[derive(Clone, Copy, Debug)]
pub struct Split<'a> {
    /// `len() × image_len` bytes, image after image, HWC order.
    pub pixels: &'a [u8],
    /// One class index per image.
    pub labels: &'a [u16],
    /// Bytes of one image.
    pub image_len: usize,
}

impl<'a> Split<'a> {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn image(&self, i: usize) -> &'a [u8] {
        &self.pixels[i * self.image_len..(i + 1) * self.image_len]
    }

    /// The first `n` images (all of them when `n` is larger).
    pub fn take(&self, n: usize) -> Split<'a> {
        let n = n.min(self.len());
        Split {
            pixels: &self.pixels[..n * self.image_len],
            labels: &self.labels[..n],
            image_len: self.image_len,
        }
    }
}

/// Training and test images of one shape, and their labels, checked once so
/// that the loops need not.
#[derive(Clone, Debug)]
pub struct Dataset {
    train_pixels: Vec<u8>,
    train_labels: Vec<u16>,
    test_pixels: Vec<u8>,
    test_labels: Vec<u16>,
    input_map: (usize, usize, usize),
    classes: usize,
}

impl Dataset {
    /// MNIST-shaped data: 28×28 grey images of 10 classes.
    pub fn new(
        train_pixels: Vec<u8>,
        train_labels: Vec<u16>,
        test_pixels: Vec<u8>,
        test_labels: Vec<u16>,
    ) -> Result<Self> {
        Dataset::with_shape(
            INPUT_MAP,
            CLASSES,
            train_pixels,
            train_labels,
            test_pixels,
            test_labels,
        )
    }

    /// Images of `input_map` (height, width, channels; HWC order) and
    /// labels in `0..classes`. Checks that every image is whole, every
    /// label a class, and neither set empty.
    pub fn with_shape(
        input_map: (usize, usize, usize),
        classes: usize,
        train_pixels: Vec<u8>,
        train_labels: Vec<u16>,
        test_pixels: Vec<u8>,
        test_labels: Vec<u16>,
    ) -> Result<Self> {
        let (h, w, c) = input_map;
        let image_len = h.checked_mul(w).and_then(|n| n.checked_mul(c)).unwrap_or(0);
        if image_len == 0 {
            return Err(TrainError::Data(format!(
                "images of {h}x{w}x{c} hold no values"
            )));
        }
        if !(2..=MAX_CLASSES).contains(&classes) {
            return Err(TrainError::Data(format!(
                "{classes} classes: a classifier needs 2 to {MAX_CLASSES}"
            )));
        }
        for (name, pixels, labels) in [
            ("training", &train_pixels, &train_labels),
            ("test", &test_pixels, &test_labels),
        ] {
            if Some(pixels.len()) != labels.len().checked_mul(image_len) {
                return Err(TrainError::Data(format!(
                    "{name} set: {} pixel bytes for {} labels of {image_len}-value images",
                    pixels.len(),
                    labels.len()
                )));
            }
            if let Some(i) = labels.iter().position(|&l| usize::from(l) >= classes) {
                return Err(TrainError::Data(format!(
                    "{name} label {i} is {}, not a class 0..{classes}",
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
            input_map,
            classes,
        })
    }

    /// Images in the training split, validation images included.
    pub fn train_len(&self) -> usize {
        self.train_labels.len()
    }

    /// Height, width and channels of an image.
    pub fn input_map(&self) -> (usize, usize, usize) {
        self.input_map
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        let (h, w, c) = self.input_map;
        h * w * c
    }

    /// The number of classes labels are drawn from.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The training split minus the last `validation` images, and those
    /// images.
    pub fn train_and_validation(&self, validation: usize) -> (Split<'_>, Split<'_>) {
        let n = self.train_len() - validation.min(self.train_len());
        let image_len = self.image_len();
        (
            Split {
                pixels: &self.train_pixels[..n * image_len],
                labels: &self.train_labels[..n],
                image_len,
            },
            Split {
                pixels: &self.train_pixels[n * image_len..],
                labels: &self.train_labels[n..],
                image_len,
            },
        )
    }

    /// The test split, for the final evaluation only.
    pub fn test(&self) -> Split<'_> {
        Split {
            pixels: &self.test_pixels,
            labels: &self.test_labels,
            image_len: self.image_len(),
        }
    }

    /// The first `train` training and `test` test images (for quick runs).
    pub fn truncated(&self, train: usize, test: usize) -> Result<Self> {
        let train = train.min(self.train_len());
        let test = test.min(self.test_labels.len());
        let image_len = self.image_len();
        Dataset::with_shape(
            self.input_map,
            self.classes,
            self.train_pixels[..train * image_len].to_vec(),
            self.train_labels[..train].to_vec(),
            self.test_pixels[..test * image_len].to_vec(),
            self.test_labels[..test].to_vec(),
        )
    }
}

/// Copies an image of `map` (height, width, channels; HWC) moved by
/// `(dx, dy)` pixels, filling with 0.
pub fn shift_image(src: &[u8], map: (usize, usize, usize), dx: i32, dy: i32, dst: &mut [u8]) {
    let (h, w, c) = map;
    dst.fill(0);
    for y in 0..h as i32 {
        let sy = y - dy;
        if !(0..h as i32).contains(&sy) {
            continue;
        }
        for x in 0..w as i32 {
            let sx = x - dx;
            if (0..w as i32).contains(&sx) {
                let (to, from) = (
                    (y as usize * w + x as usize) * c,
                    (sy as usize * w + sx as usize) * c,
                );
                dst[to..to + c].copy_from_slice(&src[from..from + c]);
            }
        }
    }
}

/// Copies an image of `map` rotated by `angle` (radians) and scaled by
/// `factor` about its centre, then moved by `at` pixels; each value is the
/// bilinear blend of the four source pixels around its preimage (0 outside
/// the image), rounded, channel by channel. Rotation and scale by 0 and 1
/// with whole-pixel moves give [`shift_image`]'s result.
pub fn warp_image(
    src: &[u8],
    map: (usize, usize, usize),
    angle: f32,
    factor: f32,
    at: (f32, f32),
    dst: &mut [u8],
) {
    let (h, w, ch) = map;
    let (mid_x, mid_y) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    let (c, s) = (angle.cos() / factor, angle.sin() / factor);
    let value = |x: f32, y: f32, k: usize| -> f32 {
        if (0.0..w as f32).contains(&x) && (0.0..h as f32).contains(&y) {
            f32::from(src[(y as usize * w + x as usize) * ch + k])
        } else {
            0.0
        }
    };
    for y in 0..h {
        for x in 0..w {
            let (u, v) = (x as f32 - mid_x - at.0, y as f32 - mid_y - at.1);
            let sx = c * u + s * v + mid_x;
            let sy = -s * u + c * v + mid_y;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            for k in 0..ch {
                let blend = value(x0, y0, k) * (1.0 - fx) * (1.0 - fy)
                    + value(x0 + 1.0, y0, k) * fx * (1.0 - fy)
                    + value(x0, y0 + 1.0, k) * (1.0 - fx) * fy
                    + value(x0 + 1.0, y0 + 1.0, k) * fx * fy;
                dst[(y * w + x) * ch + k] = blend.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Small, learnable, MNIST-shaped data for tests and smoke runs: each class
/// is a random binary prototype, and each image flips a tenth of its
/// prototype's pixels.
pub fn synthetic(train: usize, test: usize, seed: u64) -> Dataset {
    synthetic_shaped(INPUT_MAP, CLASSES, train, test, seed)
}

/// [`synthetic`] data of any image shape and class count.
pub fn synthetic_shaped(
    map: (usize, usize, usize),
    classes: usize,
    train: usize,
    test: usize,
    seed: u64,
) -> Dataset {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let len = map.0 * map.1 * map.2;
    let prototypes: Vec<Vec<bool>> = (0..classes)
        .map(|_| (0..len).map(|_| rng.gen_bool(0.35)).collect())
        .collect();
    let mut make = |n: usize| {
        let mut pixels = Vec::with_capacity(n * len);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let c = rng.gen_range(0..classes);
            labels.push(c as u16);
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
    Dataset::with_shape(map, classes, trp, trl, tep, tel).expect("synthetic data is well formed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::INPUTS;

    /// Without rotation or scale the warp is the whole-pixel shift; a
    /// quarter turn moves a pixel where the geometry says; a doubling
    /// spreads a pixel's ink over four pixels that keep it.
    #[test]
    fn warp_is_the_shift_and_turns_and_scales() {
        let src: Vec<u8> = (0..INPUTS).map(|i| (i * 37 % 256) as u8).collect();
        let (mut warped, mut shifted) = (vec![0u8; INPUTS], vec![0u8; INPUTS]);
        for (dx, dy) in [(0, 0), (1, -2), (-1, 1), (3, 0)] {
            warp_image(
                &src,
                INPUT_MAP,
                0.0,
                1.0,
                (dx as f32, dy as f32),
                &mut warped,
            );
            shift_image(&src, INPUT_MAP, dx, dy, &mut shifted);
            assert_eq!(warped, shifted, "shift ({dx}, {dy})");
        }
        let mut dot = vec![0u8; INPUTS];
        dot[2 * 28 + 20] = 200; // x 20, y 2
        warp_image(
            &dot,
            INPUT_MAP,
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
        warp_image(&block, INPUT_MAP, 0.0, 2.0, (0.0, 0.0), &mut warped);
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
    fn labels_beyond_a_byte_are_classes() {
        // 300 classes: labels above 255 are kept, not wrapped, and the class
        // count is checked against the largest.
        let d = Dataset::with_shape(
            (1, 2, 1),
            300,
            vec![0; 4],
            vec![299, 256],
            vec![0; 2],
            vec![1],
        )
        .unwrap();
        assert_eq!(d.train_and_validation(0).0.labels, [299, 256]);
        let e = Dataset::with_shape((1, 2, 1), 300, vec![0; 2], vec![300], vec![0; 2], vec![1])
            .unwrap_err();
        assert!(e.to_string().contains("label 0 is 300"), "{e}");
        let e = Dataset::with_shape((1, 2, 1), 65_536, vec![0; 2], vec![0], vec![0; 2], vec![1])
            .unwrap_err();
        assert!(e.to_string().contains("2 to 65535"), "{e}");
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
        shift_image(&src, INPUT_MAP, 1, -2, &mut dst);
        assert_eq!(dst[28 * 3 + 8], 200);
        assert_eq!(dst.iter().filter(|&&p| p != 0).count(), 1);
        src[0] = 9;
        shift_image(&src, INPUT_MAP, -1, 0, &mut dst);
        assert_eq!(
            dst.iter().filter(|&&p| p != 0).count(),
            1,
            "pixel 0 falls off"
        );
    }
}
