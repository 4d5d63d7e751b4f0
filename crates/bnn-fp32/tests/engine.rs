//! The forward pass: hand-computed scores, an f64 oracle, and the same
//! answers whatever the path (batch or single image) and thread count.

use bnn_core::DecisionRule;
use bnn_fp32::{DenseF32, Fp32Error, Fp32Model, Hidden, InputTransform, CHUNK};
use bnn_testkit::models::{float_model, random_pixels, rng};
use bnn_testkit::oracle;

/// 3 inputs → 2 hidden → 2 classes, with values exact in f32.
fn tiny(input: InputTransform, hidden: Hidden, rule: DecisionRule) -> Fp32Model {
    Fp32Model::new(
        input,
        hidden,
        vec![
            DenseF32 {
                inputs: 3,
                outputs: 2,
                weights: vec![1.0, 2.0, -1.0, 0.5, -1.0, 3.0],
                bias: vec![0.5, -4.0],
            },
            DenseF32 {
                inputs: 2,
                outputs: 2,
                weights: vec![2.0, 1.0, -1.0, 4.0],
                bias: vec![0.25, 1.0],
            },
        ],
        rule,
    )
    .unwrap()
}

fn scores(model: &Fp32Model, pixels: &[u8]) -> (usize, Vec<f32>) {
    let mut s = vec![0f32; model.num_classes()];
    let class = model.predict_scores_into(pixels, &mut s);
    let (classes, batch) = model.predict_batch_scores(pixels, Some(1)).unwrap();
    assert_eq!(
        (classes[0], &batch),
        (class, &s),
        "batch agrees with single"
    );
    (class, s)
}

#[test]
fn hand_computed_scores() {
    let relu = tiny(
        InputTransform::Normalize,
        Hidden::Relu,
        DecisionRule::Scores,
    );
    // x = [−1, 1, 1]; h = relu([−1+2−1+0.5, −0.5−1+3−4]) = [0.5, 0];
    // o = [2·0.5 + 0.25, −0.5 + 1] = [1.25, 0.5].
    assert_eq!(scores(&relu, &[0, 255, 255]), (0, vec![1.25, 0.5]));
    // x = [1, −1, 1]; h = relu([1−2−1+0.5, 0.5+1+3−4]) = [0, 0.5];
    // o = [0.5 + 0.25, 2 + 1] = [0.75, 3].
    assert_eq!(scores(&relu, &[255, 0, 255]), (1, vec![0.75, 3.0]));

    // Binarize at 100: [99, 100, 200] → [−1, 1, 1]; sign hidden:
    // h = sign([0.5, −2.5]) = [1, −1]; o = [2 − 1 + 0.25, −1 − 4 + 1].
    let sign = tiny(
        InputTransform::Binarize { threshold: 100 },
        Hidden::Sign,
        DecisionRule::Scores,
    );
    assert_eq!(scores(&sign, &[99, 100, 200]), (0, vec![1.25, -4.0]));

    // The seed rule picks the first non-negative score, class 0 when none.
    let seed = tiny(InputTransform::Normalize, Hidden::Relu, DecisionRule::Seed);
    assert_eq!(scores(&seed, &[255, 0, 255]), (0, vec![0.75, 3.0]));
    let seed_sign = tiny(
        InputTransform::Binarize { threshold: 100 },
        Hidden::Sign,
        DecisionRule::Seed,
    );
    // x = [1, −1, −1]: h = sign([1−2+1+0.5, 0.5+1−3−4]) = [1, −1];
    // o = [1.25, −4] → class 0; x = [−1, −1, 1]: h = sign([−1−2−1+0.5,
    // −0.5+1+3−4]) = [−1, −1]; o = [−3 + 0.25, 1 − 4 + 1] = [−2.75, −2]:
    // no score is non-negative, so class 0 even though 1 scores higher.
    assert_eq!(scores(&seed_sign, &[150, 0, 0]), (0, vec![1.25, -4.0]));
    assert_eq!(scores(&seed_sign, &[0, 0, 150]), (0, vec![-2.75, -2.0]));
    let argmax = tiny(
        InputTransform::Binarize { threshold: 100 },
        Hidden::Sign,
        DecisionRule::Scores,
    );
    assert_eq!(argmax.predict(&[0, 0, 150]), 1);
}

#[test]
fn thread_counts_and_chunking_give_identical_bits() {
    let mut rng = rng(5);
    let model = float_model(
        &mut rng,
        &[784, 96, 40, 10],
        InputTransform::Normalize,
        Hidden::Relu,
        DecisionRule::Scores,
    );
    // 300 images are cut into chunks of 150 for two threads, 256 for one.
    let few = random_pixels(&mut rng, 300, 784);
    let one = model.predict_batch_scores(&few, Some(1)).unwrap();
    assert_eq!(one, model.predict_batch_scores(&few, Some(2)).unwrap());
    assert_eq!(one, model.predict_batch_scores(&few, Some(3)).unwrap());
    let images = 3 * CHUNK + 17;
    let px = random_pixels(&mut rng, images, 784);
    let one = model.predict_batch_scores(&px, Some(1)).unwrap();
    assert_eq!(one, model.predict_batch_scores(&px, Some(2)).unwrap());
    assert_eq!(one, model.predict_batch_scores(&px, None).unwrap());
    // Any split of the batch gives each image the same bits.
    let c = model.num_classes();
    for (start, len) in [(0, 1), (5, 1), (CHUNK - 3, 7), (images - 40, 40)] {
        let (classes, scores) = model
            .predict_batch_scores(&px[start * 784..(start + len) * 784], Some(2))
            .unwrap();
        assert_eq!(classes, one.0[start..start + len]);
        assert_eq!(scores, one.1[start * c..(start + len) * c]);
    }
    assert_eq!(one.0, model.predict_batch(&px, Some(2)).unwrap());
}

/// The single-image loop and the GEMM sum in other orders than the f64
/// oracle, so their scores agree with it to rounding. Every class must be
/// the oracle's wherever its top two scores are farther apart than
/// rounding, and, for `sign` networks, no hidden pre-activation was within
/// rounding of 0 (where f32 may take the other sign).
#[test]
fn single_image_and_batch_paths_agree_with_the_f64_oracle() {
    let mut rng = rng(6);
    for hidden in [Hidden::Relu, Hidden::Sign] {
        let model = float_model(
            &mut rng,
            &[300, 129, 33, 10],
            InputTransform::Normalize,
            hidden,
            DecisionRule::Scores,
        );
        let px = random_pixels(&mut rng, 200, 300);
        let (classes, batch) = model.predict_batch_scores(&px, None).unwrap();
        let (oracle, closest) = oracle::fp32_scores(&model, &px);
        let mut single = vec![0f32; 10];
        let mut checked = 0;
        for (i, image) in px.chunks_exact(300).enumerate() {
            let class = model.predict_scores_into(image, &mut single);
            if hidden == Hidden::Sign && closest[i] < 1e-4 {
                continue;
            }
            let want = &oracle[i * 10..(i + 1) * 10];
            for (path, got) in [("single", &single[..]), ("batch", &batch[i * 10..][..10])] {
                for (a, b) in got.iter().zip(want) {
                    assert!(
                        (f64::from(*a) - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{hidden:?}, image {i}, {path}: {a} vs {b}"
                    );
                }
            }
            if let Some(best) = oracle::clear_winner(want, 1e-3) {
                assert_eq!(class, best, "{hidden:?}, image {i}: single");
                assert_eq!(classes[i], best, "{hidden:?}, image {i}: batch");
                assert_eq!(model.predict(image), best, "{hidden:?}, image {i}");
                checked += 1;
            }
        }
        // Near-ties are rare: nearly every image must have been checked.
        assert!(checked >= 180, "{hidden:?}: {checked} of 200 checked");
    }
}

#[test]
fn bad_batches_are_errors() {
    let model = tiny(
        InputTransform::Normalize,
        Hidden::Relu,
        DecisionRule::Scores,
    );
    let e = model.predict_batch(&[0; 7], None).unwrap_err();
    assert!(matches!(
        e,
        Fp32Error::InputLength {
            got: 7,
            per_image: 3
        }
    ));
    assert_eq!(e.to_string().lines().count(), 1);
    assert_eq!(
        model.predict_batch_scores(&[], Some(2)).unwrap(),
        (vec![], vec![])
    );
}
