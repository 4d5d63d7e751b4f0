//! The same network evaluated in f32 with `ndarray`, from unpacked ±1 weights:
//! slow and obvious on purpose. It shares no arithmetic with the kernels (no
//! packing, no popcount, no folded limits), which is what makes it the oracle
//! the packed engine is tested against, bit for bit.
//!
//! A u8-input model's first layer multiplies the pixel values themselves
//! (0..=255) by ±1, in f64: its sums reach `255·n`, beyond what f32 holds
//! exactly for wide inputs, and f64 holds them exactly for any width the
//! engine accepts.
use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::layer::{Threshold, Transform};
use crate::model::Model;

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

/// The float evaluation of a [`Model`].
pub struct Reference {
    input_threshold: u8,
    pixel: Option<PixelLayer>,
    layers: Vec<Dense>,
    rule: crate::model::DecisionRule,
}

impl Reference {
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
        Reference {
            input_threshold: model.input_threshold(),
            pixel,
            layers,
            rule: model.rule(),
        }
    }

    /// ±1 inputs of a batch: `p >= threshold` → +1.
    pub fn binarize(&self, pixels: ArrayView2<u8>) -> Array2<f32> {
        pixels.mapv(|p| if p >= self.input_threshold { 1.0 } else { -1.0 })
    }

    /// Every layer's output for a batch (rows = images): ±1 activations for
    /// hidden layers, then the scores.
    pub fn activations(&self, pixels: ArrayView2<u8>) -> Vec<Array2<f32>> {
        let mut all = Vec::with_capacity(self.layers.len() + 1);
        let mut x = match &self.pixel {
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
                                *o = if t.fires(d as i32) { 1.0 } else { -1.0 };
                            }
                        }
                        out
                    }
                    // The engine adds the bias to the dot rounded to f32.
                    Transform::Scores(bias) => {
                        dots.mapv(|d| d as f32) + &Array1::from(bias.clone())
                    }
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
                Transform::Scores(bias) => &dots + &Array1::from(bias.clone()),
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
            .map(|row| {
                self.rule
                    .decide(row.as_slice().expect("rows are contiguous"))
            })
            .collect()
    }
}

fn apply_thresholds(dots: &Array2<f32>, thresholds: &[Threshold]) -> Array2<f32> {
    let mut out = dots.clone();
    for mut row in out.axis_iter_mut(Axis(0)) {
        for (v, t) in row.iter_mut().zip(thresholds) {
            let dot = *v as i32;
            *v = if t.fires(dot) { 1.0 } else { -1.0 };
        }
    }
    out
}
