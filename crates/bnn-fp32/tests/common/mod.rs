//! Random convolutional networks and the f64 oracle they are checked
//! against, shared by the engine and the file-format tests.

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

fn activate(hidden: Hidden, v: f64) -> f64 {
    match hidden {
        Hidden::Relu => v.max(0.0),
        Hidden::Sign => {
            if v >= 0.0 {
                1.0
            } else {
                -1.0
            }
        }
    }
}

/// The forward pass in f64, written the obvious way: every output position
/// sums its window directly from `(y, x, c)` coordinates. Returns each
/// image's scores and the smallest magnitude any hidden pre-activation took
/// (where a `sign` network may go either way in f32).
pub fn oracle(model: &Fp32Model, pixels: &[u8]) -> (Vec<f64>, Vec<f64>) {
    let n = model.input_len();
    let mut scores = Vec::new();
    let mut closest = Vec::new();
    for image in pixels.chunks_exact(n) {
        let mut near = f64::INFINITY;
        let mut x: Vec<f64> = image
            .iter()
            .map(|&p| f64::from(model.input().value(p)))
            .collect();
        for l in model.convs() {
            let MapShape {
                height: h,
                width: w,
                channels: c,
            } = l.input;
            let k = l.kernel as isize;
            let pad = match l.padding {
                Padding::Same => (k - 1) / 2,
                Padding::Valid => 0,
            };
            let (oh, ow) = l.conv_size();
            let at = |y: isize, xx: isize, ch: usize| {
                if y < 0 || xx < 0 || y >= h as isize || xx >= w as isize {
                    f64::from(l.pad_value)
                } else {
                    x[(y as usize * w + xx as usize) * c + ch]
                }
            };
            let mut conv = vec![0f64; oh * ow * l.outputs];
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..l.outputs {
                        let mut sum = 0.0;
                        for ky in 0..k {
                            for kx in 0..k {
                                for ch in 0..c {
                                    let wi = o * l.window() + ((ky * k + kx) as usize) * c + ch;
                                    let y = oy as isize + ky - pad;
                                    let xx = ox as isize + kx - pad;
                                    sum += f64::from(l.weights[wi]) * at(y, xx, ch);
                                }
                            }
                        }
                        conv[(oy * ow + ox) * l.outputs + o] = sum;
                    }
                }
            }
            let (ph, pw) = if l.pool { (oh / 2, ow / 2) } else { (oh, ow) };
            let mut next = vec![0f64; ph * pw * l.outputs];
            for y in 0..ph {
                for xx in 0..pw {
                    for o in 0..l.outputs {
                        let v = if l.pool {
                            let g = |dy: usize, dx: usize| {
                                conv[((2 * y + dy) * ow + 2 * xx + dx) * l.outputs + o]
                            };
                            g(0, 0).max(g(0, 1)).max(g(1, 0)).max(g(1, 1))
                        } else {
                            conv[(y * ow + xx) * l.outputs + o]
                        };
                        let z = f64::from(l.scale[o]) * v + f64::from(l.bias[o]);
                        near = near.min(z.abs());
                        next[(y * pw + xx) * l.outputs + o] = activate(model.hidden(), z);
                    }
                }
            }
            x = next;
        }
        let last = model.layers().len() - 1;
        for (i, layer) in model.layers().iter().enumerate() {
            let z: Vec<f64> = layer
                .weights
                .chunks_exact(layer.inputs)
                .zip(&layer.bias)
                .map(|(row, &b)| {
                    row.iter()
                        .zip(&x)
                        .map(|(&w, &v)| f64::from(w) * v)
                        .sum::<f64>()
                        + f64::from(b)
                })
                .collect();
            if i == last {
                scores.extend(z);
                break;
            }
            near = z.iter().fold(near, |m, v| m.min(v.abs()));
            x = z.into_iter().map(|v| activate(model.hidden(), v)).collect();
        }
        closest.push(near);
    }
    (scores, closest)
}
