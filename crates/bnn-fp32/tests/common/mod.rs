//! Random models and images for the tests.

#![allow(dead_code)]

use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, Threshold};
use bnn_fp32::{DenseF32, Fp32Model, Hidden, InputTransform};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn pixels(rng: &mut ChaCha8Rng, images: usize, per: usize) -> Vec<u8> {
    (0..images * per).map(|_| rng.gen()).collect()
}

/// A binary model of the given widths whose thresholds sit near the middle
/// of the dot-product range (so neurons really switch), flipped at random,
/// with some far out of range.
pub fn binary_model(rng: &mut ChaCha8Rng, shape: &[usize], rule: DecisionRule) -> Model {
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
                let spread = (inputs as f64).sqrt().ceil() as i32 + 1;
                let thresholds = (0..outputs)
                    .map(|_| {
                        let value = match rng.gen_range(0..20) {
                            0 => i32::MAX,
                            1 => i32::MIN,
                            2 => inputs as i32 + rng.gen_range(0..3),
                            _ => rng.gen_range(-spread..=spread),
                        };
                        Threshold {
                            value,
                            flip: rng.gen(),
                        }
                    })
                    .collect();
                BinaryDense::hidden(weights, thresholds).unwrap()
            } else {
                // Fractional biases make the final rounding matter.
                let bias = (0..outputs)
                    .map(|_| rng.gen_range(-5.0f32..5.0) + rng.gen_range(0.0f32..1e-3))
                    .collect();
                BinaryDense::output(weights, bias).unwrap()
            }
        })
        .collect();
    Model::new(shape[0], rng.gen_range(1..=255), layers, rule).unwrap()
}

/// An FP32 model with fractional weights (so float rounding is in play).
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

/// A u8-input model: a pixel layer of `shape[1]` neurons over `shape[0]`
/// pixels (thresholds near the middle of its dot range, some beyond it),
/// then binary layers as in [`binary_model`]. With two widths, the pixel
/// layer emits the scores.
pub fn u8_model(rng: &mut ChaCha8Rng, shape: &[usize], rule: DecisionRule) -> Model {
    use bnn_core::PixelDense;
    let (inputs, outputs) = (shape[0], shape[1]);
    let pm1: Vec<i8> = (0..inputs * outputs)
        .map(|_| if rng.gen() { 1 } else { -1 })
        .collect();
    let weights = BitMatrix::from_pm1(outputs, inputs, &pm1).unwrap();
    if shape.len() == 2 {
        let bias = (0..outputs).map(|_| rng.gen_range(-50.0..50.0)).collect();
        let first = PixelDense::output(weights, bias).unwrap();
        return Model::with_pixel_layer(first, vec![], rule).unwrap();
    }
    let spread = 150 * ((inputs as f64).sqrt().ceil() as i32 + 1);
    let thresholds = (0..outputs)
        .map(|_| {
            let value = match rng.gen_range(0..20) {
                0 => i32::MAX,
                1 => i32::MIN,
                2 => 255 * inputs as i32 + rng.gen_range(0..3),
                _ => rng.gen_range(-spread..=spread),
            };
            Threshold {
                value,
                flip: rng.gen(),
            }
        })
        .collect();
    let first = PixelDense::hidden(weights, thresholds).unwrap();
    let rest = binary_model(rng, &shape[1..], rule);
    Model::with_pixel_layer(first, rest.layers().to_vec(), rule).unwrap()
}
