//! Random convolutional networks, shared by the engine and the file-format
//! tests (the f64 oracle they are checked against is
//! `bnn_testkit::oracle::fp32_scores`).

#![allow(dead_code)]

use bnn_core::DecisionRule;
use bnn_fp32::{ConvF32, DenseF32, Fp32Model, Hidden, InputTransform, MapShape, Padding};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How a random network's parameters are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Values {
    /// ±1 weights, ±1 scales, integer biases: every sum is an exact f32,
    /// in any order, so every path must equal the oracle exactly.
    Integer,
    /// Fractional weights: float rounding is in play.
    Fraction,
}

/// One convolution layer: kernel, channels, padding, pool.
pub type ConvSpec = (usize, usize, Padding, bool);

/// A network of `convs` over an `input` map, then dense layers of `dense`
/// widths.
pub fn cnn(
    rng: &mut ChaCha8Rng,
    input: MapShape,
    convs: &[ConvSpec],
    dense: &[usize],
    transform: InputTransform,
    hidden: Hidden,
    values: Values,
) -> Fp32Model {
    let weight = |rng: &mut ChaCha8Rng, fan_in: usize| match values {
        Values::Integer => {
            if rng.gen() {
                1.0
            } else {
                -1.0
            }
        }
        Values::Fraction => {
            let s = 1.0 / (fan_in as f32).sqrt();
            rng.gen_range(-s..s)
        }
    };
    let mut map = input;
    let mut layers = Vec::new();
    for (i, &(kernel, outputs, padding, pool)) in convs.iter().enumerate() {
        let window = kernel * kernel * map.channels;
        // The first layer's padding is the input's "off" value; later
        // ones that of the hidden activation.
        let pad_value = match (i, transform, hidden) {
            (0, InputTransform::Pixel | InputTransform::Normalize, _) => 0.0,
            (0, InputTransform::Binarize { .. }, _) => -1.0,
            (_, _, Hidden::Sign) => -1.0,
            (_, _, Hidden::Relu) => 0.0,
        };
        let spread = (window as f32).sqrt().ceil() as i32;
        let l = ConvF32 {
            input: map,
            kernel,
            outputs,
            padding,
            pad_value,
            pool,
            weights: (0..outputs * window).map(|_| weight(rng, window)).collect(),
            scale: (0..outputs)
                .map(|_| match values {
                    Values::Integer => {
                        if rng.gen_range(0..4) == 0 {
                            -1.0
                        } else {
                            1.0
                        }
                    }
                    Values::Fraction => rng.gen_range(-1.5f32..1.5),
                })
                .collect(),
            bias: (0..outputs)
                .map(|_| match values {
                    Values::Integer => rng.gen_range(-spread..=spread) as f32,
                    Values::Fraction => rng.gen_range(-0.2f32..0.2),
                })
                .collect(),
        };
        map = l.output();
        layers.push(l);
    }
    let mut inputs = map.values().unwrap();
    let mut dense_layers = Vec::new();
    for &outputs in dense {
        let spread = (inputs as f32).sqrt().ceil() as i32;
        dense_layers.push(DenseF32 {
            inputs,
            outputs,
            weights: (0..inputs * outputs).map(|_| weight(rng, inputs)).collect(),
            bias: (0..outputs)
                .map(|_| match values {
                    Values::Integer => rng.gen_range(-spread..=spread) as f32,
                    Values::Fraction => rng.gen_range(-0.1f32..0.1),
                })
                .collect(),
        });
        inputs = outputs;
    }
    Fp32Model::with_convs(
        transform,
        hidden,
        layers,
        dense_layers,
        DecisionRule::Scores,
    )
    .unwrap()
}
