//! Answers computed the slow, obvious way, sharing no code with the engines
//! they check: no packing, no popcount, no folded limits, no GEMM.

use bnn_core::{Model, Transform};
use bnn_fp32::{ConvF32, Fp32Model, Hidden, InputTransform, MapShape};

/// The scores of a binary model for each image (row-major, images ×
/// classes): ±1 inputs by comparing pixels with the threshold, integer dot
/// products term by term, each hidden neuron's threshold applied as its
/// definition says, and `dot + bias` rounded once to f32 at the end.
pub fn binary_scores(model: &Model, pixels: &[u8]) -> Vec<f32> {
    let n = model.input_len();
    assert_eq!(pixels.len() % n, 0, "whole images");
    // A u8-input model's pixel layer comes first and sees the pixel values.
    let pixel = model
        .pixel_layer()
        .map(|l| (l.weights().to_pm1(), l.transform(), l.inputs()));
    let layers: Vec<(Vec<i8>, &Transform, usize)> = pixel
        .into_iter()
        .chain(
            model
                .layers()
                .iter()
                .map(|l| (l.weights().to_pm1(), l.transform(), l.inputs())),
        )
        .collect();
    let mut out = Vec::new();
    for image in pixels.chunks_exact(n) {
        let mut x: Vec<i32> = image
            .iter()
            .map(|&p| match model.pixel_layer() {
                Some(_) => i32::from(p),
                None if p >= model.input_threshold() => 1,
                None => -1,
            })
            .collect();
        for (weights, transform, inputs) in &layers {
            let dots: Vec<i32> = weights
                .chunks_exact(*inputs)
                .map(|row| row.iter().zip(&x).map(|(&w, &v)| i32::from(w) * v).sum())
                .collect();
            match transform {
                Transform::Sign(thresholds) => {
                    x = dots
                        .iter()
                        .zip(thresholds)
                        .map(|(&d, t)| {
                            let fires = if t.flip { d <= t.value } else { d >= t.value };
                            if fires {
                                1
                            } else {
                                -1
                            }
                        })
                        .collect();
                }
                Transform::Scores(bias) => {
                    out.extend(dots.iter().zip(bias).map(|(&d, &b)| d as f32 + b));
                }
            }
        }
    }
    out
}

/// The class each image's scores give under `rule`, written from the rules'
/// definitions: `scores` takes the first maximum, `seed` the first
/// non-negative score (class 0 when there is none).
pub fn classes(rule: bnn_core::DecisionRule, scores: &[f32], classes: usize) -> Vec<usize> {
    scores
        .chunks_exact(classes)
        .map(|s| match rule {
            bnn_core::DecisionRule::Scores => {
                let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                s.iter().position(|&v| v == max).unwrap_or(0)
            }
            bnn_core::DecisionRule::Seed => s.iter().position(|&v| v >= 0.0).unwrap_or(0),
        })
        .collect()
}

/// An FP32 model's forward pass in f64, one multiply-add at a time,
/// convolutions included (see `conv_layer`). Returns each image's scores
/// and, per image, the smallest magnitude any hidden pre-activation took:
/// where that is within rounding of 0, a `sign` network may legitimately go
/// either way in f32.
pub fn fp32_scores(model: &Fp32Model, pixels: &[u8]) -> (Vec<f64>, Vec<f64>) {
    let n = model.input_len();
    assert_eq!(pixels.len() % n, 0, "whole images");
    let last = model.layers().len() - 1;
    let mut scores = Vec::new();
    let mut closest = Vec::new();
    for image in pixels.chunks_exact(n) {
        let mut x: Vec<f64> = image
            .iter()
            .map(|&p| match model.input() {
                InputTransform::Normalize => (2.0 * f64::from(p) - 255.0) / 255.0,
                InputTransform::Pixel => f64::from(p),
                InputTransform::Binarize { threshold } => {
                    if p >= threshold {
                        1.0
                    } else {
                        -1.0
                    }
                }
            })
            .collect();
        let mut near = f64::INFINITY;
        for l in model.convs() {
            x = conv_layer(l, &x, model.hidden(), &mut near);
        }
        for (k, layer) in model.layers().iter().enumerate() {
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
            if k == last {
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

/// One convolution of an FP32 model, as its definition says: every output
/// position sums its window straight from `(y, x, c)` coordinates (a
/// position outside the map holds the pad value), the 2×2 blocks are
/// pooled to their maximum, then scale, bias and activation. `near` keeps
/// the smallest pre-activation magnitude seen.
fn conv_layer(l: &ConvF32, x: &[f64], hidden: Hidden, near: &mut f64) -> Vec<f64> {
    let MapShape {
        height: h,
        width: w,
        channels: c,
    } = l.input;
    let k = l.kernel as isize;
    let pad = l.padding.before(l.kernel) as isize;
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
                *near = near.min(z.abs());
                next[(y * pw + xx) * l.outputs + o] = activate(hidden, z);
            }
        }
    }
    next
}

/// The class whose score beats every other by more than `margin`, if any:
/// an answer that no rounding within `margin` can change.
pub fn clear_winner(scores: &[f64], margin: f64) -> Option<usize> {
    let best = (1..scores.len()).fold(0, |m, j| if scores[j] > scores[m] { j } else { m });
    let runner_up = (0..scores.len())
        .filter(|&j| j != best)
        .map(|j| scores[j])
        .fold(f64::NEG_INFINITY, f64::max);
    (scores[best] - runner_up > margin).then_some(best)
}
