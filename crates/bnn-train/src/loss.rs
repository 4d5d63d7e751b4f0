//! Losses on the output scores `s` (batch × classes), each returning the
//! summed per-image loss and `∂(mean loss)/∂s`. Targets are +1 for the true
//! class and −1 elsewhere, except for cross-entropy.

use ndarray::Array2;

use crate::config::Loss;
use crate::net::sign;

/// Summed per-image loss and the gradient of the batch mean.
pub fn loss_and_grad(loss: Loss, s: &Array2<f32>, labels: &[u16]) -> (f64, Array2<f32>) {
    let (b, c) = s.dim();
    let bf = b as f32;
    let cf = c as f32;
    let mut grad = Array2::<f32>::zeros((b, c));
    let mut total = 0f64;
    for (i, (row, mut g)) in s.rows().into_iter().zip(grad.rows_mut()).enumerate() {
        let y = usize::from(labels[i]);
        let target = |k: usize| if k == y { 1.0f32 } else { -1.0 };
        match loss {
            Loss::SignMse => {
                // The seed: gradient 2·(sign(o) − t)/batch, loss the mean
                // over classes of (sign(o) − t)².
                for (k, (&v, g)) in row.iter().zip(g.iter_mut()).enumerate() {
                    let d = sign(v) - target(k);
                    total += f64::from(d * d / cf);
                    *g = 2.0 * d / bf;
                }
            }
            Loss::Mse => {
                for (k, (&v, g)) in row.iter().zip(g.iter_mut()).enumerate() {
                    let d = v - target(k);
                    total += f64::from(d * d / cf);
                    *g = 2.0 * d / (bf * cf);
                }
            }
            Loss::SquaredHinge => {
                for (k, (&v, g)) in row.iter().zip(g.iter_mut()).enumerate() {
                    let t = target(k);
                    let m = (1.0 - t * v).max(0.0);
                    total += f64::from(m * m / cf);
                    *g = -2.0 * t * m / (bf * cf);
                }
            }
            Loss::CrossEntropy => {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
                let log_sum = sum.ln();
                total += log_sum - f64::from(row[y] - max);
                for (k, (&v, g)) in row.iter().zip(g.iter_mut()).enumerate() {
                    let p = (f64::from(v - max) - log_sum).exp() as f32;
                    *g = (p - if k == y { 1.0 } else { 0.0 }) / bf;
                }
            }
        }
    }
    (total, grad)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each gradient matches a central finite difference of the mean loss
    /// (sign-MSE excepted: its gradient is the seed's surrogate).
    #[test]
    fn gradients_match_finite_differences() {
        let s = Array2::from_shape_fn((3, 4), |(i, j)| (i as f32 * 0.7 - j as f32 * 0.45).sin());
        let labels = [2u16, 0, 3];
        for loss in [Loss::Mse, Loss::SquaredHinge, Loss::CrossEntropy] {
            let (_, g) = loss_and_grad(loss, &s, &labels);
            for i in 0..3 {
                for j in 0..4 {
                    let h = 1e-3f32;
                    let mut p = s.clone();
                    p[[i, j]] += h;
                    let mut m = s.clone();
                    m[[i, j]] -= h;
                    let lp = loss_and_grad(loss, &p, &labels).0 / 3.0;
                    let lm = loss_and_grad(loss, &m, &labels).0 / 3.0;
                    let fd = ((lp - lm) / (2.0 * f64::from(h))) as f32;
                    assert!(
                        (fd - g[[i, j]]).abs() < 2e-3,
                        "{loss} [{i},{j}] {fd} vs {}",
                        g[[i, j]]
                    );
                }
            }
        }
    }

    #[test]
    fn sign_mse_is_the_seed_gradient() {
        let s = ndarray::arr2(&[[3.0f32, -2.0, 0.0]]);
        let (loss, g) = loss_and_grad(Loss::SignMse, &s, &[1]);
        // signs (+1, −1, +1) against targets (−1, +1, −1).
        assert_eq!(g, ndarray::arr2(&[[4.0f32, -4.0, 4.0]]));
        assert!((loss - 4.0).abs() < 1e-6);
        let (loss, g) = loss_and_grad(Loss::SignMse, &ndarray::arr2(&[[-1.0f32, 5.0, -0.5]]), &[1]);
        assert_eq!(loss, 0.0);
        assert!(g.iter().all(|&v| v == 0.0));
    }
}
