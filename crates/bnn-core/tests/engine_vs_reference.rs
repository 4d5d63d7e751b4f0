//! The packed engine against the float reference, bit for bit: for random
//! networks (1–4 layers, widths up to 2048, often not multiples of 64),
//! random thresholds (flipped ones too), biases and images, every available
//! kernel gives the reference's hidden bits, scores and classes, through
//! `predict` and through `predict_batch` with 1 and 2 threads. The same
//! holds for u8-input models (a pixel layer first), on dense images and on
//! MNIST-like ones that are mostly zero pixels, and for CNNs (1–4
//! convolutions of k ∈ {1, 3, 5}, 1–130 channels, every padding, with and
//! without pooling, then dense layers) on odd and even image sizes. Each
//! XNOR layer of the MLPs is also run with the dense and the sparse kernel
//! forced, on the same inputs. Any of them with a per-class score scale
//! gives the reference's scaled scores and their classes.

use bnn_core::conv::Padding;
use bnn_core::kernel::available;
use bnn_core::{
    BinaryDense, BitMatrix, DecisionRule, InputEncoding, InputShape, LayerMode, Model, PixelDense,
    Reference, RunOptions, Threshold, Transform,
};
use bnn_testkit::models::{random_cnn, random_mnist_cnn, random_score_scale, ConvPlan, CNN_SMALL};
use ndarray::ArrayView2;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random model of `input_len` inputs and `widths`, its input threshold
/// drawn too.
fn random_model(
    rng: &mut ChaCha8Rng,
    input_len: usize,
    widths: &[usize],
    rule: DecisionRule,
) -> Model {
    let shape = [&[input_len][..], widths].concat();
    let threshold = rng.gen();
    bnn_testkit::models::random_model(rng, &shape, rule, threshold)
}

fn random_bits(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> BitMatrix {
    let values: Vec<i8> = (0..rows * cols)
        .map(|_| if rng.gen::<bool>() { 1 } else { -1 })
        .collect();
    BitMatrix::from_pm1(rows, cols, &values).unwrap()
}

/// A u8-input model: a pixel layer of `widths[0]` neurons, then XNOR layers.
fn random_u8_model(
    rng: &mut ChaCha8Rng,
    input_len: usize,
    widths: &[usize],
    rule: DecisionRule,
) -> Model {
    let shape = [&[input_len][..], widths].concat();
    bnn_testkit::models::random_u8_model(
        rng,
        &shape,
        rule,
        bnn_testkit::models::u8_spread(input_len),
    )
}

fn check(model: &Model, images: usize, rng: &mut ChaCha8Rng) {
    // An all-black and an all-white image (every input bit 0, or 1 for any
    // threshold above 0), dense images, images of mostly zero pixels like
    // MNIST's (which exercise the skipping of zero pixel groups and the
    // sparse layer kernel), and images whose ink lies in one box of a zero
    // background (which exercise a CNN's skipping of blank fields).
    let shape = model.input_shape();
    let (h, w) = (shape.height as usize, shape.width as usize);
    let per_position = model.input_len() / (h * w);
    let pixels: Vec<u8> = (0..images)
        .flat_map(|i| {
            let zeros = match i {
                0 => 1.0,
                _ if i % 2 == 0 => 0.0,
                _ => 0.8,
            };
            let (y0, x0) = (rng.gen_range(0..h), rng.gen_range(0..w));
            let (y1, x1) = (rng.gen_range(y0..h) + 1, rng.gen_range(x0..w) + 1);
            let inked = |at: usize| {
                let (y, x) = (at / per_position / w, at / per_position % w);
                i % 4 != 3 || (y0..y1).contains(&y) && (x0..x1).contains(&x)
            };
            (0..model.input_len())
                .map(|at| match i {
                    1 => 255,
                    _ if !inked(at) || rng.gen_bool(zeros) => 0,
                    _ => rng.gen(),
                })
                .collect::<Vec<u8>>()
        })
        .collect();
    let reference = Reference::new(model);
    let view = ArrayView2::from_shape((images, model.input_len()), &pixels).unwrap();
    let acts = reference.activations(view);
    let ref_scores = acts.last().unwrap();
    let ref_classes = reference.classes(view);
    let c = model.num_classes();
    for kernel in available() {
        // Hidden bits.
        let bits = model.hidden_activations(kernel, &pixels).unwrap();
        // One bit matrix per hidden layer: every output of the reference
        // but the scores (a missing or extra layer fails here, not in zip).
        assert_eq!(bits.len(), acts.len() - 1, "{kernel}: hidden layers");
        for (layer, (packed, float)) in bits.iter().zip(&acts).enumerate() {
            let unpacked: Vec<f32> = packed.to_pm1().into_iter().map(f32::from).collect();
            assert_eq!(
                unpacked.as_slice(),
                float.as_slice().unwrap(),
                "{kernel}: bits of layer {}",
                layer + 1
            );
        }
        // Every XNOR layer with each layer mode forced, on the same inputs.
        check_layer_modes(
            model,
            kernel,
            &pixels,
            &bits,
            ref_scores.as_slice().unwrap(),
        );
        // Batches with 1 and 2 threads.
        for threads in [1, 2] {
            let p = model
                .predict_batch_with(
                    &pixels,
                    RunOptions {
                        kernel: Some(kernel),
                        threads: Some(threads),
                    },
                )
                .unwrap();
            assert_eq!(
                p.scores.as_slice(),
                ref_scores.as_slice().unwrap(),
                "{kernel}, {threads} threads: scores"
            );
            assert_eq!(
                p.classes, ref_classes,
                "{kernel}, {threads} threads: classes"
            );
            let options = RunOptions {
                kernel: Some(kernel),
                threads: Some(threads),
            };
            assert_eq!(
                model.classify_batch_with(&pixels, options).unwrap(),
                ref_classes,
                "{kernel}, {threads} threads: classes without scores"
            );
        }
        // One image at a time.
        let mut scores = vec![0f32; c];
        for (i, image) in pixels.chunks_exact(model.input_len()).enumerate() {
            let class = model
                .predict_scores_into(kernel, image, &mut scores)
                .unwrap();
            assert_eq!(
                scores.as_slice(),
                ref_scores.row(i).as_slice().unwrap(),
                "{kernel}: image {i}"
            );
            assert_eq!(class, ref_classes[i]);
        }
    }
    // The default path agrees as well.
    assert_eq!(model.predict_batch(&pixels).unwrap(), ref_classes);
    let first = &pixels[..model.input_len()];
    assert_eq!(model.predict(first).unwrap(), ref_classes[0]);
}

/// The dense and the sparse kernel of each XNOR layer give the engine's
/// (already checked) bits of the next layer and the reference's scores.
fn check_layer_modes(
    model: &Model,
    kernel: bnn_core::Kernel,
    pixels: &[u8],
    bits: &[BitMatrix],
    ref_scores: &[f32],
) {
    let rows = pixels.len() / model.input_len();
    let mut inputs = Vec::new();
    if model.is_convolutional() {
        // The dense layers start from the last convolution's (pooled,
        // flattened) map; the convolutions' own filters run through the
        // same layers in `hidden_activations` under the process's mode.
        inputs.extend(bits[model.convs().len() - 1..].iter().cloned());
    } else {
        if model.pixel_layer().is_none() {
            let mut x = BitMatrix::new(rows, model.input_len());
            for (r, image) in pixels.chunks_exact(model.input_len()).enumerate() {
                kernel.pack_pixels(image, model.input_threshold(), x.row_mut(r));
            }
            inputs.push(x);
        }
        inputs.extend(bits.iter().cloned());
    }
    // The input of every XNOR layer; the last one's is the last hidden bits.
    assert_eq!(inputs.len(), model.layers().len(), "{kernel}: layer inputs");
    let c = model.num_classes();
    for (i, (layer, x)) in model.layers().iter().zip(&inputs).enumerate() {
        for mode in [LayerMode::Dense, LayerMode::Sparse, LayerMode::Auto] {
            if layer.is_hidden() {
                let mut words = vec![0u64; rows * layer.output_words()];
                layer.fire_with(kernel, mode, x.words(), rows, &mut words);
                let out = BitMatrix::from_words(rows, layer.outputs(), words).unwrap();
                assert_eq!(
                    out,
                    inputs[i + 1],
                    "{kernel} {mode}: bits of XNOR layer {i}"
                );
                continue;
            }
            let padded = layer.outputs().div_ceil(8) * 8;
            let mut pops = vec![0u32; rows * padded];
            layer.popcounts_with(kernel, mode, x.words(), rows, &mut pops);
            let Transform::Scores(bias) = layer.transform() else {
                unreachable!("the last layer emits scores")
            };
            let n = layer.inputs() as i32;
            for r in 0..rows {
                for j in 0..c {
                    let dot = (n - 2 * pops[r * padded + j] as i32) as f32;
                    let score = match model.score_scale() {
                        Some(scale) => dot * scale[j] + bias[j],
                        None => dot + bias[j],
                    };
                    assert_eq!(
                        score,
                        ref_scores[r * c + j],
                        "{kernel} {mode}: image {r} score {j}"
                    );
                }
            }
        }
    }
}

/// Images to check a network on, keeping the total work (weights × images)
/// near `budget`: fewer images for bigger networks, never fewer than 3.
fn images_for(input_len: usize, widths: &[usize], budget: usize) -> usize {
    let shape = [&[input_len][..], widths].concat();
    let work: usize = shape.windows(2).map(|w| w[0] * w[1]).sum();
    (budget / work.max(1)).clamp(3, 70)
}

/// A random CNN drawn from `seed`: the input shape, 1–4 convolutions that
/// fit it, then 1–2 dense layers; and how many images to check it on,
/// keeping the reference's work near `budget` multiply-adds. `padding`
/// is drawn (same or valid) when `None`.
fn drawn_cnn(
    seed: u64,
    (h, w): (usize, usize),
    u8_input: bool,
    padding: Option<Padding>,
    budget: usize,
) -> (Model, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let c = if rng.gen_bool(0.15) {
        rng.gen_range(1..=130)
    } else {
        rng.gen_range(1..=3)
    };
    let drawn = if rng.gen() {
        Padding::Same
    } else {
        Padding::Valid
    };
    let padding = padding.unwrap_or(drawn);
    let (mut ho, mut wo, mut ch) = (h, w, c);
    let mut plans = Vec::new();
    let mut work = 0;
    for _ in 0..rng.gen_range(1..=4) {
        let mut k = [1, 3, 5][rng.gen_range(0..3)];
        if padding == Padding::Valid && (k > ho || k > wo) {
            k = 1;
        }
        let channels = rng.gen_range(1..=130);
        ho = padding.output_side(ho, k).unwrap();
        wo = padding.output_side(wo, k).unwrap();
        work += ho * wo * channels * k * k * ch;
        let pool = ho >= 2 && wo >= 2 && rng.gen();
        if pool {
            (ho, wo) = (ho / 2, wo / 2);
        }
        ch = channels;
        plans.push(ConvPlan { k, channels, pool });
    }
    let flat = ho * wo * ch;
    let dense: Vec<usize> = (0..rng.gen_range(1..=2))
        .map(|_| rng.gen_range(1..=200))
        .collect();
    work += dense
        .iter()
        .fold((flat, 0), |(n, acc), &m| (m, acc + n * m))
        .1;
    let encoding = if u8_input {
        InputEncoding::U8
    } else {
        InputEncoding::Binary {
            threshold: rng.gen(),
        }
    };
    let rule = if rng.gen() {
        DecisionRule::Seed
    } else {
        DecisionRule::Scores
    };
    let input = InputShape::new(h as u32, w as u32, c as u32);
    let model = random_cnn(&mut rng, input, encoding, &plans, padding, &dense, rule);
    (model, (budget / work.max(1)).clamp(2, 12))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_cnns_match_reference(
        seed in any::<u64>(),
        h in 1usize..=13,
        w in 1usize..=13,
        u8_input in any::<bool>(),
    ) {
        let (model, images) = drawn_cnn(seed, (h, w), u8_input, None, 20_000_000);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
        check(&model, images, &mut rng);
    }

    /// Zero padding: the border positions' dots count their in-bounds
    /// cells only (the reference reads padded cells as 0), on maps as
    /// small as 1×1 where every window overhangs both sides.
    #[test]
    fn random_zero_padded_cnns_match_reference(
        seed in any::<u64>(),
        h in 1usize..=13,
        w in 1usize..=13,
        u8_input in any::<bool>(),
    ) {
        let (model, images) = drawn_cnn(seed, (h, w), u8_input, Some(Padding::Zero), 20_000_000);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
        check(&model, images, &mut rng);
    }

    /// A per-class score scale on every kind of model: binary and u8
    /// MLPs (a u8 one of one layer too, whose pixel layer scores), and
    /// CNNs; scales of 0, 1 and fractional ones, under both rules.
    #[test]
    fn random_scaled_networks_match_reference(
        seed in any::<u64>(),
        kind in 0usize..4,
        input_len in 1usize..=600,
        widths in prop::collection::vec(1usize..=300, 1..=3),
        seed_rule in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rule = if seed_rule { DecisionRule::Seed } else { DecisionRule::Scores };
        let (model, images) = match kind {
            0 => (random_model(&mut rng, input_len, &widths, rule), images_for(input_len, &widths, 2_000_000)),
            1 => (random_u8_model(&mut rng, input_len, &widths, rule), images_for(input_len, &widths, 2_000_000)),
            2 => (random_u8_model(&mut rng, input_len, &widths[..1], rule), images_for(input_len, &widths[..1], 2_000_000)),
            _ => drawn_cnn(seed, (1 + input_len % 9, 1 + widths[0] % 9), seed_rule, None, 5_000_000),
        };
        let scale = random_score_scale(&mut rng, model.num_classes());
        let scaled = model.clone().with_score_scale(scale.clone()).unwrap();
        prop_assert_eq!(scaled.score_scale(), Some(&scale[..]));
        check(&scaled, images, &mut rng);
    }

    #[test]
    fn random_networks_match_reference(
        seed in any::<u64>(),
        input_len in 1usize..=2048,
        widths in prop::collection::vec(1usize..=2048, 1..=4),
        seed_rule in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rule = if seed_rule { DecisionRule::Seed } else { DecisionRule::Scores };
        let images = images_for(input_len, &widths, 4_000_000);
        let model = random_model(&mut rng, input_len, &widths, rule);
        check(&model, images, &mut rng);
    }

    #[test]
    fn random_u8_networks_match_reference(
        seed in any::<u64>(),
        input_len in 1usize..=2048,
        widths in prop::collection::vec(1usize..=1100, 1..=4),
        seed_rule in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rule = if seed_rule { DecisionRule::Seed } else { DecisionRule::Scores };
        let images = images_for(input_len, &widths, 2_000_000);
        let model = random_u8_model(&mut rng, input_len, &widths, rule);
        check(&model, images, &mut rng);
    }
}

/// Maps wider than the 64 positions a blank-field mask holds run every
/// position (with a narrow pooled map after them).
#[test]
fn wide_cnns_match_reference() {
    for seed in 0..6 {
        let padding = (seed % 3 == 1).then_some(Padding::Zero);
        let (model, images) = drawn_cnn(
            seed,
            (1 + seed as usize % 3, 65 + 5 * seed as usize),
            seed % 2 == 0,
            padding,
            20_000_000,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
        check(&model, images.max(4), &mut rng);
    }
}

#[test]
fn mnist_cnn_shapes_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (encoding, padding) in [
        (InputEncoding::U8, Padding::Same),
        (InputEncoding::Binary { threshold: 128 }, Padding::Valid),
        (InputEncoding::Binary { threshold: 128 }, Padding::Zero),
        (InputEncoding::U8, Padding::Zero),
    ] {
        let model = random_mnist_cnn(&mut rng, encoding, &CNN_SMALL, padding, &[256, 10]);
        check(&model, 12, &mut rng);
    }
}

#[test]
fn mnist_shapes_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for widths in [vec![512, 10], vec![1024, 1024, 1024, 10]] {
        for rule in [DecisionRule::Seed, DecisionRule::Scores] {
            let model = random_model(&mut rng, 784, &widths, rule);
            check(&model, 150, &mut rng);
            let model = random_u8_model(&mut rng, 784, &widths, rule);
            check(&model, 150, &mut rng);
        }
    }
    // A one-layer u8 model: the pixel layer emits the scores.
    let model = random_u8_model(&mut rng, 784, &[10], DecisionRule::Scores);
    check(&model, 150, &mut rng);
}

#[test]
fn u8_models_chain_and_number_their_layers() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let hidden =
        PixelDense::hidden(random_bits(&mut rng, 5, 6), vec![Threshold::at_least(0); 5]).unwrap();
    let output = PixelDense::output(random_bits(&mut rng, 3, 6), vec![0.0; 3]).unwrap();
    let next = BinaryDense::output(random_bits(&mut rng, 2, 5), vec![0.0; 2]).unwrap();
    let wrong = BinaryDense::output(random_bits(&mut rng, 2, 4), vec![0.0; 2]).unwrap();
    let model = Model::with_pixel_layer(hidden.clone(), vec![next], DecisionRule::Scores).unwrap();
    assert_eq!(model.shape(), vec![6, 5, 2]);
    assert_eq!(model.layer_count(), 2);
    assert_eq!(model.input_encoding(), bnn_core::InputEncoding::U8);
    assert_eq!(model.weight_bits(), 5 * 6 + 2 * 5);
    let err = Model::with_pixel_layer(hidden.clone(), vec![wrong], DecisionRule::Scores)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layer 2 takes 4 inputs but receives 5"),
        "{err}"
    );
    assert_eq!(
        Model::with_pixel_layer(hidden, vec![], DecisionRule::Scores)
            .unwrap_err()
            .to_string(),
        "invalid model: the last layer must emit scores"
    );
    let one = Model::with_pixel_layer(output, vec![], DecisionRule::Scores).unwrap();
    assert_eq!(one.num_classes(), 3);
    assert_eq!(one.shape(), vec![6, 3]);
}

#[test]
fn decision_rules() {
    assert_eq!(DecisionRule::Scores.decide(&[1.0, 3.0, 3.0, -2.0]), 1);
    assert_eq!(DecisionRule::Scores.decide(&[-5.0, -4.0]), 1);
    assert_eq!(DecisionRule::Seed.decide(&[-1.0, 3.0, 5.0]), 1);
    assert_eq!(DecisionRule::Seed.decide(&[-1.0, 0.0, 5.0]), 1);
    assert_eq!(DecisionRule::Seed.decide(&[-1.0, -0.5, -5.0]), 0);
}

#[test]
fn bad_batches_are_errors() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let model = random_model(&mut rng, 10, &[4, 3], DecisionRule::Scores);
    let err = model.predict_batch(&[0u8; 15]).unwrap_err().to_string();
    assert!(err.contains("15 bytes"), "{err}");
    assert!(model.predict_batch(&[]).unwrap().is_empty());
}

#[test]
fn tiny_shapes_match_reference() {
    // Single rows, single inputs and single outputs are where a matrix
    // library may hand back a non-standard memory layout.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for input_len in [1usize, 2, 65] {
        for widths in [vec![1], vec![1, 1], vec![3, 1], vec![1, 4], vec![64, 2]] {
            for images in [1usize, 2, 3] {
                let model = random_model(&mut rng, input_len, &widths, DecisionRule::Scores);
                check(&model, images, &mut rng);
                let model = random_u8_model(&mut rng, input_len, &widths, DecisionRule::Scores);
                check(&model, images, &mut rng);
            }
        }
    }
}
