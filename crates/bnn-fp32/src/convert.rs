//! The like-for-like FP32 version of a 1-bit model, for comparing engines
//! on the very same network.
//!
//! Inputs are binarized at the model's threshold, weights become ±1.0, and
//! each hidden neuron's integer threshold becomes a bias in front of a sign:
//! `Threshold { value: t, flip: false }` fires iff `dot >= t`, i.e. iff
//! `w·x − t >= 0` (bias `−t`); with `flip: true` it fires iff `dot <= t`,
//! i.e. iff `(−w)·x + t >= 0` (weights negated, bias `t`). The output layer
//! keeps its f32 bias. Every hidden quantity is a small integer, exact in
//! f32, and each score is `dot + bias` rounded once — exactly as the binary
//! engine computes it — so both engines give the same scores, bit for bit.
//! A per-class score scale multiplies the output rows' weights, which is
//! exact only for scales that are powers of two (see [`scale_rows`]).
//!
//! A u8-input model's pixel layer becomes the first dense layer over the
//! pixel values themselves (`InputTransform::Pixel`): its dots `Σ p·w` are
//! integers of at most `255·n`, exact in f32 (and so are `dot − t`) while
//! `510·n + 1 < 2²⁴`, that is for up to 32,896 pixels; the thresholds are
//! clamped to `±(255·n + 1)`.
//!
//! A convolution becomes a [`ConvF32`] with the same ±1 filters, unnegated,
//! and its threshold as a per-channel scale and bias after the pool: scale
//! `1`, bias `−t` when not flipped; scale `−1`, bias `t` when flipped. The
//! pool then takes the maximum of the integer dots, and the sign of
//! `−max + t` fires iff every dot of the window is `<= t`: the AND the
//! engine pools a flipped channel's bits with (the OR of an unflipped one
//! is the sign of `max − t`). Negating a flipped filter's weights instead,
//! as the dense layers do, would pool the minimum dot and get it wrong.
//! Padded positions hold −1 for bit maps and binarized pixels and 0 for
//! pixel values, as in the engine.

use bnn_core::{BitMatrix, ConvStage, Model, Threshold, Transform};

use crate::conv::{ConvF32, MapShape, Padding};
use crate::model::{DenseF32, Fp32Model, Hidden, InputTransform};

/// Converts a binary model; see the module docs for why the result is exact
/// (for layers of up to 2²⁴ inputs, the `.bnn` format's limit, where every
/// dot product is an exact f32).
pub fn from_binary(model: &Model) -> Fp32Model {
    let pixel = model.pixel_layer().map(|l| {
        dense(
            l.weights(),
            l.transform(),
            bnn_core::PixelDense::dot_bound(l.inputs()),
        )
    });
    let binary = model
        .layers()
        .iter()
        .map(|l| dense(l.weights(), l.transform(), l.inputs()));
    let mut layers: Vec<DenseF32> = pixel.into_iter().chain(binary).collect();
    if let (Some(scale), Some(last)) = (model.score_scale(), layers.last_mut()) {
        scale_rows(last, scale);
    }
    let input = match model.input_encoding() {
        bnn_core::InputEncoding::Binary { threshold } => InputTransform::Binarize { threshold },
        bnn_core::InputEncoding::U8 => InputTransform::Pixel,
    };
    let convs = model.convs().iter().map(conv).collect();
    Fp32Model::with_convs(input, Hidden::Sign, convs, layers, model.rule())
        .expect("a valid binary model has chaining shapes and finite values")
}

/// One convolution stage in f32 (see the module docs).
fn conv(stage: &ConvStage) -> ConvF32 {
    let c = stage.conv();
    let s = stage.input_shape();
    let window = c.window();
    let (bound, pad_value) = if stage.takes_pixels() {
        (bnn_core::PixelDense::dot_bound(window), 0.0)
    } else if c.padding() == Padding::Zero {
        (window, 0.0)
    } else {
        (window, -1.0)
    };
    let n = clamp_bound(bound);
    let (scale, bias) = c.thresholds().iter().map(|t| sign_and_bias(t, n)).unzip();
    ConvF32 {
        input: MapShape::new(s.height as usize, s.width as usize, s.channels as usize),
        kernel: c.k(),
        outputs: c.out_channels(),
        // Zero padding is `same`'s geometry with the pad value 0.
        padding: match c.padding() {
            Padding::Zero => Padding::Same,
            p => p,
        },
        pad_value,
        pool: stage.pooled(),
        weights: c.weights().to_pm1().into_iter().map(f32::from).collect(),
        scale,
        bias,
    }
}

/// One layer in f32: ±1 weights (negated where a threshold is flipped) and
/// the bias its threshold or score offset becomes; `bound` is the largest
/// `|dot|` the layer can produce.
fn dense(weights: BitMatrix, transform: &Transform, bound: usize) -> DenseF32 {
    let (outputs, inputs) = (weights.rows(), weights.cols());
    let pm1 = weights.to_pm1();
    let (signs, bias): (Vec<f32>, Vec<f32>) = match transform {
        Transform::Sign(thresholds) => {
            let n = clamp_bound(bound);
            thresholds.iter().map(|t| sign_and_bias(t, n)).unzip()
        }
        Transform::Scores(bias) => (vec![1.0; outputs], bias.clone()),
    };
    let weights = pm1
        .chunks_exact(inputs)
        .zip(&signs)
        .flat_map(|(row, &s)| row.iter().map(move |&w| s * f32::from(w)))
        .collect();
    DenseF32 {
        inputs,
        outputs,
        weights,
        bias,
    }
}

/// Multiplies each output row's weights by its class's score scale: the
/// score `Σ (s·w)·x + b` is the engine's `s·dot + b` in real numbers, but a
/// sum of ±s values rounds where the engine rounds `s·dot` once, so such a
/// twin's scores match to f32 rounding (exactly when each scale is a power
/// of two or 0).
fn scale_rows(layer: &mut DenseF32, scale: &[f32]) {
    for (row, &s) in layer.weights.chunks_exact_mut(layer.inputs).zip(scale) {
        row.iter_mut().for_each(|w| *w *= s);
    }
}

/// A threshold as `(s, b)` with `s·dot + b >= 0` iff it fires: `(1, −t)`,
/// or `(−1, t)` when flipped; `t` clamped to `±n` (see [`clamp_bound`]).
fn sign_and_bias(t: &Threshold, n: i64) -> (f32, f32) {
    let v = i64::from(t.value).clamp(-n, n) as f32;
    if t.flip {
        (-1.0, v)
    } else {
        (1.0, -v)
    }
}

/// The smallest f32-exact integer above every dot product of a layer (which
/// lies in `[−inputs, inputs]`). A threshold beyond it behaves like it, so
/// clamping to it changes no decision and keeps the bias exact for any i32.
fn clamp_bound(inputs: usize) -> i64 {
    let n = inputs as i64;
    // Above 2²⁴ only even integers are exact in f32.
    if n < 1 << 24 {
        n + 1
    } else {
        n + 2 - n % 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamp_bound_is_exact_and_above_every_dot() {
        for n in [1usize, 9, (1 << 24) - 1, 1 << 24, (1 << 24) + 1] {
            let b = clamp_bound(n);
            assert!(b > n as i64, "{n}");
            assert_eq!(b as f32 as i64, b, "{n}");
        }
    }
}
