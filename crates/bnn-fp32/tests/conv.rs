//! Convolutional networks: equal to an f64 oracle convolution written the
//! obvious way, the same bits on every path and thread count, and every
//! malformed network refused with its reason.

mod common;

use bnn_core::DecisionRule;
use bnn_fp32::{ConvF32, DenseF32, Fp32Model, Hidden, InputTransform, MapShape, Padding};
use bnn_testkit::models::{random_pixels, rng};
use bnn_testkit::oracle::{clear_winner, fp32_scores as oracle};
use common::{cnn, ConvSpec, Values};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A random stack of 1 to 3 convolutions that fits `input`: kernels 1, 3
/// and 5, both paddings, pooling where the map allows it.
fn random_stack(rng: &mut ChaCha8Rng, input: MapShape, max_channels: usize) -> Vec<ConvSpec> {
    let mut specs = Vec::new();
    let (mut h, mut w) = (input.height, input.width);
    for _ in 0..rng.gen_range(1..=3) {
        let k = [1, 3, 5][rng.gen_range(0..3)];
        let padding = if k <= h.min(w) && rng.gen() {
            Padding::Valid
        } else {
            Padding::Same
        };
        if padding == Padding::Valid {
            (h, w) = (h + 1 - k, w + 1 - k);
        }
        let pool = h >= 2 && w >= 2 && rng.gen();
        if pool {
            (h, w) = (h / 2, w / 2);
        }
        specs.push((k, rng.gen_range(1..=max_channels), padding, pool));
    }
    specs
}

fn random_input(rng: &mut ChaCha8Rng) -> MapShape {
    MapShape::new(
        rng.gen_range(1..=11),
        rng.gen_range(1..=11),
        rng.gen_range(1..=4),
    )
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Every path's scores: batch at 1 and 2 threads, then image by image.
fn all_paths(model: &Fp32Model, px: &[u8]) -> Vec<(&'static str, Vec<f32>)> {
    let mut single = Vec::new();
    let mut s = vec![0f32; model.num_classes()];
    for image in px.chunks_exact(model.input_len()) {
        model.predict_scores_into(image, &mut s);
        single.extend_from_slice(&s);
    }
    vec![
        (
            "batch 1T",
            model.predict_batch_scores(px, Some(1)).unwrap().1,
        ),
        (
            "batch 2T",
            model.predict_batch_scores(px, Some(2)).unwrap().1,
        ),
        ("single", single),
    ]
}

/// With ±1 weights and integer offsets every sum is exact in f32, so every
/// path must give the oracle's scores exactly, whatever the layer shapes.
#[test]
fn integer_networks_equal_the_oracle_exactly() {
    let mut rng = rng(11);
    for case in 0..60 {
        let input = random_input(&mut rng);
        let specs = random_stack(&mut rng, input, 9);
        let (transform, hidden) = match case % 3 {
            0 => (InputTransform::Pixel, Hidden::Sign),
            1 => (InputTransform::Binarize { threshold: 128 }, Hidden::Sign),
            _ => (InputTransform::Binarize { threshold: 90 }, Hidden::Relu),
        };
        let dense: &[usize] = if case % 2 == 0 { &[7, 4] } else { &[5] };
        let model = cnn(
            &mut rng,
            input,
            &specs,
            dense,
            transform,
            hidden,
            Values::Integer,
        );
        let px = random_pixels(&mut rng, 13, model.input_len());
        let want: Vec<f32> = oracle(&model, &px).0.iter().map(|&v| v as f32).collect();
        for (path, got) in all_paths(&model, &px) {
            assert!(
                same_bits(&got, &want),
                "case {case}, {input} {specs:?} {transform:?} {hidden:?}, {path}:\n{got:?}\n{want:?}"
            );
        }
    }
}

/// Many channels (up to 130) and the largest kernels, on maps of odd size.
#[test]
fn wide_layers_equal_the_oracle_exactly() {
    let mut rng = rng(12);
    for (input, specs) in [
        (
            MapShape::new(9, 7, 3),
            vec![
                (5, 130, Padding::Same, true),
                (3, 65, Padding::Valid, false),
            ],
        ),
        (
            MapShape::new(5, 5, 130),
            vec![(1, 64, Padding::Same, false), (5, 3, Padding::Same, true)],
        ),
        (
            MapShape::new(28, 28, 1),
            vec![(3, 8, Padding::Same, true), (3, 16, Padding::Same, true)],
        ),
    ] {
        let model = cnn(
            &mut rng,
            input,
            &specs,
            &[10],
            InputTransform::Pixel,
            Hidden::Sign,
            Values::Integer,
        );
        let px = random_pixels(&mut rng, 6, model.input_len());
        let want: Vec<f32> = oracle(&model, &px).0.iter().map(|&v| v as f32).collect();
        for (path, got) in all_paths(&model, &px) {
            assert!(same_bits(&got, &want), "{input} {specs:?}, {path}");
        }
    }
}

/// Fractional weights sum in another order than the oracle's: scores agree
/// to rounding, and every class with a clear winner is the oracle's.
#[test]
fn fractional_networks_agree_with_the_oracle() {
    let mut rng = rng(13);
    let mut checked = 0;
    let mut total = 0;
    for case in 0..30 {
        let input = random_input(&mut rng);
        let specs = random_stack(&mut rng, input, 12);
        let hidden = if case % 2 == 0 {
            Hidden::Relu
        } else {
            Hidden::Sign
        };
        let model = cnn(
            &mut rng,
            input,
            &specs,
            &[9, 6],
            InputTransform::Normalize,
            hidden,
            Values::Fraction,
        );
        let px = random_pixels(&mut rng, 10, model.input_len());
        let (want, closest) = oracle(&model, &px);
        let (classes, _) = model.predict_batch_scores(&px, Some(2)).unwrap();
        let paths = all_paths(&model, &px);
        for i in 0..10 {
            total += 1;
            if hidden == Hidden::Sign && closest[i] < 1e-4 {
                continue;
            }
            let want = &want[i * 6..][..6];
            for (path, got) in &paths {
                for (a, b) in got[i * 6..][..6].iter().zip(want) {
                    assert!(
                        (f64::from(*a) - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "case {case}, image {i}, {path}: {a} vs {b}"
                    );
                }
            }
            if let Some(best) = clear_winner(want, 1e-3) {
                assert_eq!(classes[i], best, "case {case}, image {i}");
                checked += 1;
            }
        }
    }
    assert!(checked >= total * 8 / 10, "{checked} of {total} checked");
}

#[test]
fn thread_counts_and_splits_give_identical_bits() {
    let mut rng = rng(14);
    let model = cnn(
        &mut rng,
        MapShape::new(12, 12, 1),
        &[(3, 6, Padding::Same, true), (3, 8, Padding::Valid, true)],
        &[20, 10],
        InputTransform::Normalize,
        Hidden::Relu,
        Values::Fraction,
    );
    let images = 300;
    let px = random_pixels(&mut rng, images, 144);
    let one = model.predict_batch_scores(&px, Some(1)).unwrap();
    assert_eq!(one, model.predict_batch_scores(&px, Some(2)).unwrap());
    assert_eq!(one, model.predict_batch_scores(&px, Some(3)).unwrap());
    for (start, len) in [(0, 1), (7, 3), (images - 40, 40)] {
        let part = model
            .predict_batch_scores(&px[start * 144..(start + len) * 144], Some(2))
            .unwrap();
        assert_eq!(part.1, one.1[start * 10..(start + len) * 10]);
    }
}

/// A negative scale after the pool turns the pooled maximum into the
/// smallest value: the FP32 form of a flipped threshold's AND pooling.
#[test]
fn pooling_comes_before_the_scale() {
    let conv = ConvF32 {
        input: MapShape::new(2, 2, 1),
        kernel: 1,
        outputs: 2,
        padding: Padding::Same,
        pad_value: 0.0,
        pool: true,
        weights: vec![1.0, 1.0],
        scale: vec![1.0, -1.0],
        bias: vec![0.0, 10.0],
    };
    let out = DenseF32 {
        inputs: 2,
        outputs: 2,
        weights: vec![1.0, 0.0, 0.0, 1.0],
        bias: vec![0.0, 0.0],
    };
    let model = Fp32Model::with_convs(
        InputTransform::Pixel,
        Hidden::Relu,
        vec![conv],
        vec![out],
        DecisionRule::Scores,
    )
    .unwrap();
    let mut s = [0f32; 2];
    // Channel 0: relu(max) = 9; channel 1: relu(−max + 10) = 1, where
    // pooling after the scale would give relu(−min + 10) = 8.
    model.predict_scores_into(&[2, 9, 4, 3], &mut s);
    assert_eq!(s, [9.0, 1.0]);
    assert_eq!(model.shape(), vec![4, 2, 2]);
    assert_eq!(model.arch(), "c1x2,p2,d2");
    assert_eq!(model.flops_per_image(), 2 * (4 * 2 + 4));
}

#[test]
fn malformed_networks_are_refused() {
    let conv = |input: MapShape, kernel: usize, padding: Padding, pool: bool| ConvF32 {
        input,
        kernel,
        outputs: 2,
        padding,
        pad_value: -1.0,
        pool,
        weights: vec![1.0; 2 * kernel * kernel * input.channels],
        scale: vec![1.0; 2],
        bias: vec![0.0; 2],
    };
    let dense = |inputs: usize| DenseF32 {
        inputs,
        outputs: 3,
        weights: vec![1.0; 3 * inputs],
        bias: vec![0.0; 3],
    };
    let build = |convs: Vec<ConvF32>, d: Vec<DenseF32>| {
        Fp32Model::with_convs(
            InputTransform::Binarize { threshold: 1 },
            Hidden::Sign,
            convs,
            d,
            DecisionRule::Scores,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let s = MapShape::new(4, 5, 2);
    assert_eq!(
        build(vec![conv(s, 3, Padding::Same, true)], vec![dense(8)]),
        Ok(())
    );
    let cases = [
        (
            vec![conv(s, 2, Padding::Same, false)],
            dense(40),
            "kernel size 2 is not an odd number",
        ),
        (
            vec![conv(s, 0, Padding::Same, false)],
            dense(40),
            "kernel size 0",
        ),
        (
            vec![conv(s, 33, Padding::Same, false)],
            dense(40),
            "kernel size 33",
        ),
        (
            vec![conv(s, 5, Padding::Valid, false)],
            dense(2),
            "does not fit the 4×5×2 input",
        ),
        (
            vec![conv(MapShape::new(1, 5, 2), 1, Padding::Same, true)],
            dense(4),
            "cannot pool a 1×5 map",
        ),
        (
            vec![conv(s, 3, Padding::Same, true)],
            dense(9),
            "layer 2 takes 9 inputs but receives the 2×2×2 map",
        ),
        (
            vec![
                conv(s, 3, Padding::Same, false),
                conv(MapShape::new(4, 5, 3), 3, Padding::Same, false),
            ],
            dense(40),
            "layer 2 takes a 4×5×3 map but receives 4×5×2",
        ),
        (
            vec![conv(MapShape::new(0, 5, 2), 1, Padding::Same, false)],
            dense(1),
            "input map 0×5×2 is empty",
        ),
    ];
    for (convs, d, want) in cases {
        let got = build(convs, vec![d]).unwrap_err();
        assert!(got.contains(want), "want '{want}', got: {got}");
        assert_eq!(got.lines().count(), 1);
    }
    let mut nan = conv(s, 3, Padding::Same, false);
    nan.weights[19] = f32::NAN;
    assert!(build(vec![nan], vec![dense(40)])
        .unwrap_err()
        .contains("layer 1 weight 19 (channel 1, window value 1) is NaN"));
    let mut short = conv(s, 3, Padding::Same, false);
    short.scale.pop();
    assert!(build(vec![short], vec![dense(40)])
        .unwrap_err()
        .contains("1 scales for 2 channels"));
    // No dense layer after the convolutions.
    assert!(build(vec![conv(s, 1, Padding::Same, false)], vec![])
        .unwrap_err()
        .contains("at least one dense layer"));
    // An im2col matrix past the limit: 2048 × 2048 positions of 25 values.
    let huge = conv(MapShape::new(2048, 2048, 1), 5, Padding::Same, false);
    assert!(build(vec![huge], vec![dense(1)])
        .unwrap_err()
        .contains("4194304 positions × 25-value windows exceed 67108864 values"));
}
