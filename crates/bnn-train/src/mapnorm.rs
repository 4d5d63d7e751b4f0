//! Batch norm, sign and their gradients over a convolution's (pooled) dots:
//! maps of positions × channels with thousands of rows per batch, which
//! single-threaded passes left one core of two idle for a good part of
//! each step.
//!
//! Every pass is split by image and every reduction adds the images' parts
//! in image order, so results never depend on the thread count. The
//! statistics sum the integer dots and their squares in f64, exactly while
//! the sums stay below 2⁵³ (`cnn-small`'s u8 layer reaches about 10¹¹:
//! 2295² per value, 19 600 positions per batch), so the variance comes from
//! one pass (E\[a²\] − μ²) without the cancellation that would cost in f32.
//! The backward pass recomputes x̂ and z from the dots rather than
//! keeping two more maps per layer alive across the step: the same
//! expressions give the same bits, and memory traffic is what these passes
//! spend their time on.

use bnn_core::bits::words_for;
use ndarray::Array2;
use rayon::prelude::*;

use crate::step::bn_grad_means;

/// A batch's statistics of one map, per channel.
pub struct MapNorm {
    /// Batch mean of each channel.
    pub mean: Vec<f32>,
    /// Biased batch variance of each channel.
    pub var: Vec<f32>,
    /// `1/√(var + ε)` of each channel, for the forward and backward pass.
    pub inv_std: Vec<f32>,
}

/// The batch mean and variance of each column of `p` (`images` images of
/// equal row counts), with `1/√(σ² + ε)`.
pub fn stats(p: &Array2<f32>, images: usize, eps: f32) -> MapNorm {
    let c = p.ncols();
    let rows = p.nrows();
    let parts: Vec<(Vec<f64>, Vec<f64>)> = p
        .as_slice()
        .expect("standard layout")
        .par_chunks(rows / images.max(1) * c)
        .map(|img| {
            let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
            for row in img.chunks_exact(c) {
                for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(row) {
                    let v = f64::from(v);
                    *s += v;
                    *q += v * v;
                }
            }
            (sum, sq)
        })
        .collect();
    let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
    for (s, q) in &parts {
        sum.iter_mut().zip(s).for_each(|(a, b)| *a += b);
        sq.iter_mut().zip(q).for_each(|(a, b)| *a += b);
    }
    let n = rows as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let var: Vec<f32> = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| (q / n - m * m).max(0.0) as f32)
        .collect();
    let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    MapNorm {
        mean: mean.iter().map(|&m| m as f32).collect(),
        var,
        inv_std,
    }
}

/// `x̂ = (v − μ)·(1/√(σ² + ε))` and `z = γ·x̂ + β`: the one expression
/// every pass uses, so the backward pass recomputes the forward bits.
#[inline(always)]
fn normalize(v: f32, mean: f32, inv_std: f32, gamma: f32, beta: f32) -> (f32, f32) {
    let xhat = (v - mean) * inv_std;
    (xhat, gamma * xhat + beta)
}

impl MapNorm {
    /// The signs of the batch-normed map (`z ≥ 0` → +1), the same signs
    /// packed per image as one stream of positions × channels bits (the
    /// next layer's bit im2col input, and a flattened image's dense input),
    /// and Σz² (for the dynamic clip).
    pub fn activate(
        &self,
        p: &Array2<f32>,
        images: usize,
        gamma: &[f32],
        beta: &[f32],
    ) -> (Array2<f32>, Vec<u64>, f64) {
        let c = p.ncols();
        let per_image = (p.len() / images.max(1)).max(1);
        let wpi = words_for(per_image);
        let mut h = Array2::<f32>::zeros(p.dim());
        let mut bits = vec![0u64; images * wpi];
        let sums: Vec<f64> = p
            .as_slice()
            .expect("standard layout")
            .par_chunks(per_image)
            .zip(
                h.as_slice_mut()
                    .expect("standard layout")
                    .par_chunks_mut(per_image),
            )
            .zip(bits.par_chunks_mut(wpi.max(1)))
            .map(|((p, h), bits)| {
                // Per channel, so that the sums vectorize.
                let mut sq = vec![0f64; c];
                for (r, (pr, hr)) in p.chunks_exact(c).zip(h.chunks_exact_mut(c)).enumerate() {
                    for (j, ((((&v, h), sq), (&m, &s)), (&g, &b))) in pr
                        .iter()
                        .zip(hr.iter_mut())
                        .zip(sq.iter_mut())
                        .zip(self.mean.iter().zip(&self.inv_std))
                        .zip(gamma.iter().zip(beta))
                        .enumerate()
                    {
                        let (_, z) = normalize(v, m, s, g, b);
                        *sq += f64::from(z) * f64::from(z);
                        let fires = z >= 0.0;
                        *h = if fires { 1.0 } else { -1.0 };
                        let k = r * c + j;
                        bits[k / 64] |= u64::from(fires) << (k % 64);
                    }
                }
                sq.iter().sum::<f64>()
            })
            .collect();
        (h, bits, sums.iter().sum())
    }

    /// From `g`, the gradient of the signs, the gradient of the dots in
    /// place (the straight-through estimator passes it where |z| ≤ clip,
    /// then batch norm's backward pass), and the gradients of γ and β.
    pub fn backward(
        &self,
        g: &mut Array2<f32>,
        p: &Array2<f32>,
        images: usize,
        gamma: &[f32],
        beta: &[f32],
        clip: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let c = p.ncols();
        let per_image = (p.len() / images.max(1)).max(1);
        let p = p.as_slice().expect("standard layout");
        let g = g.as_slice_mut().expect("standard layout");
        let params = || {
            self.mean
                .iter()
                .zip(&self.inv_std)
                .zip(gamma.iter().zip(beta))
        };
        let parts: Vec<(Vec<f32>, Vec<f32>)> = g
            .par_chunks_mut(per_image)
            .zip(p.par_chunks(per_image))
            .map(|(g, p)| {
                let (mut dgamma, mut dbeta) = (vec![0f32; c], vec![0f32; c]);
                for (gr, pr) in g.chunks_exact_mut(c).zip(p.chunks_exact(c)) {
                    for ((((g, &v), ((&m, &s), (&ga, &be))), dg), db) in gr
                        .iter_mut()
                        .zip(pr)
                        .zip(params())
                        .zip(dgamma.iter_mut())
                        .zip(dbeta.iter_mut())
                    {
                        let (xhat, z) = normalize(v, m, s, ga, be);
                        // A mask rather than a branch: which values the
                        // clip stops is data, and unpredictable.
                        let keep = if z.abs() > clip { 0 } else { u32::MAX };
                        *g = f32::from_bits(g.to_bits() & keep);
                        *db += *g;
                        *dg += *g * xhat;
                    }
                }
                (dgamma, dbeta)
            })
            .collect();
        let (mut dgamma, mut dbeta) = (vec![0f32; c], vec![0f32; c]);
        for (dg, db) in &parts {
            dgamma.iter_mut().zip(dg).for_each(|(a, b)| *a += b);
            dbeta.iter_mut().zip(db).for_each(|(a, b)| *a += b);
        }
        let rows = (p.len() / c.max(1)) as f32;
        let (mean_d, mean_dx) = bn_grad_means(&dbeta, &dgamma, gamma, rows);
        g.par_chunks_mut(per_image)
            .zip(p.par_chunks(per_image))
            .for_each(|(g, p)| {
                for (gr, pr) in g.chunks_exact_mut(c).zip(p.chunks_exact(c)) {
                    for (((g, &v), ((&m, &s), (&ga, &be))), (&md, &mdx)) in gr
                        .iter_mut()
                        .zip(pr)
                        .zip(params())
                        .zip(mean_d.iter().zip(&mean_dx))
                    {
                        let (xhat, _) = normalize(v, m, s, ga, be);
                        *g = s * (*g * ga - md - xhat * mdx);
                    }
                }
            });
        (dgamma, dbeta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::sign;
    use crate::step::{bn_backward, bn_forward};

    /// Integer dots of 3 images, 6 positions each, 5 channels.
    fn dots() -> Array2<f32> {
        Array2::from_shape_fn((18, 5), |(i, j)| {
            (((i * 7 + j * 11) % 23) as f32 - 11.0) * (j + 1) as f32
        })
    }

    /// The statistics, signs and gradients are batch norm's, as the dense
    /// layers compute it, to rounding; the packed bits are the signs.
    #[test]
    fn matches_the_dense_batch_norm() {
        let p = dots();
        let gamma = [0.8f32, -1.3, 1.1, 0.5, -0.2];
        let beta = [0.1f32, -0.4, 0.0, 0.3, 0.05];
        let norm = stats(&p, 3, 1e-5);
        let (z, cache, mean, var) = bn_forward(&p, &gamma, &beta, 1e-5);
        for j in 0..5 {
            assert!((norm.mean[j] - mean[j]).abs() <= 1e-5 * mean[j].abs().max(1.0));
            assert!((norm.var[j] - var[j]).abs() <= 1e-5 * var[j]);
        }
        let (h, bits, sq) = norm.activate(&p, 3, &gamma, &beta);
        let want_sq: f64 = z.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        assert!((sq - want_sq).abs() < 1e-4 * want_sq, "{sq} vs {want_sq}");
        // Values near zero could round across it: the dots keep clear.
        assert_eq!(h, z.mapv(sign));
        let per_image = 6 * 5;
        let wpi = words_for(per_image);
        for (k, &v) in h.iter().enumerate() {
            let (img, i) = (k / per_image, k % per_image);
            let bit = bits[img * wpi + i / 64] >> (i % 64) & 1;
            assert_eq!(bit == 1, v > 0.0, "bit {k}");
        }
        // With a clip that passes everything, the gradient is batch norm's.
        let r = Array2::from_shape_fn((18, 5), |(i, j)| ((i * 5 + j) as f32 * 0.37).sin());
        let mut g = r.clone();
        let (dgamma, dbeta) = norm.backward(&mut g, &p, 3, &gamma, &beta, f32::INFINITY);
        let (ga, dg, db) = bn_backward(&r, &cache, &gamma);
        assert_eq!(g.dim(), ga.dim());
        for (a, b) in g.iter().zip(&ga) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        for j in 0..5 {
            assert!((dgamma[j] - dg[j]).abs() < 1e-4);
            assert!((dbeta[j] - db[j]).abs() < 1e-4);
        }
        // A clip of zero stops every gradient that reaches a nonzero z.
        let mut g = r.clone();
        let (dgamma, dbeta) = norm.backward(&mut g, &p, 3, &gamma, &beta, 0.0);
        assert!(dgamma.iter().chain(&dbeta).all(|&v| v == 0.0));
        assert!(g.iter().all(|&v| v == 0.0));
    }

    /// Statistics and activations are the same bits whether the images
    /// run on one thread or several.
    #[test]
    fn thread_count_changes_nothing() {
        let p = Array2::from_shape_fn((40 * 9, 7), |(i, j)| ((i * 13 + j * 29) % 41) as f32 - 20.0);
        let gamma = [1.0f32, 0.7, -0.9, 1.2, 0.3, -1.5, 0.8];
        let beta = [0.0f32, 0.2, -0.1, 0.4, -0.3, 0.1, 0.0];
        let run = || {
            let norm = stats(&p, 40, 1e-5);
            let (h, bits, sq) = norm.activate(&p, 40, &gamma, &beta);
            let mut g = Array2::from_shape_fn(p.dim(), |(i, j)| ((i + 3 * j) as f32 * 0.11).cos());
            let grads = norm.backward(&mut g, &p, 40, &gamma, &beta, 1.0);
            (norm.mean, norm.var, h, bits, sq.to_bits(), g, grads)
        };
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let three = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        assert_eq!(one.install(run), three.install(run));
    }
}
