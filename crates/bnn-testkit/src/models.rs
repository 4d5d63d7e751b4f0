//! Random networks and inputs that reach the corners the engines must get
//! right: thresholds that fire about half the time, some beyond reach or at
//! the `i32` extremes, flipped comparisons, integer biases (so scores tie and
//! hit exactly 0), and pixels at 0, 255 and around the input threshold.

use bnn_core::conv::{Conv2d, Layer, Padding};
use bnn_core::{
    BinaryDense, BitMatrix, DecisionRule, InputEncoding, InputShape, Model, PixelDense, Threshold,
};
use bnn_fp32::{DenseF32, Fp32Model, Hidden, InputTransform};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The tests' generator, seeded so that a failure reproduces.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A binary model of `shape` (inputs, then each layer's width).
pub fn random_model(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    rule: DecisionRule,
    input_threshold: u8,
) -> Model {
    assert!(shape.len() >= 2, "a model needs inputs and one layer");
    let last = shape.len() - 2;
    let layers = shape
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let (inputs, outputs) = (w[0], w[1]);
            let pm1: Vec<i8> = (0..inputs * outputs)
                .map(|_| if rng.gen() { 1 } else { -1 })
                .collect();
            let weights = BitMatrix::from_pm1(outputs, inputs, &pm1).unwrap();
            if k < last {
                BinaryDense::hidden(weights, thresholds(rng, inputs, outputs)).unwrap()
            } else {
                BinaryDense::output(weights, biases(rng, outputs)).unwrap()
            }
        })
        .collect();
    Model::new(shape[0], input_threshold, layers, rule).unwrap()
}

/// Dots of ±1 vectors of length `n` gather near 0 with spread √n: most
/// thresholds sit there, so that neurons switch; a few lie anywhere in the
/// range, just outside it, or at the `i32` extremes.
fn thresholds(rng: &mut ChaCha8Rng, n: usize, count: usize) -> Vec<Threshold> {
    let n = n as i32;
    let spread = f64::from(n).sqrt().ceil() as i32 + 1;
    (0..count)
        .map(|_| {
            let value = match rng.gen_range(0..40) {
                0 => i32::MAX,
                1 => i32::MIN,
                2 => n + rng.gen_range(0..3),
                3 => -n - rng.gen_range(0..3),
                4..=7 => rng.gen_range(-n - 3..=n + 3),
                _ => rng.gen_range(-spread..=spread),
            };
            Threshold {
                value,
                flip: rng.gen_range(0..4) == 0,
            }
        })
        .collect()
}

/// Mostly fractional biases; a quarter are small integers, so that exact
/// ties between scores and scores of exactly 0 occur.
fn biases(rng: &mut ChaCha8Rng, count: usize) -> Vec<f32> {
    (0..count)
        .map(|_| match rng.gen_range(0..4) {
            0 => rng.gen_range(-4i32..=4) as f32,
            _ => rng.gen_range(-6.0f32..6.0),
        })
        .collect()
}

/// A u8-input model of `shape` (pixels, then each layer's width): a pixel
/// layer whose thresholds mostly sit within `±spread` (the range its dots
/// cover on the images it is meant for), some flipped, a few beyond any
/// dot, then a binary model as [`random_model`] draws it. With one width the
/// pixel layer emits the scores.
pub fn random_u8_model(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    rule: DecisionRule,
    spread: i32,
) -> Model {
    assert!(shape.len() >= 2, "a model needs inputs and one layer");
    let (inputs, outputs) = (shape[0], shape[1]);
    let pm1: Vec<i8> = (0..inputs * outputs)
        .map(|_| if rng.gen() { 1 } else { -1 })
        .collect();
    let weights = BitMatrix::from_pm1(outputs, inputs, &pm1).unwrap();
    if shape.len() == 2 {
        let bias = (0..outputs)
            .map(|_| rng.gen_range(-500.0f32..500.0))
            .collect();
        let first = PixelDense::output(weights, bias).unwrap();
        return Model::with_pixel_layer(first, vec![], rule).unwrap();
    }
    let bound = PixelDense::dot_bound(inputs) as i32;
    let thresholds = (0..outputs)
        .map(|_| {
            let value = match rng.gen_range(0..20) {
                0 => i32::MAX,
                1 => i32::MIN,
                2 => rng.gen_range(-bound - 3..=bound + 3),
                _ => rng.gen_range(-spread..=spread),
            };
            Threshold {
                value,
                flip: rng.gen(),
            }
        })
        .collect();
    let first = PixelDense::hidden(weights, thresholds).unwrap();
    let rest = random_model(rng, &shape[1..], rule, 128);
    Model::with_pixel_layer(first, rest.layers().to_vec(), rule).unwrap()
}

/// One convolution of [`random_cnn`]: kernel side, output channels, and
/// whether a 2×2 max pool follows.
#[derive(Clone, Copy, Debug)]
pub struct ConvPlan {
    pub k: usize,
    pub channels: usize,
    pub pool: bool,
}

/// A CNN on `input` images: the planned convolutions (thresholds drawn as
/// for dense layers, on the window's dot; for a u8 first convolution within
/// [`u8_spread`] of the window, a few beyond reach, half flipped), then
/// dense layers of `dense` widths, the last emitting scores.
pub fn random_cnn(
    rng: &mut ChaCha8Rng,
    input: InputShape,
    encoding: InputEncoding,
    convs: &[ConvPlan],
    padding: Padding,
    dense: &[usize],
    rule: DecisionRule,
) -> Model {
    let mut layers = Vec::new();
    let mut channels = input.channels as usize;
    for (i, plan) in convs.iter().enumerate() {
        let window = plan.k * plan.k * channels;
        let pm1: Vec<i8> = (0..window * plan.channels)
            .map(|_| if rng.gen() { 1 } else { -1 })
            .collect();
        let weights = BitMatrix::from_pm1(plan.channels, window, &pm1).unwrap();
        let thresholds = if i == 0 && encoding.is_u8() {
            let spread = u8_spread(window);
            (0..plan.channels)
                .map(|_| Threshold {
                    value: match rng.gen_range(0..20) {
                        0 => i32::MAX,
                        1 => i32::MIN,
                        _ => rng.gen_range(-spread..=spread),
                    },
                    flip: rng.gen(),
                })
                .collect()
        } else {
            thresholds(rng, window, plan.channels)
        };
        let conv = Conv2d::new(plan.k, channels, padding, weights, thresholds).unwrap();
        layers.push(Layer::Conv(conv));
        if plan.pool {
            layers.push(Layer::MaxPool);
        }
        channels = plan.channels;
    }
    let flat = cnn_flat_len(input, convs, padding);
    let shape = [&[flat][..], dense].concat();
    let mlp = random_model(rng, &shape, rule, 128);
    layers.extend(mlp.layers().iter().cloned().map(Layer::Dense));
    Model::from_layers(input, encoding, layers, rule).unwrap()
}

/// The convolutions of the `cnn-small` benchmark shape,
/// `c3x32,p2,c3x64,p2` (then `d256,d10`).
pub const CNN_SMALL: [ConvPlan; 2] = [
    ConvPlan {
        k: 3,
        channels: 32,
        pool: true,
    },
    ConvPlan {
        k: 3,
        channels: 64,
        pool: true,
    },
];

/// A CNN on MNIST's 28×28×1 images that decides by scores, as
/// [`random_cnn`] draws it.
pub fn random_mnist_cnn(
    rng: &mut ChaCha8Rng,
    encoding: InputEncoding,
    convs: &[ConvPlan],
    padding: Padding,
    dense: &[usize],
) -> Model {
    let input = InputShape::new(28, 28, 1);
    random_cnn(
        rng,
        input,
        encoding,
        convs,
        padding,
        dense,
        DecisionRule::Scores,
    )
}

/// The length of the map the planned convolutions hand to the first dense
/// layer; panics when a plan does not fit the input.
pub fn cnn_flat_len(input: InputShape, convs: &[ConvPlan], padding: Padding) -> usize {
    let (mut h, mut w, mut c) = (
        input.height as usize,
        input.width as usize,
        input.channels as usize,
    );
    for plan in convs {
        h = padding.output_side(h, plan.k).expect("the plan fits");
        w = padding.output_side(w, plan.k).expect("the plan fits");
        c = plan.channels;
        if plan.pool {
            assert!(h >= 2 && w >= 2, "the pool fits");
            (h, w) = (h / 2, w / 2);
        }
    }
    h * w * c
}

/// The usual spread of `Σ p·w` over `inputs` random pixels and ±1 weights,
/// about 147·√n: where thresholds of a random u8 model switch.
pub fn u8_spread(inputs: usize) -> i32 {
    150 * ((inputs as f64).sqrt().ceil() as i32 + 1)
}

/// A per-class score scale for `classes` classes (see
/// [`Model::with_score_scale`]): some classes at 0 (a constant score) and
/// at 1, the rest spread over 2^-12 to 2^12 with fractional mantissas, so
/// that the product's rounding is in play; never all 1.
pub fn random_score_scale(rng: &mut ChaCha8Rng, classes: usize) -> Vec<f32> {
    let mut scale: Vec<f32> = (0..classes)
        .map(|_| match rng.gen_range(0..8) {
            0 => 0.0,
            1 => 1.0,
            _ => rng.gen_range(1.0f32..2.0) * 2f32.powi(rng.gen_range(-12..=12)),
        })
        .collect();
    if scale.iter().all(|&s| s == 1.0) {
        scale[0] = 0.75;
    }
    scale
}

/// `images × input_len` pixels, an eighth each at 0 and at 255.
pub fn random_pixels(rng: &mut ChaCha8Rng, images: usize, input_len: usize) -> Vec<u8> {
    (0..images * input_len)
        .map(|_| match rng.gen_range(0..8) {
            0 => 0,
            1 => 255,
            _ => rng.gen(),
        })
        .collect()
}

/// An FP32 model with fractional weights, so that float rounding is in play.
pub fn float_model(
    rng: &mut ChaCha8Rng,
    shape: &[usize],
    input: InputTransform,
    hidden: Hidden,
    rule: DecisionRule,
) -> Fp32Model {
    let layers = shape
        .windows(2)
        .map(|w| {
            let (inputs, outputs) = (w[0], w[1]);
            let scale = 1.0 / (inputs as f32).sqrt();
            DenseF32 {
                inputs,
                outputs,
                weights: (0..inputs * outputs)
                    .map(|_| rng.gen_range(-scale..scale))
                    .collect(),
                bias: (0..outputs).map(|_| rng.gen_range(-0.1f32..0.1)).collect(),
            }
        })
        .collect();
    Fp32Model::new(input, hidden, layers, rule).unwrap()
}

/// `model` with every zero-padded convolution padded with −1 instead
/// (`same`), the engine's own padding: the same weights, thresholds, shapes
/// and score scale, so timing the two in one run shows what zero padding
/// costs (docs/IMPORT.md, "Speed"). The twin computes other scores near
/// the border; it is a speed reference, not a model to use. `None` when no
/// convolution is zero-padded.
pub fn minus_one_twin(model: &Model) -> Option<Model> {
    let mut layers = Vec::new();
    let mut zero = false;
    for stage in model.convs() {
        let conv = stage.conv();
        let padding = match conv.padding() {
            Padding::Zero => {
                zero = true;
                Padding::Same
            }
            other => other,
        };
        let (k, c, weights) = (conv.k(), conv.in_channels(), conv.weights());
        let thresholds = conv.thresholds().to_vec();
        let twin =
            Conv2d::new(k, c, padding, weights, thresholds).expect("the model's own filters");
        layers.push(Layer::Conv(twin));
        if stage.pooled() {
            layers.push(Layer::MaxPool);
        }
    }
    if !zero {
        return None;
    }
    layers.extend(model.layers().iter().cloned().map(Layer::Dense));
    let (shape, encoding) = (model.input_shape(), model.input_encoding());
    let twin =
        Model::from_layers(shape, encoding, layers, model.rule()).expect("the model's own shapes");
    Some(match model.score_scale() {
        Some(scale) => twin
            .with_score_scale(scale.to_vec())
            .expect("the model's own scale"),
        None => twin,
    })
}
