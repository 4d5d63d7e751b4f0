//! A u8-input model derived from a binary-input one, so that the u8 path
//! can be benchmarked and tested end to end on real digits before (and
//! independently of) a trained u8 model.
//!
//! A binary input is `x = sign(p − c)` with `c = t − ½` for the threshold
//! `t`; its linear stand-in is `(p − c)/s` with `s = 127.5`. Then
//! `x·w ≈ (Σ p·w − c·Σ w)/s`, and a first-layer threshold `x·w >= T`
//! becomes `Σ p·w >= s·T + c·Σ w` (rounded up; `<=` and rounded down for a
//! flipped one). The later layers are kept as they are. The result is a real
//! network with its own accuracy (measured, never assumed), not the binary
//! model's: it only approximates it.

use bnn_core::{Model, PixelDense, Result, Threshold, Transform};

/// The u8-input stand-in of a binary-input model (see the module docs).
pub fn u8_stand_in(model: &Model) -> Result<Model> {
    let first = &model.layers()[0];
    let weights = first.weights();
    let c = f64::from(model.input_threshold()) - 0.5;
    let s = 127.5;
    let sums: Vec<f64> = weights
        .to_pm1()
        .chunks_exact(first.inputs())
        .map(|row| row.iter().map(|&w| f64::from(w)).sum())
        .collect();
    let bound = PixelDense::dot_bound(first.inputs()) as f64 + 1.0;
    let transform = match first.transform() {
        Transform::Sign(thresholds) => Transform::Sign(
            thresholds
                .iter()
                .zip(&sums)
                .map(|(t, &sum)| {
                    let cut = (s * f64::from(t.value) + c * sum).clamp(-bound, bound);
                    if t.flip {
                        Threshold::at_most(cut.floor() as i32)
                    } else {
                        Threshold::at_least(cut.ceil() as i32)
                    }
                })
                .collect(),
        ),
        // score = k·(x·w) + b ≈ k·(Σ p·w − c·Σ w)/s + b, with k the class's
        // score scale (1 without one): scaled by s, which no decision rule
        // of this project can tell apart.
        Transform::Scores(bias) => Transform::Scores(
            bias.iter()
                .zip(&sums)
                .enumerate()
                .map(|(j, (&b, &sum))| {
                    let k = model.score_scale().map_or(1.0, |sc| f64::from(sc[j]));
                    (s * f64::from(b) - k * c * sum) as f32
                })
                .collect(),
        ),
    };
    let pixel = PixelDense::new(weights, transform)?;
    let stand_in = Model::with_pixel_layer(pixel, model.layers()[1..].to_vec(), model.rule())?;
    match model.score_scale() {
        Some(scale) => stand_in.with_score_scale(scale.to_vec()),
        None => Ok(stand_in),
    }
}

/// The architecture of the `cnn-small` recipe, the benchmark shape other
/// engines are compared on.
pub const CNN_SMALL_ARCH: &str = "c3x32,p2,c3x64,p2,d256,d10";

/// The architecture of the `cnv` recipe for 10 classes: FINN's CNV.
pub const CNV_ARCH: &str = "c3x64,c3x64,p2,c3x128,c3x128,p2,c3x256,c3x256,d512,d512,d10";

/// A network of exactly `cnn-small`'s shape (u8 28×28×1 input, "same"
/// padding, [`CNN_SMALL_ARCH`]) with pseudo-random ±1 weights, for timing
/// the convolution path where no trained CNN is at hand (see
/// `random_network` for what its thresholds are). Its accuracy is
/// chance: the bench prints what it measures, and it names the model a
/// stand-in.
pub fn cnn_small_stand_in() -> Result<Model> {
    random_network(
        bnn_core::InputShape::new(28, 28, 1),
        bnn_core::Padding::Same,
        &[(3, 32, true), (3, 64, true)],
        &[256, 10],
    )
}

/// A network of exactly the `cnv` recipe's shape (FINN's CNV: u8 32×32×3
/// input, valid padding, [`CNV_ARCH`] with `classes` outputs) with
/// pseudo-random ±1 weights, as [`cnn_small_stand_in`]: for timing
/// CIFAR-shaped inference without a trained model or a data set.
pub fn cnv_stand_in(classes: usize) -> Result<Model> {
    random_network(
        bnn_core::InputShape::new(32, 32, 3),
        bnn_core::Padding::Valid,
        &[
            (3, 64, false),
            (3, 64, true),
            (3, 128, false),
            (3, 128, true),
            (3, 256, false),
            (3, 256, false),
        ],
        &[512, 512, classes],
    )
}

/// SplitMix64 from `seed`: a fixed stream, so every run times the same
/// network on the same images, with no dependency for it.
fn split_mix(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `images` images of `per_image` uniformly random pixel values, the same
/// on every run: what a model is timed on when no data set fits its shape.
/// Uniform noise has no blank (all-zero) fields, so the engine's blank
/// field skipping saves nothing on it: the time is the whole network's.
pub fn random_images(images: usize, per_image: usize) -> Vec<u8> {
    let mut next = split_mix(0x2545_F491_4F6C_DD1D);
    let mut pixels = Vec::with_capacity(images * per_image);
    while pixels.len() < images * per_image {
        let word = next().to_le_bytes();
        let take = word.len().min(images * per_image - pixels.len());
        pixels.extend_from_slice(&word[..take]);
    }
    pixels
}

/// A u8-input network of convolutions `(k, channels, pooled)` and dense
/// widths (the last the classes) with pseudo-random ±1 weights from a fixed
/// seed, so every run times the same network. Its thresholds sit at 0, the
/// middle of a random dot's range, so about half the channels fire, as in
/// a trained network; a quarter are flipped, so pooling runs both its OR
/// and its AND.
fn random_network(
    input: bnn_core::InputShape,
    padding: bnn_core::Padding,
    convs: &[(usize, usize, bool)],
    dense: &[usize],
) -> Result<Model> {
    use bnn_core::{BinaryDense, BitMatrix, Conv2d, InputEncoding, Layer};
    let mut next = split_mix(0x9E37_79B9_7F4A_7C15);
    let mut bits = |rows: usize, cols: usize| {
        let pm1: Vec<i8> = (0..rows * cols)
            .map(|_| if next() & 1 == 1 { 1 } else { -1 })
            .collect();
        BitMatrix::from_pm1(rows, cols, &pm1)
    };
    let thresholds = |n: usize| {
        (0..n)
            .map(|i| {
                if i % 4 == 3 {
                    Threshold::at_most(0)
                } else {
                    Threshold::at_least(0)
                }
            })
            .collect::<Vec<_>>()
    };
    let mut layers = Vec::new();
    let (mut h, mut w, mut c) = (
        input.height as usize,
        input.width as usize,
        input.channels as usize,
    );
    for &(k, n, pooled) in convs {
        let window = k * k * c;
        layers.push(Layer::Conv(Conv2d::new(
            k,
            c,
            padding,
            bits(n, window)?,
            thresholds(n),
        )?));
        let shrink = k - 1 - 2 * padding.before(k);
        (h, w, c) = (h - shrink, w - shrink, n);
        if pooled {
            layers.push(Layer::MaxPool);
            (h, w) = (h / 2, w / 2);
        }
    }
    let mut inputs = h * w * c;
    let (last, hidden) = dense.split_last().expect("a network has an output layer");
    for &n in hidden {
        layers.push(Layer::Dense(BinaryDense::hidden(
            bits(n, inputs)?,
            thresholds(n),
        )?));
        inputs = n;
    }
    layers.push(Layer::Dense(BinaryDense::output(
        bits(*last, inputs)?,
        vec![0.0; *last],
    )?));
    Model::from_layers(
        input,
        InputEncoding::U8,
        layers,
        bnn_core::DecisionRule::Scores,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary model's per-class score scale carries over: on images of
    /// 0 and 255 only, where `(p − 127.5)/127.5` is the ±1 bit exactly,
    /// the stand-in scores 127.5 times the model's scores, class by class.
    #[test]
    fn the_u8_stand_in_keeps_a_per_class_score_scale() {
        use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Kernel};
        let signs: Vec<i8> = (0..3 * 20)
            .map(|i| if i % 3 == 0 { 1 } else { -1 })
            .collect();
        let w = BitMatrix::from_pm1(3, 20, &signs).unwrap();
        let layer = BinaryDense::output(w, vec![0.5, -1.0, 2.0]).unwrap();
        let model = Model::new(20, 128, vec![layer], DecisionRule::Scores)
            .unwrap()
            .with_score_scale(vec![0.25, 0.0, 3.0])
            .unwrap();
        let stand_in = u8_stand_in(&model).unwrap();
        assert_eq!(stand_in.score_scale(), model.score_scale());
        for seed in 0..20u32 {
            let image: Vec<u8> = (0..20u32)
                .map(|i| if (i * 7 + seed * 3) % 5 < 2 { 255 } else { 0 })
                .collect();
            let (mut want, mut got) = ([0f32; 3], [0f32; 3]);
            model
                .predict_scores_into(Kernel::Scalar, &image, &mut want)
                .unwrap();
            stand_in
                .predict_scores_into(Kernel::Scalar, &image, &mut got)
                .unwrap();
            for k in 0..3 {
                let w = 127.5 * want[k];
                assert!(
                    (got[k] - w).abs() <= 1e-3 * (1.0 + w.abs()),
                    "{k}: {got:?} {want:?}"
                );
            }
        }
    }

    #[test]
    fn the_cnn_stand_in_has_the_benchmark_shape_and_varies() {
        let model = cnn_small_stand_in().unwrap();
        let twin = bnn_fp32::from_binary(&model);
        assert_eq!(twin.arch(), CNN_SMALL_ARCH);
        assert_eq!(model.input_len(), 784);
        assert!(model.input_encoding().is_u8());
        // Its answers depend on the image: pixels of a ramp and its mirror.
        assert_answers_vary(&model, (0..784).map(|i| (i % 256) as u8).collect());
        assert_eq!(model, cnn_small_stand_in().unwrap(), "deterministic");
    }

    /// `model` scores `image` and its mirror differently.
    fn assert_answers_vary(model: &bnn_core::Model, image: Vec<u8>) {
        let mirror: Vec<u8> = image.iter().rev().copied().collect();
        let classes = model.num_classes();
        let (mut sa, mut sb) = (vec![0f32; classes], vec![0f32; classes]);
        model
            .predict_scores_into(bnn_core::Kernel::Scalar, &image, &mut sa)
            .unwrap();
        model
            .predict_scores_into(bnn_core::Kernel::Scalar, &mirror, &mut sb)
            .unwrap();
        assert_ne!(sa, sb);
    }

    /// The cnv stand-in is FINN's CNV: valid padding down to 1×1×256, the
    /// class count asked for, its FP32 twin of the same architecture, and
    /// answers that depend on the image.
    #[test]
    fn the_cnv_stand_in_is_finns_cnv() {
        let model = cnv_stand_in(10).unwrap();
        assert_eq!(model.arch(), CNV_ARCH);
        assert_eq!(bnn_fp32::from_binary(&model).arch(), CNV_ARCH);
        assert_eq!(model.input_shape(), bnn_core::InputShape::new(32, 32, 3));
        assert!(model.input_encoding().is_u8());
        let last = model.convs().last().unwrap().output_shape();
        assert_eq!(last, bnn_core::InputShape::new(1, 1, 256));
        assert!(model
            .convs()
            .iter()
            .all(|s| s.conv().padding() == bnn_core::Padding::Valid));
        assert_eq!(cnv_stand_in(100).unwrap().num_classes(), 100);
        assert_answers_vary(&model, (0..3072).map(|i| (i * 7 % 256) as u8).collect());
    }

    /// Random images are the same on every call, of the length asked for,
    /// and spread over the whole pixel range.
    #[test]
    fn random_images_are_fixed_and_spread() {
        let a = random_images(3, 1001);
        assert_eq!(a.len(), 3003);
        assert_eq!(a, random_images(3, 1001));
        let mut seen = [false; 256];
        for &p in &a {
            seen[p as usize] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 250);
        assert_eq!(&random_images(4, 1001)[..3003], &a[..]);
    }
}
