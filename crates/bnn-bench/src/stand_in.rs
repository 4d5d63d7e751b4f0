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
