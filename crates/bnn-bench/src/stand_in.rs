//! A u8-input model derived from a binary-input one, so that the u8 path
//! can be benchmarked and tested end to end on real digits before (and
//! independently of) a trained u8 model.
//!
//! A binary input is `x = sign(p − c)` with `c = t − ½` for the threshold
//! `t`; its linear stand-in is `(p − c)/s` with `s = 127.5`. Then
//! `x·w ≈ (Σ p·w − c·Σ w)/s`, and a first-layer threshold `x·w >= T`
//! becomes `Σ p·w >= s·T + c·Σ w` (rounded up; `<=` and rounded down for a
//! flipped one). The later layers are kept as they are. The result is a real
//! network with its own accuracy (measured, never assumed), not the binary
//! model's: it only approximates it.

use bnn_core::{Model, PixelDense, Result, Threshold, Transform};

/// The u8-input stand-in of a binary-input model (see the module docs).
pub fn u8_stand_in(model: &Model) -> Result<Model> {
    let first = &model.layers()[0];
    let weights = first.weights();
    let c = f64::from(model.input_threshold()) - 0.5;
    let s = 127.5;
    let sums: Vec<f64> = weights
        .to_pm1()
        .chunks_exact(first.inputs())
        .map(|row| row.iter().map(|&w| f64::from(w)).sum())
        .collect();
    let bound = PixelDense::dot_bound(first.inputs()) as f64 + 1.0;
    let transform = match first.transform() {
        Transform::Sign(thresholds) => Transform::Sign(
            thresholds
                .iter()
                .zip(&sums)
                .map(|(t, &sum)| {
                    let cut = (s * f64::from(t.value) + c * sum).clamp(-bound, bound);
                    if t.flip {
                        Threshold::at_most(cut.floor() as i32)
                    } else {
                        Threshold::at_least(cut.ceil() as i32)
                    }
                })
                .collect(),
        ),
        // score = x·w + b ≈ (Σ p·w − c·Σ w)/s + b: scaled by s, which no
        // decision rule of this project can tell apart.
        Transform::Scores(bias) => Transform::Scores(
            bias.iter()
                .zip(&sums)
                .map(|(&b, &sum)| (s * f64::from(b) - c * sum) as f32)
                .collect(),
        ),
    };
    let pixel = PixelDense::new(weights, transform)?;
    Model::with_pixel_layer(pixel, model.layers()[1..].to_vec(), model.rule())
}

/// The architecture of the `cnn-small` recipe, the benchmark shape other
/// engines are compared on.
pub const CNN_SMALL_ARCH: &str = "c3x32,p2,c3x64,p2,d256,d10";

/// A network of exactly `cnn-small`'s shape (u8 28×28×1 input, "same"
/// padding, [`CNN_SMALL_ARCH`]) with pseudo-random ±1 weights, for timing
/// the convolution path where no trained CNN is at hand. Its thresholds sit
/// at 0, the middle of a random dot's range, so about half the channels
/// fire, as in a trained network; a quarter are flipped, so pooling runs
/// both its OR and its AND. Its accuracy is chance: the bench prints what
/// it measures, and it names the model a stand-in.
pub fn cnn_small_stand_in() -> Result<Model> {
    use bnn_core::{BinaryDense, BitMatrix, Conv2d, InputEncoding, InputShape, Layer, Padding};
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    // SplitMix64: fixed, so every run times the same network.
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut bits = |rows: usize, cols: usize| {
        let pm1: Vec<i8> = (0..rows * cols)
            .map(|_| if next() & 1 == 1 { 1 } else { -1 })
            .collect();
        BitMatrix::from_pm1(rows, cols, &pm1)
    };
    let thresholds = |n: usize| {
        (0..n)
            .map(|i| {
                if i % 4 == 3 {
                    Threshold::at_most(0)
                } else {
                    Threshold::at_least(0)
                }
            })
            .collect::<Vec<_>>()
    };
    let c1 = Conv2d::new(3, 1, Padding::Same, bits(32, 9)?, thresholds(32))?;
    let c2 = Conv2d::new(3, 32, Padding::Same, bits(64, 288)?, thresholds(64))?;
    let d1 = BinaryDense::hidden(bits(256, 7 * 7 * 64)?, thresholds(256))?;
    let d2 = BinaryDense::output(bits(10, 256)?, vec![0.0; 10])?;
    Model::from_layers(
        InputShape::new(28, 28, 1),
        InputEncoding::U8,
        vec![
            Layer::Conv(c1),
            Layer::MaxPool,
            Layer::Conv(c2),
            Layer::MaxPool,
            Layer::Dense(d1),
            Layer::Dense(d2),
        ],
        bnn_core::DecisionRule::Scores,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cnn_stand_in_has_the_benchmark_shape_and_varies() {
        let model = cnn_small_stand_in().unwrap();
        let twin = bnn_fp32::from_binary(&model);
        assert_eq!(twin.arch(), CNN_SMALL_ARCH);
        assert_eq!(model.input_len(), 784);
        assert!(model.input_encoding().is_u8());
        // Its answers depend on the image: pixels of a ramp and its mirror.
        let a: Vec<u8> = (0..784).map(|i| (i % 256) as u8).collect();
        let b: Vec<u8> = a.iter().rev().copied().collect();
        let mut sa = vec![0f32; 10];
        let mut sb = vec![0f32; 10];
        model
            .predict_scores_into(bnn_core::Kernel::Scalar, &a, &mut sa)
            .unwrap();
        model
            .predict_scores_into(bnn_core::Kernel::Scalar, &b, &mut sb)
            .unwrap();
        assert_ne!(sa, sb);
        assert_eq!(model, cnn_small_stand_in().unwrap(), "deterministic");
    }
}
