//! The packed engine against the float reference, bit for bit: for random
//! networks (1–4 layers, widths up to 2048, often not multiples of 64),
//! random thresholds (flipped ones too), biases and images, every available
//! kernel gives the reference's hidden bits, scores and classes, through
//! `predict` and through `predict_batch` with 1 and 2 threads.

use bnn_core::kernel::available;
use bnn_core::{DecisionRule, Model, Reference, RunOptions};
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

fn check(model: &Model, images: usize, rng: &mut ChaCha8Rng) {
    let pixels = bnn_testkit::models::random_pixels(rng, images, model.input_len());
    let reference = Reference::new(model);
    let view = ArrayView2::from_shape((images, model.input_len()), &pixels).unwrap();
    let acts = reference.activations(view);
    let ref_scores = acts.last().unwrap();
    let ref_classes = reference.classes(view);
    let c = model.num_classes();
    for kernel in available() {
        // Hidden bits.
        let bits = model.hidden_activations(kernel, &pixels).unwrap();
        for (layer, (packed, float)) in bits.iter().zip(&acts).enumerate() {
            let unpacked: Vec<f32> = packed.to_pm1().into_iter().map(f32::from).collect();
            assert_eq!(
                unpacked.as_slice(),
                float.as_slice().unwrap(),
                "{kernel}: bits of layer {}",
                layer + 1
            );
        }
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
    assert_eq!(model.predict(first), ref_classes[0]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_networks_match_reference(
        seed in any::<u64>(),
        input_len in 1usize..=2048,
        widths in prop::collection::vec(1usize..=2048, 1..=4),
        seed_rule in any::<bool>(),
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rule = if seed_rule { DecisionRule::Seed } else { DecisionRule::Scores };
        // Keep the total work bounded: fewer images for bigger networks.
        let work: usize = std::iter::once(input_len).chain(widths.iter().copied()).collect::<Vec<_>>()
            .windows(2).map(|w| w[0] * w[1]).sum();
        let images = (4_000_000 / work.max(1)).clamp(3, 70);
        let model = random_model(&mut rng, input_len, &widths, rule);
        check(&model, images, &mut rng);
    }
}

#[test]
fn mnist_shapes_match_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for widths in [vec![512, 10], vec![1024, 1024, 1024, 10]] {
        for rule in [DecisionRule::Seed, DecisionRule::Scores] {
            let model = random_model(&mut rng, 784, &widths, rule);
            check(&model, 150, &mut rng);
        }
    }
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
            }
        }
    }
}
