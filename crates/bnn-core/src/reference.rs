//! The same network evaluated in f32 with `ndarray`, from unpacked ±1 weights:
//! slow and obvious on purpose. It shares no arithmetic with the engine (no
//! packing, no popcount, no folded limits, not even the engine's threshold
//! test or decision rule: `fires` and `decide` here are its own), which is
//! what makes it the oracle the packed engine is tested against, bit for bit.
//! It reads only the model's data: weights, threshold values and directions,
//! biases, per-class score scales, and which rule the model names.
//!
//! A u8-input model's first layer multiplies the pixel values themselves
//! (0..=255) by ±1, in f64: its sums reach `255·n`, beyond what f32 holds
//! exactly for wide inputs, and f64 holds them exactly for any width the
//! engine accepts.
//!
//! Convolutions are the textbook loop over output positions, filters and
//! window offsets, in f64, reading a padded position as −1 on bit maps
//! (`same`) and 0 on pixels or under `zero` padding, where it then adds
//! nothing to the dot: no correction term, unlike the engine. A 2×2 max pool takes the max of the four integer dots and
//! only then applies the threshold, the order the trainer runs (conv →
//! pool → batch norm → sign); the engine pools bits instead, and agreeing
//! with this is what proves that equivalent.
use ndarray::{Array1, Array2, Array3, ArrayView2, Axis};

use crate::conv::Padding;
use crate::model::{DecisionRule, Model};
use crate::transform::{Threshold, Transform};

/// One layer, unpacked.
struct Dense {
    /// outputs × inputs, each ±1.0.
    weights: Array2<f32>,
    transform: Transform,
}

/// A u8 pixel layer, unpacked: outputs × inputs of ±1.0 in f64.
struct PixelLayer {
    weights: Array2<f64>,
    transform: Transform,
}

/// A convolution, unpacked: filters × window of ±1.0.
struct ConvLayer {
    weights: Array2<f64>,
    thresholds: Vec<Threshold>,
    k: usize,
    pad: usize,
    pooled: bool,
    /// What a padded position reads: −1 on a `same`-padded bit map, else 0.
    outside: f64,
    /// Output side before pooling.
    out: (usize, usize),
}

/// The float evaluation of a [`Model`].
pub struct Reference {
    input_threshold: u8,
    input_shape: crate::input::InputShape,
    pixel: Option<PixelLayer>,
    convs: Vec<ConvLayer>,
    /// Whether the first convolution takes u8 pixel values.
    pixels_in: bool,
    layers: Vec<Dense>,
    /// The score layer's per-class scale, if any: scores are
    /// `(dot as f32) · scale + bias`, a product and then a sum in f32.
    scale: Option<Array1<f32>>,
    rule: DecisionRule,
}

impl Reference {
    /// The float evaluation of `model`, its weights unpacked to ±1.0 once.
    pub fn new(model: &Model) -> Self {
        let layers = model
            .layers()
            .iter()
            .map(|l| {
                let pm1: Vec<f32> = l.weights().to_pm1().into_iter().map(f32::from).collect();
                Dense {
                    weights: Array2::from_shape_vec((l.outputs(), l.inputs()), pm1)
                        .expect("to_pm1 yields outputs × inputs values"),
                    transform: l.transform().clone(),
                }
            })
            .collect();
        let pixel = model.pixel_layer().map(|l| {
            let pm1: Vec<f64> = l.weights().to_pm1().into_iter().map(f64::from).collect();
            PixelLayer {
                weights: Array2::from_shape_vec((l.outputs(), l.inputs()), pm1)
                    .expect("to_pm1 yields outputs × inputs values"),
                transform: l.transform().clone(),
            }
        });
        let convs = model
            .convs()
            .iter()
            .map(|stage| {
                let conv = stage.conv();
                let pm1: Vec<f64> = conv.weights().to_pm1().into_iter().map(f64::from).collect();
                let out = stage.conv_shape();
                ConvLayer {
                    weights: Array2::from_shape_vec((conv.out_channels(), conv.window()), pm1)
                        .expect("to_pm1 yields filters × window values"),
                    thresholds: conv.thresholds().to_vec(),
                    k: conv.k(),
                    pad: conv.padding().before(conv.k()),
                    pooled: stage.pooled(),
                    outside: match conv.padding() {
                        Padding::Same if !stage.takes_pixels() => -1.0,
                        _ => 0.0,
                    },
                    out: (out.height as usize, out.width as usize),
                }
            })
            .collect();
        Reference {
            input_threshold: model.input_threshold(),
            input_shape: model.input_shape(),
            pixel,
            pixels_in: model.convs().first().is_some_and(|s| s.takes_pixels()),
            convs,
            layers,
            scale: model.score_scale().map(|s| Array1::from(s.to_vec())),
            rule: model.rule(),
        }
    }

    /// Each convolution's output maps (after pooling), one image a row,
    /// flattened in NHWC order, ±1.
    fn conv_maps(&self, pixels: ArrayView2<u8>) -> Vec<Array2<f32>> {
        let s = self.input_shape;
        let (h, w, c) = (s.height as usize, s.width as usize, s.channels as usize);
        let mut maps: Vec<Vec<f32>> = vec![Vec::new(); self.convs.len()];
        for image in pixels.axis_iter(Axis(0)) {
            let mut x = Array3::from_shape_fn((h, w, c), |(y, xx, ch)| {
                let p = image[(y * w + xx) * c + ch];
                match self.pixels_in {
                    true => f64::from(p),
                    false if p >= self.input_threshold => 1.0,
                    false => -1.0,
                }
            });
            for (conv, map) in self.convs.iter().zip(&mut maps) {
                x = conv.forward(&x);
                map.extend(x.iter().map(|&v| v as f32));
            }
        }
        maps.into_iter()
            .map(|m| {
                let len = m.len() / pixels.nrows().max(1);
                Array2::from_shape_vec((pixels.nrows(), len), m).expect("one map per image")
            })
            .collect()
    }

    /// Scores from the score layer's dots (rows = images): the dots times
    /// the per-class scale, if any, rounded to f32, then plus the bias.
    fn score(&self, dots: Array2<f32>, bias: &[f32]) -> Array2<f32> {
        let scaled = match &self.scale {
            Some(scale) => dots * scale,
            None => dots,
        };
        scaled + &Array1::from(bias.to_vec())
    }

    /// ±1 inputs of a batch: `p >= threshold` → +1.
    pub fn binarize(&self, pixels: ArrayView2<u8>) -> Array2<f32> {
        pixels.mapv(|p| if p >= self.input_threshold { 1.0 } else { -1.0 })
    }

    /// Every layer's output for a batch (rows = images): ±1 activations for
    /// hidden layers, then the scores.
    pub fn activations(&self, pixels: ArrayView2<u8>) -> Vec<Array2<f32>> {
        let mut all = Vec::with_capacity(self.layers.len() + self.convs.len() + 1);
        let mut x = match &self.pixel {
            None if !self.convs.is_empty() => {
                all.extend(self.conv_maps(pixels));
                all.last().expect("one map per convolution").clone()
            }
            None => self.binarize(pixels),
            Some(first) => {
                let values = pixels.mapv(f64::from);
                let dots = values
                    .dot(&first.weights.t())
                    .as_standard_layout()
                    .into_owned();
                let out = match &first.transform {
                    Transform::Sign(thresholds) => {
                        let mut out = Array2::<f32>::zeros(dots.raw_dim());
                        for (mut o, d) in out.axis_iter_mut(Axis(0)).zip(dots.axis_iter(Axis(0))) {
                            for ((o, &d), t) in o.iter_mut().zip(d).zip(thresholds) {
                                *o = sign(fires(t, d));
                            }
                        }
                        out
                    }
                    // The engine adds the bias to the dot rounded to f32.
                    Transform::Scores(bias) => self.score(dots.mapv(|d| d as f32), bias),
                };
                all.push(out.clone());
                out
            }
        };
        for layer in &self.layers {
            // Sums of ±1 products stay exact integers in f32 up to 2^24 terms.
            // `dot` may return a column-major result for degenerate shapes
            // (one row, one neuron); callers get row-major arrays.
            let dots = x.dot(&layer.weights.t()).as_standard_layout().into_owned();
            x = match &layer.transform {
                Transform::Sign(thresholds) => apply_thresholds(&dots, thresholds),
                Transform::Scores(bias) => self.score(dots, bias),
            };
            all.push(x.clone());
        }
        all
    }

    /// Scores of a batch, images × classes.
    pub fn scores(&self, pixels: ArrayView2<u8>) -> Array2<f32> {
        self.activations(pixels).pop().expect("a model has layers")
    }

    /// Classes of a batch under the model's decision rule.
    pub fn classes(&self, pixels: ArrayView2<u8>) -> Vec<usize> {
        let scores = self.scores(pixels);
        scores
            .axis_iter(Axis(0))
            .map(|row| decide(self.rule, row.as_slice().expect("rows are contiguous")))
            .collect()
    }
}

impl ConvLayer {
    /// One image's map through this convolution, its pool and thresholds.
    fn forward(&self, x: &Array3<f64>) -> Array3<f64> {
        let (h, w, c) = x.dim();
        let (ho, wo) = self.out;
        let filters = self.weights.nrows();
        let outside = self.outside;
        let mut dots = Array3::<f64>::zeros((ho, wo, filters));
        let mut window = Array1::<f64>::zeros(self.k * self.k * c);
        for oy in 0..ho {
            for ox in 0..wo {
                // The window in (ky, kx, c) order, padded positions read as
                // `outside`; then its product with every filter.
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        let iy = (oy + ky) as isize - self.pad as isize;
                        let ix = (ox + kx) as isize - self.pad as isize;
                        let inside = (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix);
                        for ch in 0..c {
                            window[(ky * self.k + kx) * c + ch] = if inside {
                                x[[iy as usize, ix as usize, ch]]
                            } else {
                                outside
                            };
                        }
                    }
                }
                dots.slice_mut(ndarray::s![oy, ox, ..])
                    .assign(&self.weights.dot(&window));
            }
        }
        if self.pooled {
            dots = Array3::from_shape_fn((ho / 2, wo / 2, filters), |(y, x, f)| {
                let (y, x) = (2 * y, 2 * x);
                dots[[y, x, f]]
                    .max(dots[[y, x + 1, f]])
                    .max(dots[[y + 1, x, f]])
                    .max(dots[[y + 1, x + 1, f]])
            });
        }
        for ((_, _, f), v) in dots.indexed_iter_mut() {
            *v = f64::from(sign(fires(&self.thresholds[f], *v)));
        }
        dots
    }
}

fn apply_thresholds(dots: &Array2<f32>, thresholds: &[Threshold]) -> Array2<f32> {
    let mut out = dots.clone();
    for mut row in out.axis_iter_mut(Axis(0)) {
        for (v, t) in row.iter_mut().zip(thresholds) {
            *v = sign(fires(t, f64::from(*v)));
        }
    }
    out
}

/// Whether a neuron with dot product `dot` fires under `t`, from the
/// definition: `dot >= value`, or `dot <= value` for a flipped threshold.
/// Compared in f64, where every dot and every `i32` value is exact, so no
/// rounding or integer conversion stands between the dot and the test.
fn fires(t: &Threshold, dot: f64) -> bool {
    let value = f64::from(t.value);
    if t.flip {
        dot <= value
    } else {
        dot >= value
    }
}

/// +1.0 for a neuron that fires, −1.0 for one that does not.
fn sign(fires: bool) -> f32 {
    if fires {
        1.0
    } else {
        -1.0
    }
}

/// The class `rule` picks from one image's scores, from the rules'
/// definitions: `Scores` is the first maximum of the scores; `Seed` is the
/// first maximum of their signs (`sign(0) = +1`).
fn decide(rule: DecisionRule, scores: &[f32]) -> usize {
    match rule {
        DecisionRule::Scores => first_max(scores),
        DecisionRule::Seed => {
            let signs: Vec<f32> = scores.iter().map(|&s| sign(s >= 0.0)).collect();
            first_max(&signs)
        }
    }
}

/// The index of the first largest value; 0 for an empty slice.
fn first_max(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_from_the_definition() {
        let up = Threshold::at_least(3);
        let down = Threshold::at_most(3);
        assert_eq!(
            [2.0, 3.0, 4.0].map(|d| (fires(&up, d), fires(&down, d))),
            [(false, true), (true, true), (true, false)]
        );
        // Values beyond what f32 holds exactly are still compared exactly.
        let big = Threshold::at_least(16_777_217);
        assert!(!fires(&big, 16_777_216.0) && fires(&big, 16_777_217.0));
    }

    #[test]
    fn rules_from_the_definition() {
        let scores = [-1.0, 2.5, 2.5, 0.0, -3.0];
        assert_eq!(decide(DecisionRule::Scores, &scores), 1, "first maximum");
        assert_eq!(decide(DecisionRule::Seed, &scores), 1, "first sign +1");
        assert_eq!(
            decide(DecisionRule::Seed, &[-1.0, -0.0, 5.0]),
            1,
            "sign(0) = +1"
        );
        assert_eq!(decide(DecisionRule::Seed, &[-1.0, -2.0]), 0, "all negative");
        assert_eq!(decide(DecisionRule::Scores, &[-2.0, -1.0, -1.5]), 1);
    }
}
