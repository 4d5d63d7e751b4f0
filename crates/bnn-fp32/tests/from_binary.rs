//! The converted model computes exactly what the binary engine computes.

mod common;

use bnn_core::{DecisionRule, Kernel, RunOptions};
use bnn_fp32::{from_binary, Hidden, InputTransform};

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
    let mut rng = common::rng(1);
    for (s, shape) in SHAPES.iter().enumerate() {
        for rule in [DecisionRule::Scores, DecisionRule::Seed] {
            let binary = common::binary_model(&mut rng, shape, rule);
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
            let px = common::pixels(&mut rng, images, shape[0]);
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
    let mut rng = common::rng(2);
    let binary = common::binary_model(&mut rng, &[784, 512, 10], DecisionRule::Scores);
    let fp = from_binary(&binary);
    let px = common::pixels(&mut rng, 20, 784);
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
    let mut rng = common::rng(9);
    for shape in [
        &[784usize, 10][..],
        &[784, 64, 10],
        &[65, 130, 7],
        &[9, 3, 5, 2],
    ] {
        for rule in [DecisionRule::Scores, DecisionRule::Seed] {
            let binary = common::u8_model(&mut rng, shape, rule);
            let fp = from_binary(&binary);
            assert_eq!(fp.input(), InputTransform::Pixel);
            assert_eq!(fp.shape(), binary.shape());
            let fp = bnn_fp32::format::from_bytes(
                &bnn_fp32::format::to_bytes(&fp),
                std::path::Path::new("t.f32"),
            )
            .unwrap();
            // Sparse images, like MNIST's, and dense ones.
            let px: Vec<u8> = common::pixels(&mut rng, 150, shape[0])
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
