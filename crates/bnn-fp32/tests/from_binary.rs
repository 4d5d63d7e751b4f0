//! The converted model computes exactly what the binary engine computes.

use bnn_core::{DecisionRule, Kernel, RunOptions};
use bnn_fp32::{from_binary, Hidden, InputTransform};
use bnn_testkit::models::{random_model, random_pixels, random_u8_model, rng, u8_spread};

const SHAPES: &[&[usize]] = &[
    &[1, 1],
    &[63, 5],
    &[64, 64, 3],
    &[65, 130, 7],
    &[100, 70, 33, 10],
    &[200, 129, 65, 1, 4],
];

#[test]
fn scores_and_classes_equal_the_binary_engine() {
    let mut rng = rng(1);
    for (s, shape) in SHAPES.iter().enumerate() {
        for rule in [DecisionRule::Scores, DecisionRule::Seed] {
            // Input thresholds from 1 to 255, both edges included.
            let threshold = [1, 255, 128, 7, 200, 60][s];
            let binary = random_model(&mut rng, shape, rule, threshold);
            let fp = from_binary(&binary);
            assert_eq!(fp.shape(), binary.shape());
            assert_eq!(fp.rule(), rule);
            assert_eq!(fp.hidden(), Hidden::Sign);
            assert_eq!(
                fp.input(),
                InputTransform::Binarize {
                    threshold: binary.input_threshold()
                }
            );
            // More images than one chunk, and not a multiple of it.
            let images = 300 + s;
            let px = random_pixels(&mut rng, images, shape[0]);
            let want = binary
                .predict_batch_with(
                    &px,
                    RunOptions {
                        kernel: Some(Kernel::Scalar),
                        threads: Some(1),
                    },
                )
                .unwrap();
            for threads in [None, Some(1), Some(2)] {
                let (classes, scores) = fp.predict_batch_scores(&px, threads).unwrap();
                assert_eq!(scores, want.scores, "shape {shape:?} {rule} {threads:?}");
                assert_eq!(classes, want.classes, "shape {shape:?} {rule} {threads:?}");
            }
            let c = fp.num_classes();
            let mut scores = vec![0f32; c];
            for (i, image) in px.chunks_exact(shape[0]).enumerate().take(40) {
                let class = fp.predict_scores_into(image, &mut scores);
                assert_eq!(scores, want.scores_of(i), "shape {shape:?} image {i}");
                assert_eq!(class, want.classes[i]);
                assert_eq!(fp.predict(image), want.classes[i]);
            }
        }
    }
}

/// The full-size network, once: the shape the benchmarks use.
#[test]
fn mnist_sized_model_matches() {
    let mut rng = rng(2);
    let binary = random_model(&mut rng, &[784, 512, 10], DecisionRule::Scores, 128);
    let fp = from_binary(&binary);
    let px = random_pixels(&mut rng, 20, 784);
    let want = binary
        .predict_batch_with(&px, RunOptions::default())
        .unwrap();
    let (classes, scores) = fp.predict_batch_scores(&px, None).unwrap();
    assert_eq!(scores, want.scores);
    assert_eq!(classes, want.classes);
    // Random ±1 networks spread their scores: a constant answer would mean
    // the comparison tests nothing.
    assert!(classes.iter().any(|&c| c != classes[0]));
}

/// Flipped thresholds negate the weights and move the threshold into the
/// bias with the opposite sign.
#[test]
fn conversion_of_thresholds_is_as_documented() {
    use bnn_core::{BinaryDense, BitMatrix, Model, Threshold};
    let hidden = BinaryDense::hidden(
        BitMatrix::from_pm1(2, 3, &[1, -1, 1, -1, -1, 1]).unwrap(),
        vec![Threshold::at_least(1), Threshold::at_most(-1)],
    )
    .unwrap();
    let out = BinaryDense::output(BitMatrix::from_pm1(1, 2, &[1, 1]).unwrap(), vec![0.5]).unwrap();
    let model = Model::new(3, 100, vec![hidden, out], DecisionRule::Scores).unwrap();
    let fp = from_binary(&model);
    let l = &fp.layers()[0];
    assert_eq!(l.weights, vec![1.0, -1.0, 1.0, 1.0, 1.0, -1.0]);
    assert_eq!(l.bias, vec![-1.0, -1.0]);
    assert_eq!(fp.layers()[1].bias, vec![0.5]);
    assert_eq!(fp.input(), InputTransform::Binarize { threshold: 100 });
}

/// A u8-input model's twin takes the pixel values and gives the binary
/// engine's scores, bit for bit, through both FP32 paths and through its
/// `.f32` file.
#[test]
fn u8_models_have_exact_twins() {
    let mut rng = rng(9);
    for shape in [
        &[784usize, 10][..],
        &[784, 64, 10],
        &[65, 130, 7],
        &[9, 3, 5, 2],
    ] {
        for rule in [DecisionRule::Scores, DecisionRule::Seed] {
            let binary = random_u8_model(&mut rng, shape, rule, u8_spread(shape[0]));
            let fp = from_binary(&binary);
            assert_eq!(fp.input(), InputTransform::Pixel);
            assert_eq!(fp.shape(), binary.shape());
            let fp = bnn_fp32::format::from_bytes(
                &bnn_fp32::format::to_bytes(&fp),
                std::path::Path::new("t.f32"),
            )
            .unwrap();
            // Sparse images, like MNIST's, and dense ones.
            let px: Vec<u8> = random_pixels(&mut rng, 150, shape[0])
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    if (i / shape[0]) % 2 == 1 && p < 200 {
                        0
                    } else {
                        p
                    }
                })
                .collect();
            let want = binary
                .predict_batch_with(
                    &px,
                    RunOptions {
                        kernel: Some(Kernel::Scalar),
                        threads: Some(1),
                    },
                )
                .unwrap();
            for threads in [Some(1), Some(2)] {
                let (classes, scores) = fp.predict_batch_scores(&px, threads).unwrap();
                assert_eq!(scores, want.scores, "shape {shape:?} {rule} {threads:?}");
                assert_eq!(classes, want.classes, "shape {shape:?} {rule}");
            }
            let mut scores = vec![0f32; fp.num_classes()];
            for (i, image) in px.chunks_exact(shape[0]).enumerate().take(30) {
                assert_eq!(fp.predict_scores_into(image, &mut scores), want.classes[i]);
                assert_eq!(scores, want.scores_of(i), "shape {shape:?} image {i}");
            }
        }
    }
}

/// Random CNNs, binary and u8 input, both paddings, kernels 1, 3 and 5,
/// pooled or not (flipped channels among them): the twin's scores equal
/// the engine's with every kernel this CPU runs, on every path.
#[test]
fn cnn_twins_equal_the_engine_with_every_kernel() {
    use bnn_core::{InputEncoding, InputShape, Padding};
    use bnn_testkit::models::{random_cnn, ConvPlan};
    use rand::Rng;

    let mut rng = rng(3);
    for case in 0..24 {
        let encoding = if case % 2 == 0 {
            InputEncoding::U8
        } else {
            InputEncoding::Binary {
                threshold: [1, 128, 255][case % 3],
            }
        };
        let padding = if case % 4 < 2 {
            Padding::Same
        } else {
            Padding::Valid
        };
        let (h, w) = (rng.gen_range(5..=13), rng.gen_range(5..=13));
        let input = InputShape::new(h, w, rng.gen_range(1..=3));
        let (mut sh, mut sw) = (h as usize, w as usize);
        let mut plans = Vec::new();
        for _ in 0..rng.gen_range(1..=3) {
            let k = [1, 3, 5][rng.gen_range(0..3)];
            let (Some(nh), Some(nw)) = (padding.output_side(sh, k), padding.output_side(sw, k))
            else {
                break;
            };
            let pool = nh >= 2 && nw >= 2 && rng.gen();
            (sh, sw) = if pool { (nh / 2, nw / 2) } else { (nh, nw) };
            let channels = [1, 7, 64, 70][rng.gen_range(0..4)];
            plans.push(ConvPlan { k, channels, pool });
        }
        if plans.is_empty() {
            plans.push(ConvPlan {
                k: 1,
                channels: 5,
                pool: false,
            });
        }
        let rule = if case % 5 == 0 {
            DecisionRule::Seed
        } else {
            DecisionRule::Scores
        };
        let binary = random_cnn(&mut rng, input, encoding, &plans, padding, &[9, 6], rule);
        let fp = from_binary(&binary);
        assert_eq!(fp.shape(), binary.shape(), "case {case}");
        assert_eq!(fp.input_len(), binary.input_len());
        let px = random_pixels(&mut rng, 21, binary.input_len());
        let (classes, scores) = fp.predict_batch_scores(&px, Some(2)).unwrap();
        assert_eq!(
            fp.predict_batch_scores(&px, Some(1)).unwrap(),
            (classes.clone(), scores.clone()),
            "case {case}: thread counts"
        );
        for kernel in bnn_core::kernel::available() {
            for threads in [Some(1), Some(2)] {
                let want = binary
                    .predict_batch_with(
                        &px,
                        RunOptions {
                            kernel: Some(kernel),
                            threads,
                        },
                    )
                    .unwrap();
                let what = format!("case {case} {plans:?} {padding:?} {encoding:?} {kernel:?}");
                assert_eq!(scores, want.scores, "{what}");
                assert_eq!(classes, want.classes, "{what}");
            }
        }
        let mut s = vec![0f32; fp.num_classes()];
        for (i, image) in px.chunks_exact(binary.input_len()).enumerate() {
            fp.predict_scores_into(image, &mut s);
            assert_eq!(s, scores[i * 6..(i + 1) * 6], "case {case}, image {i}");
        }
    }
}

/// The benchmark shape `c3x32,p2,c3x64,p2,d256,d10` on MNIST-sized u8
/// images, with every kernel.
#[test]
fn mnist_sized_cnn_matches() {
    use bnn_core::{InputEncoding, InputShape, Padding};
    use bnn_testkit::models::{random_cnn, ConvPlan};
    let mut rng = rng(4);
    let plan = |channels| ConvPlan {
        k: 3,
        channels,
        pool: true,
    };
    let binary = random_cnn(
        &mut rng,
        InputShape::new(28, 28, 1),
        InputEncoding::U8,
        &[plan(32), plan(64)],
        Padding::Same,
        &[256, 10],
        DecisionRule::Scores,
    );
    let fp = from_binary(&binary);
    assert_eq!(fp.arch(), "c3x32,p2,c3x64,p2,d256,d10");
    let px = random_pixels(&mut rng, 12, 784);
    let (classes, scores) = fp.predict_batch_scores(&px, None).unwrap();
    for kernel in bnn_core::kernel::available() {
        let want = binary
            .predict_batch_with(
                &px,
                RunOptions {
                    kernel: Some(kernel),
                    threads: None,
                },
            )
            .unwrap();
        assert_eq!(scores, want.scores, "{kernel:?}");
        assert_eq!(classes, want.classes, "{kernel:?}");
    }
}

/// A per-class score scale of powers of two (and 0) reaches the twin's
/// output weights, whose sums of ±s are then exact: the same scores as
/// the engine's `dot·s + bias`, bit for bit, on a binary and a u8 model.
#[test]
fn per_class_score_scales_reach_the_twin() {
    let mut rng = rng(9);
    let scale = vec![0.5f32, 0.0, 4.0, 1.0, 0.125];
    for binary in [
        random_model(&mut rng, &[65, 30, 5], DecisionRule::Scores, 100),
        random_u8_model(&mut rng, &[40, 5], DecisionRule::Seed, u8_spread(40)),
    ] {
        let plain = from_binary(&binary);
        let scaled = binary.with_score_scale(scale.clone()).unwrap();
        let fp = from_binary(&scaled);
        let px = random_pixels(&mut rng, 200, scaled.input_len());
        let want = scaled
            .predict_batch_with(&px, RunOptions::default())
            .unwrap();
        let (classes, scores) = fp.predict_batch_scores(&px, Some(1)).unwrap();
        assert_eq!(scores, want.scores);
        assert_eq!(classes, want.classes);
        let (_, unscaled) = plain.predict_batch_scores(&px, Some(1)).unwrap();
        assert_ne!(unscaled, scores, "the scale changed nothing");
    }
}
