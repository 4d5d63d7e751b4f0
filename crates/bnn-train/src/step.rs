//! One training step's forward and backward pass.
//!
//! Binary layers whose inputs are exactly ±1 compute their dot products with
//! bnn-core's XNOR-popcount (exact integers); the backward pass runs on
//! ndarray. Hidden signs pass gradient where |pre-activation| ≤ clip (the
//! straight-through estimator); batch norm uses batch statistics here.
//!
//! Without batch norm, an image whose output gradient is zero has zero
//! gradient everywhere (every later factor is a product with it), so the
//! backward pass drops such rows: exact, and for the seed's sign-MSE loss
//! most images of a trained network.

use bnn_core::bits::{pack_pixels, pack_signs, words_for};
use bnn_core::{BinaryDense, BitMatrix, Kernel};
use ndarray::{Array2, Axis, Zip};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Input, Loss, ModelKind, Rule, TrainConfig, INPUT_THRESHOLD};
use crate::error::Result;
use crate::linalg::{a_b, a_bt, at_b, column_sums};
use crate::loss::loss_and_grad;
use crate::net::{sign, Network};

/// What one step produced.
pub struct StepOutput {
    /// Summed per-image loss.
    pub loss: f64,
    /// Images of the batch the forward pass classified correctly.
    pub correct: usize,
    /// Gradients, one per tensor; empty means zero (and is always so for
    /// tensors that are not trained).
    pub grads: Vec<Vec<f32>>,
    /// Per hidden layer with batch norm, the batch mean and variance of its
    /// dot products (for running statistics).
    pub batch_stats: Vec<Option<(Vec<f32>, Vec<f32>)>>,
    /// Per STE site (hidden layers, then the output under sign-MSE), the sum
    /// of squared pre-activations and their count, for the dynamic clip.
    pub preact: Vec<(f64, u64)>,
}

/// The number of STE sites of a configuration: one per binary hidden layer,
/// plus the output sign under sign-MSE.
pub fn ste_sites(config: &TrainConfig) -> usize {
    match config.kind {
        ModelKind::Fp32 => 0,
        ModelKind::Binary => {
            config.convs().len() + config.shape().len() - 2
                + usize::from(config.loss == Loss::SignMse)
        }
    }
}

/// ±1 input values (pixel ≥ threshold → +1), the raw pixel values (u8
/// input), or the seed's normalization (in f64, rounded once, as the FP32
/// engine computes it), `inputs` values an image.
pub fn input_matrix(kind: ModelKind, input: Input, pixels: &[u8], inputs: usize) -> Array2<f32> {
    let rows = pixels.len() / inputs;
    let values: Vec<f32> = match (kind, input) {
        (ModelKind::Binary, Input::Binary) => pixels
            .iter()
            .map(|&p| if p >= INPUT_THRESHOLD { 1.0 } else { -1.0 })
            .collect(),
        (ModelKind::Binary, Input::U8) => pixels.iter().map(|&p| f32::from(p)).collect(),
        (ModelKind::Fp32, _) => pixels
            .iter()
            .map(|&p| ((f64::from(p) / 255.0 - 0.5) / 0.5) as f32)
            .collect(),
    };
    Array2::from_shape_vec((rows, inputs), values).expect("shape")
}

/// Exact integer dot products of packed ±1 rows with a layer's signed
/// weights, as f32.
pub fn packed_dots(layer: &BinaryDense, kernel: Kernel, words: &[u64], rows: usize) -> Array2<f32> {
    let mut dots = vec![0i32; rows * layer.outputs()];
    layer.dots(kernel, words, rows, &mut dots);
    Array2::from_shape_vec(
        (rows, layer.outputs()),
        dots.into_iter().map(|d| d as f32).collect(),
    )
    .expect("shape")
}

/// The signs of a layer's latent weights as a bnn-core layer (for its dot
/// products only, so the transform is a placeholder).
pub fn packed_layer(net: &Network, l: usize) -> Result<BinaryDense> {
    let layer = net.layers[l];
    let bits = BitMatrix::from_signs(layer.outputs, layer.inputs, net.data(layer.w))?;
    Ok(BinaryDense::output(bits, vec![0.0; layer.outputs])?)
}

pub(crate) struct BnCache {
    xhat: Array2<f32>,
    inv_std: Vec<f32>,
}

struct HiddenCache {
    x: Array2<f32>,
    z: Array2<f32>,
    bn: Option<BnCache>,
    /// Inverted-dropout multipliers (0 or 1/(1−p)).
    drop: Option<Array2<f32>>,
}

/// Forward and backward over one batch.
pub fn step(
    net: &Network,
    config: &TrainConfig,
    clips: &[f32],
    pixels: &[u8],
    labels: &[u16],
    rng: &mut ChaCha8Rng,
) -> Result<StepOutput> {
    if !net.convs.is_empty() {
        return crate::cnn::step(net, config, clips, pixels, labels, rng);
    }
    let rows = labels.len();
    let binary = net.kind == ModelKind::Binary;
    let inputs = net.input_len();
    let x = input_matrix(net.kind, net.input, pixels, inputs);
    // u8 pixels are not ±1, so the first layer multiplies floats (exactly:
    // see `Input::U8`); the layers after it see ±1 bits again.
    let words: Option<Vec<u64>> = (binary && net.input == Input::Binary).then(|| {
        let wpr = words_for(inputs);
        let mut w = vec![0u64; rows * wpr];
        for (img, out) in pixels.chunks_exact(inputs).zip(w.chunks_exact_mut(wpr)) {
            pack_pixels(img, INPUT_THRESHOLD, out);
        }
        w
    });
    Ok(dense_pass(net, config, clips, x, words, labels, rng, false)?.0)
}

/// Packs the signs of ±1 rows (`v ≥ 0` → bit 1).
pub fn pack_rows(x: &Array2<f32>) -> Vec<u64> {
    let wpr = words_for(x.ncols());
    let mut w = vec![0u64; x.nrows() * wpr];
    for (row, out) in x.rows().into_iter().zip(w.chunks_exact_mut(wpr)) {
        pack_signs(row.as_slice().expect("standard layout"), out);
    }
    w
}

/// The dense layers' forward and backward pass from their input `x` (and
/// its packed bits `words`, when it is ±1), with `clips` the dense layers'
/// STE clips. With `input_grad`, also the gradient with respect to `x`
/// (for layers before the dense ones); images are then never dropped.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dense_pass(
    net: &Network,
    config: &TrainConfig,
    clips: &[f32],
    mut x: Array2<f32>,
    mut words: Option<Vec<u64>>,
    labels: &[u16],
    rng: &mut ChaCha8Rng,
    input_grad: bool,
) -> Result<(StepOutput, Option<Array2<f32>>)> {
    let rows = labels.len();
    let kernel = bnn_core::kernel::active();
    let binary = net.kind == ModelKind::Binary;
    let last = net.layers.len() - 1;
    let sites = if binary {
        last + usize::from(config.loss == Loss::SignMse)
    } else {
        0
    };
    let mut preact = vec![(0f64, 0u64); sites];
    let HiddenPass {
        mut caches,
        batch_stats,
    } = hidden_forward(net, config, kernel, &mut x, &mut words, rng, &mut preact)?;

    // Output layer: s = α·dot + c.
    let out = net.layers[last];
    let mut a = layer_dots(net, kernel, last, &x, words.as_deref(), rows)?;
    let alpha = net.alpha();
    let mut s = a.mapv(|v| alpha * v);
    add_row(
        &mut s,
        net.data(out.bias.expect("the output layer has a bias")),
    );
    let rule = if binary { config.rule } else { Rule::Scores };
    let correct = count_correct(&s, labels, rule);
    let (loss, mut ds) = loss_and_grad(config.loss, &s, labels);
    if binary && config.loss == Loss::SignMse {
        output_ste(&mut ds, &s, clips[last], &mut preact[last]);
    }

    // Filled in below; a gradient left empty is zero (images with no
    // gradient at all leave every tensor's empty).
    let mut grads: Vec<Vec<f32>> = vec![Vec::new(); net.tensors.len()];

    // Drop images with no gradient when rows do not interact (no batch norm).
    if !input_grad && net.layers.iter().all(|l| l.bn.is_none()) {
        let active = active_rows(&ds);
        if active.is_empty() {
            let out = StepOutput {
                loss,
                correct,
                grads,
                batch_stats,
                preact,
            };
            return Ok((out, None));
        }
        if active.len() < rows {
            ds = ds.select(Axis(0), &active);
            a = a.select(Axis(0), &active);
            x = x.select(Axis(0), &active);
            for c in &mut caches {
                c.x = c.x.select(Axis(0), &active);
                c.z = c.z.select(Axis(0), &active);
                if let Some(d) = &mut c.drop {
                    *d = d.select(Axis(0), &active);
                }
            }
        }
    }

    grads[out.bias.expect("output bias")] = column_sums(ds.view());
    if net.tensors[net.scale].role.trainable() && config.learn_output_scale {
        let dalpha: f64 = Zip::from(&ds)
            .and(&a)
            .fold(0f64, |acc, &g, &v| acc + f64::from(g) * f64::from(v));
        grads[net.scale] = vec![(dalpha * f64::from(alpha)) as f32];
    }
    let g = ds.mapv(|v| alpha * v);
    grads[out.w] = at_b(g.view(), x.view()).into_raw_vec_and_offset().0;
    let g = hidden_backward(net, clips, &caches, g, &mut grads);
    let gx = input_grad.then(|| a_b(g.view(), net.forward_weights(0).view()));
    let out = StepOutput {
        loss,
        correct,
        grads,
        batch_stats,
        preact,
    };
    Ok((out, gx))
}

/// Layer `l`'s dot products with its input `x` (`rows` images): exact
/// XNOR-popcount over the packed bits `words` when a binary model's input
/// is ±1, float products otherwise.
fn layer_dots(
    net: &Network,
    kernel: Kernel,
    l: usize,
    x: &Array2<f32>,
    words: Option<&[u64]>,
    rows: usize,
) -> Result<Array2<f32>> {
    Ok(match (net.kind == ModelKind::Binary, words) {
        (true, Some(w)) => packed_dots(&packed_layer(net, l)?, kernel, w, rows),
        _ => a_bt(x.view(), net.forward_weights(l).view()),
    })
}

/// What the hidden layers' forward pass keeps for the backward pass.
struct HiddenPass {
    caches: Vec<HiddenCache>,
    /// Per hidden layer, its batch statistics when it has batch norm.
    batch_stats: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

/// The hidden layers' forward pass: replaces `x` (and `words`) by the last
/// hidden layer's output, adding each layer's pre-activations to its STE
/// site in `preact` (binary models). Dropout masks are drawn from `rng`, in
/// layer order.
fn hidden_forward(
    net: &Network,
    config: &TrainConfig,
    kernel: Kernel,
    x: &mut Array2<f32>,
    words: &mut Option<Vec<u64>>,
    rng: &mut ChaCha8Rng,
    preact: &mut [(f64, u64)],
) -> Result<HiddenPass> {
    let rows = x.nrows();
    let binary = net.kind == ModelKind::Binary;
    let last = net.layers.len() - 1;
    let mut caches = Vec::with_capacity(last);
    let mut batch_stats = Vec::with_capacity(last);
    // `l` indexes layers, STE sites and caches alike.
    #[allow(clippy::needless_range_loop)]
    for l in 0..last {
        let layer = net.layers[l];
        let a = layer_dots(net, kernel, l, x, words.as_deref(), rows)?;
        let (z, bn) = match layer.bn {
            Some(bn) => {
                let (z, cache, mean, var) =
                    bn_forward(&a, net.data(bn.gamma), net.data(bn.beta), net.bn_eps);
                batch_stats.push(Some((mean, var)));
                (z, Some(cache))
            }
            None => {
                let mut z = a;
                if let Some(b) = layer.bias {
                    add_row(&mut z, net.data(b));
                }
                batch_stats.push(None);
                (z, None)
            }
        };
        let mut h = if binary {
            let site = &mut preact[l];
            site.0 += z.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            site.1 += z.len() as u64;
            z.mapv(sign)
        } else {
            z.mapv(|v| v.max(0.0))
        };
        let drop = (config.dropout > 0.0).then(|| {
            let keep = 1.0 - config.dropout;
            let mask = Array2::from_shape_simple_fn(h.dim(), || {
                if rng.gen::<f32>() < keep {
                    1.0 / keep
                } else {
                    0.0
                }
            });
            h *= &mask;
            mask
        });
        *words = (binary && drop.is_none()).then(|| pack_rows(&z));
        caches.push(HiddenCache {
            x: std::mem::replace(x, h),
            z,
            bn,
            drop,
        });
    }
    Ok(HiddenPass {
        caches,
        batch_stats,
    })
}

/// How many images the scores `s` classify as their `labels` say, under
/// `rule`.
fn count_correct(s: &Array2<f32>, labels: &[u16], rule: Rule) -> usize {
    s.rows()
        .into_iter()
        .zip(labels)
        .filter(|(row, &y)| {
            let scores = row.as_slice().expect("standard layout");
            rule.to_core().decide(scores) == usize::from(y)
        })
        .count()
}

/// The output sign's STE under sign-MSE: the gradient `ds` passes only where
/// the score is within `clip`; the scores' squares go to the output's site.
fn output_ste(ds: &mut Array2<f32>, s: &Array2<f32>, clip: f32, site: &mut (f64, u64)) {
    site.0 += s.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
    site.1 += s.len() as u64;
    Zip::from(ds).and(s).for_each(|g, &v| {
        if v.abs() > clip {
            *g = 0.0;
        }
    });
}

/// The images whose output gradient is not all zero.
fn active_rows(ds: &Array2<f32>) -> Vec<usize> {
    ds.rows()
        .into_iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|&g| g != 0.0))
        .map(|(i, _)| i)
        .collect()
}

/// The hidden layers' backward pass, last layer first, from `g`, the
/// gradient with respect to the output layer's dot products (`α·ds`):
/// fills in each hidden layer's gradients and returns the gradient with
/// respect to the first layer's dot products.
fn hidden_backward(
    net: &Network,
    clips: &[f32],
    caches: &[HiddenCache],
    mut g: Array2<f32>,
    grads: &mut [Vec<f32>],
) -> Array2<f32> {
    let binary = net.kind == ModelKind::Binary;
    for l in (0..caches.len()).rev() {
        let layer = net.layers[l];
        // Gradient with respect to this layer's output h.
        let mut gh = a_b(g.view(), net.forward_weights(l + 1).view());
        let c = &caches[l];
        if let Some(d) = &c.drop {
            gh *= d;
        }
        if binary {
            let clip = clips[l];
            Zip::from(&mut gh).and(&c.z).for_each(|g, &z| {
                if z.abs() > clip {
                    *g = 0.0;
                }
            });
        } else {
            Zip::from(&mut gh).and(&c.z).for_each(|g, &z| {
                if z <= 0.0 {
                    *g = 0.0;
                }
            });
        }
        g = match (layer.bn, &c.bn) {
            (Some(bn), Some(cache)) => {
                let (ga, dgamma, dbeta) = bn_backward(&gh, cache, net.data(bn.gamma));
                grads[bn.gamma] = dgamma;
                grads[bn.beta] = dbeta;
                ga
            }
            _ => {
                if let Some(b) = layer.bias {
                    grads[b] = column_sums(gh.view());
                }
                gh
            }
        };
        grads[layer.w] = at_b(g.view(), c.x.view()).into_raw_vec_and_offset().0;
    }
    g
}

fn add_row(m: &mut Array2<f32>, row: &[f32]) {
    for mut r in m.rows_mut() {
        for (v, &b) in r.iter_mut().zip(row) {
            *v += b;
        }
    }
}

/// Batch norm with batch statistics: `z = γ·(a − μ)/√(σ² + ε) + β`.
pub(crate) fn bn_forward(
    a: &Array2<f32>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Array2<f32>, BnCache, Vec<f32>, Vec<f32>) {
    let rows = a.nrows() as f32;
    let mean: Vec<f32> = column_sums(a.view()).iter().map(|s| s / rows).collect();
    let mut var = vec![0f32; a.ncols()];
    for r in a.rows() {
        for ((v, &x), &m) in var.iter_mut().zip(r).zip(&mean) {
            *v += (x - m) * (x - m);
        }
    }
    var.iter_mut().for_each(|v| *v /= rows);
    let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let mut xhat = a.clone();
    for mut r in xhat.rows_mut() {
        for ((x, &m), &s) in r.iter_mut().zip(&mean).zip(&inv_std) {
            *x = (*x - m) * s;
        }
    }
    let mut z = xhat.clone();
    for mut r in z.rows_mut() {
        for ((x, &g), &b) in r.iter_mut().zip(gamma).zip(beta) {
            *x = g * *x + b;
        }
    }
    (z, BnCache { xhat, inv_std }, mean, var)
}

/// With `d = γ·∂L/∂z` over `rows` values per channel, `mean(d) = γ·Σg/B`
/// and `mean(d·x̂) = γ·Σ(g·x̂)/B` from `dbeta = Σg` and `dgamma = Σ(g·x̂)`:
/// the two per-channel terms of batch norm's input gradient.
pub(crate) fn bn_grad_means(
    dbeta: &[f32],
    dgamma: &[f32],
    gamma: &[f32],
    rows: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mean = |sums: &[f32]| sums.iter().zip(gamma).map(|(s, g)| g * s / rows).collect();
    (mean(dbeta), mean(dgamma))
}

/// Gradients of batch norm: with `d = ∂L/∂x̂ = γ·∂L/∂z`,
/// `∂L/∂a = (1/√(σ²+ε))·(d − mean(d) − x̂·mean(d·x̂))`.
pub(crate) fn bn_backward(
    gz: &Array2<f32>,
    c: &BnCache,
    gamma: &[f32],
) -> (Array2<f32>, Vec<f32>, Vec<f32>) {
    let rows = gz.nrows() as f32;
    let cols = gz.ncols();
    let dbeta = column_sums(gz.view());
    let mut dgamma = vec![0f32; cols];
    for (g, x) in gz.rows().into_iter().zip(c.xhat.rows()) {
        for ((d, &g), &x) in dgamma.iter_mut().zip(g).zip(x) {
            *d += g * x;
        }
    }
    let (mean_d, mean_dx) = bn_grad_means(&dbeta, &dgamma, gamma, rows);
    let mut ga = gz.clone();
    for (mut r, x) in ga.rows_mut().into_iter().zip(c.xhat.rows()) {
        for j in 0..cols {
            let d = r[j] * gamma[j];
            r[j] = c.inv_std[j] * (d - mean_d[j] - x[j] * mean_dx[j]);
        }
    }
    (ga, dgamma, dbeta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// For the FP32 network (a true gradient, unlike the STE), every
    /// gradient the backward pass returns matches a central finite
    /// difference of the mean loss, for a sample of each tensor's entries.
    #[test]
    fn fp32_gradients_match_finite_differences() {
        let mut config = crate::recipe("fp32").unwrap();
        config.hidden = vec![6, 5];
        config.output_scale = 0.7;
        config.learn_output_scale = true;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut net = Network::new(&config, &mut rng);
        for t in &mut net.tensors {
            if t.role == crate::net::Role::Bias {
                t.data
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b = 0.05 * (i as f32).sin());
            }
        }
        let data = crate::data::synthetic(4, 1, 9);
        let (split, _) = data.train_and_validation(1);
        let (pixels, labels) = (split.pixels, split.labels);
        let mut r = ChaCha8Rng::seed_from_u64(0);
        let out = step(&net, &config, &[], pixels, labels, &mut r).unwrap();
        let mean_loss = |net: &Network| {
            let mut r = ChaCha8Rng::seed_from_u64(0);
            step(net, &config, &[], pixels, labels, &mut r)
                .unwrap()
                .loss
                / labels.len() as f64
        };
        let mut checked = 0;
        for (ti, t) in net.tensors.iter().enumerate() {
            if !t.role.trainable() {
                continue;
            }
            let n = t.data.len();
            for k in [0, n / 3, n / 2, n - 1] {
                let h = 1e-2f32;
                let mut plus = net.clone();
                plus.tensors[ti].data[k] += h;
                let mut minus = net.clone();
                minus.tensors[ti].data[k] -= h;
                let fd = (mean_loss(&plus) - mean_loss(&minus)) / (2.0 * f64::from(h));
                let g = out.grads[ti].get(k).copied().unwrap_or(0.0);
                assert!(
                    (fd - f64::from(g)).abs() < 2e-3 + 0.02 * fd.abs(),
                    "{}[{k}]: backward {g}, finite difference {fd}",
                    t.name
                );
                checked += 1;
            }
        }
        assert!(checked >= 28, "{checked} entries checked");
    }

    /// The batch-norm backward pass matches finite differences of a random
    /// linear function of its output.
    #[test]
    fn bn_backward_matches_finite_differences() {
        let a = Array2::from_shape_fn((5, 3), |(i, j)| ((i * 3 + j) as f32 * 1.3).sin() * 4.0);
        let gamma = [0.7f32, -1.2, 1.5];
        let beta = [0.1f32, 0.0, -0.3];
        let w = Array2::from_shape_fn((5, 3), |(i, j)| ((i + 2 * j) as f32 * 0.9).cos());
        let f = |a: &Array2<f32>| -> f64 {
            let (z, ..) = bn_forward(a, &gamma, &beta, 1e-5);
            Zip::from(&z)
                .and(&w)
                .fold(0f64, |acc, &z, &w| acc + f64::from(z * w))
        };
        let (_, cache, ..) = bn_forward(&a, &gamma, &beta, 1e-5);
        let (ga, _, _) = bn_backward(&w, &cache, &gamma);
        for i in 0..5 {
            for j in 0..3 {
                let h = 1e-2f32;
                let mut p = a.clone();
                p[[i, j]] += h;
                let mut m = a.clone();
                m[[i, j]] -= h;
                let fd = ((f(&p) - f(&m)) / (2.0 * f64::from(h))) as f32;
                assert!(
                    (fd - ga[[i, j]]).abs() < 5e-3,
                    "[{i},{j}] {fd} vs {}",
                    ga[[i, j]]
                );
            }
        }
    }
}
