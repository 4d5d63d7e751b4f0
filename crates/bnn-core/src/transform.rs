//! What a layer does with its integer dot products: a threshold per neuron
//! for hidden layers, or a float bias per neuron for the output layer. Both
//! the dense loops (`layer`) and the bit-sliced ones (`sparse`) read these,
//! so they live apart from either.
//!
//! Thresholds are the whole of the hidden layer's arithmetic. A bias `b`
//! folds as `x·w + b ≥ 0 ⇔ x·w ≥ ⌈−b⌉`; a batch norm before the sign folds the
//! same way, with the comparison flipped where its scale is negative (see
//! [`Threshold::from_batch_norm`]). So inference needs no floating point
//! until the output layer.

use crate::error::{Error, Result};

/// When a hidden neuron fires (+1): `dot >= value`, or `dot <= value` when
/// `flip` is set (a negative batch-norm scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Threshold {
    /// The integer dot product at which the neuron switches.
    pub value: i32,
    /// Fire at or below `value` rather than at or above.
    pub flip: bool,
}

impl Threshold {
    /// Fires when `dot >= value`.
    pub const fn at_least(value: i32) -> Self {
        Threshold { value, flip: false }
    }

    /// Fires when `dot <= value`.
    pub const fn at_most(value: i32) -> Self {
        Threshold { value, flip: true }
    }

    /// Whether a neuron with integer dot product `dot` fires.
    #[inline]
    pub fn fires(self, dot: i32) -> bool {
        if self.flip {
            dot <= self.value
        } else {
            dot >= self.value
        }
    }

    /// The same test on the popcount of `x XOR w` over `inputs` bits: the
    /// neuron fires iff `(popcount <= limit) != flip`. Kernels and exported
    /// code compare popcounts directly, saving a subtraction and a doubling
    /// per neuron; the limit is clamped to `[-1, inputs]`, where it already
    /// means "never" or "always", so it fits the narrow integers hardware
    /// export sizes from `inputs`, whatever value a model file holds.
    ///
    /// With `dot = n − 2p`: not flipped, `dot ≥ v ⇔ p ≤ ⌊(n − v)/2⌋`;
    /// flipped, `dot ≤ v ⇔ p ≥ ⌈(n − v)/2⌉ ⇔ ¬(p ≤ ⌈(n − v)/2⌉ − 1)`.
    pub fn popcount_limit(self, inputs: usize) -> i64 {
        let n = inputs as i64;
        let d = n - i64::from(self.value);
        let limit = if self.flip {
            d.div_euclid(2) + d.rem_euclid(2) - 1
        } else {
            d.div_euclid(2)
        };
        limit.clamp(-1, n)
    }

    /// The threshold of `sign(dot + bias)` with `sign(0) = +1`: fires iff
    /// `dot >= ⌈−bias⌉`. Exact for any finite bias, because `dot` is an
    /// integer; the value is clamped to `±(inputs + 1)`, beyond which the
    /// answer no longer changes.
    pub fn from_bias(bias: f64, inputs: usize) -> Result<Self> {
        if !bias.is_finite() {
            return Err(Error::InvalidModel(format!("bias {bias} is not finite")));
        }
        Ok(Threshold::at_least(clamp_dot((-bias).ceil(), inputs)))
    }

    /// The threshold of `sign(γ·(dot + bias − μ)/√(σ² + ε) + β)`.
    ///
    /// With `s = √(σ² + ε)`, the neuron fires iff `γ·(dot + bias − μ) ≥ −β·s`:
    /// for `γ > 0`, `dot ≥ ⌈μ − bias − β·s/γ⌉`; for `γ < 0`,
    /// `dot ≤ ⌊μ − bias − β·s/γ⌋`; for `γ = 0`, always or never, by the sign
    /// of `β`. Computed in f64.
    pub fn from_batch_norm(
        gamma: f64,
        beta: f64,
        mean: f64,
        var: f64,
        eps: f64,
        bias: f64,
        inputs: usize,
    ) -> Result<Self> {
        let all = [gamma, beta, mean, var, eps, bias];
        if all.iter().any(|v| !v.is_finite()) || var + eps <= 0.0 {
            return Err(Error::InvalidModel(format!(
                "batch norm (gamma {gamma}, beta {beta}, mean {mean}, var {var}, eps {eps}, bias {bias}) is not foldable"
            )));
        }
        let n = inputs as i32;
        if gamma == 0.0 {
            return Ok(if beta >= 0.0 {
                Threshold::at_least(-n - 1)
            } else {
                Threshold::at_least(n + 1)
            });
        }
        let s = (var + eps).sqrt();
        let cut = mean - bias - beta * s / gamma;
        Ok(if gamma > 0.0 {
            Threshold::at_least(clamp_dot(cut.ceil(), inputs))
        } else {
            Threshold::at_most(clamp_dot(cut.floor(), inputs))
        })
    }
}

/// Dots lie in `[−n, n]`; anything beyond `n + 1` behaves the same.
fn clamp_dot(v: f64, inputs: usize) -> i32 {
    let n = inputs as f64 + 1.0;
    v.clamp(-n, n) as i32
}

/// What a layer does with its dot products.
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    /// A hidden layer: one threshold per neuron; emits bits.
    Sign(Vec<Threshold>),
    /// The output layer: `score = dot + bias` per neuron, in f32.
    Scores(Vec<f32>),
}

impl Transform {
    /// Refuses a transform that does not fit a layer of `outputs` neurons:
    /// another count of thresholds or biases, or a bias that is not finite.
    /// Every layer kind checks its transform here, so they refuse alike.
    pub fn check(&self, outputs: usize) -> Result<()> {
        let (per_neuron, what) = match self {
            Transform::Sign(t) => (t.len(), "thresholds"),
            Transform::Scores(b) => {
                if let Some(i) = b.iter().position(|v| !v.is_finite()) {
                    return Err(Error::InvalidModel(format!("bias {i} is {}", b[i])));
                }
                (b.len(), "biases")
            }
        };
        if per_neuron != outputs {
            return Err(Error::InvalidModel(format!(
                "{per_neuron} {what} for {outputs} neurons"
            )));
        }
        Ok(())
    }
}
