//! Forward passes for evaluation.
//!
//! [`predict_exported`] is the trainer's binarized forward pass: integer dot
//! products through the exported thresholds, the same arithmetic the engine
//! runs, so that its accuracy is the shipped model's. [`predict_float`] is
//! the unfolded network (batch norm in floating point, running statistics)
//! that the folding must agree with; [`recompute_bn`] sets those statistics
//! from the whole training split.

use bnn_core::bits::{pack_pixels, words_for};
use bnn_core::{BinaryDense, Threshold, Transform};
use ndarray::Array2;
use rayon::prelude::*;

use crate::config::{Input, ModelKind, Rule, INPUT_THRESHOLD};
use crate::error::Result;
use crate::export::{fold_hidden, output_bias, Folded, PixelLayer};
use crate::linalg::a_bt;
use crate::net::Network;
use crate::step::{input_matrix, packed_dots, packed_layer};

/// Images per parallel task (fixed, so results never depend on threads).
const CHUNK: usize = 256;

/// Fraction of predictions equal to the labels.
pub fn accuracy(predictions: &[usize], labels: &[u16]) -> f64 {
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(&p, &l)| p == usize::from(l))
        .count();
    hits as f64 / labels.len().max(1) as f64
}

fn pack_images(pixels: &[u8], inputs: usize) -> Vec<u64> {
    let wpr = words_for(inputs);
    let mut words = vec![0u64; pixels.len() / inputs * wpr];
    for (img, out) in pixels.chunks_exact(inputs).zip(words.chunks_exact_mut(wpr)) {
        pack_pixels(img, INPUT_THRESHOLD, out);
    }
    words
}

/// Exact dot products of u8 pixels with ±1 weights (`signs`: outputs ×
/// inputs), row-major per image. One sgemm: every product is an integer and
/// every partial sum stays below 2²⁴, so f32 holds each sum exactly in any
/// order of addition.
pub fn pixel_dots(signs: &Array2<f32>, pixels: &[u8]) -> Vec<i32> {
    let x = input_matrix(ModelKind::Binary, Input::U8, pixels, signs.ncols());
    a_bt(x.view(), signs.view())
        .iter()
        .map(|&v| v as i32)
        .collect()
}

/// Bits from dot products (`rows` × `thresholds.len()`) and thresholds.
fn fire(thresholds: &[Threshold], dots: &[i32], rows: usize) -> Vec<u64> {
    let n = thresholds.len();
    let wpr = words_for(n);
    let mut bits = vec![0u64; rows * wpr];
    for (d, out) in dots.chunks_exact(n).zip(bits.chunks_exact_mut(wpr)) {
        for (j, (&dot, t)) in d.iter().zip(thresholds).enumerate() {
            out[j / 64] |= u64::from(t.fires(dot)) << (j % 64);
        }
    }
    bits
}

fn sign_thresholds(transform: &Transform) -> &[Threshold] {
    let Transform::Sign(thresholds) = transform else {
        unreachable!("hidden layers have thresholds")
    };
    thresholds
}

/// The packed bits leaving the folded hidden layers (`first`, then
/// `hidden`) for a chunk of images; the packed pixels when there are none.
fn hidden_bits(
    first: Option<&PixelLayer>,
    hidden: &[BinaryDense],
    kernel: bnn_core::Kernel,
    chunk: &[u8],
    inputs: usize,
) -> Vec<u64> {
    let rows = chunk.len() / inputs;
    let mut x = match first {
        Some(p) => fire(
            sign_thresholds(&p.transform),
            &pixel_dots(&p.signs, chunk),
            rows,
        ),
        None => pack_images(chunk, inputs),
    };
    for layer in hidden {
        let mut dots = vec![0i32; rows * layer.outputs()];
        layer.dots(kernel, &x, rows, &mut dots);
        x = fire(sign_thresholds(layer.transform()), &dots, rows);
    }
    x
}

/// Classes by integer dots and the exported thresholds and biases.
pub fn predict_exported(folded: &Folded, pixels: &[u8]) -> Vec<usize> {
    let kernel = bnn_core::kernel::active();
    let rule = folded.rule;
    let inputs = folded.input_len();
    pixels
        .par_chunks(CHUNK * inputs)
        .flat_map_iter(|chunk| {
            let rows = chunk.len() / inputs;
            let (dots, bias) = match folded.layers.split_last() {
                Some((out, hidden)) => {
                    let x = hidden_bits(folded.first.as_ref(), hidden, kernel, chunk, inputs);
                    let mut dots = vec![0i32; rows * out.outputs()];
                    out.dots(kernel, &x, rows, &mut dots);
                    (dots, out.transform())
                }
                None => {
                    let first = folded.first.as_ref().expect("a folded model has layers");
                    (pixel_dots(&first.signs, chunk), &first.transform)
                }
            };
            let Transform::Scores(bias) = bias else {
                unreachable!("the last layer emits scores")
            };
            dots.chunks_exact(bias.len())
                .map(|d| {
                    let scores: Vec<f32> =
                        d.iter().zip(bias).map(|(&d, &b)| d as f32 + b).collect();
                    rule.decide(&scores)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The binary network evaluated without folding: hidden pre-activations
/// `γ·(dot − μ)/√(σ² + ε) + β` (or `dot + b`) in f64 and their signs, then
/// scores `dot + c/α`.
pub fn predict_float(net: &Network, rule: Rule, pixels: &[u8]) -> Result<Vec<usize>> {
    let kernel = bnn_core::kernel::active();
    let last = net.layers.len() - 1;
    let u8_input = net.input == Input::U8;
    let packed = (0..=last)
        .map(|l| packed_layer(net, l))
        .collect::<Result<Vec<_>>>()?;
    let first_signs = net.forward_weights(0);
    let bias = output_bias(net);
    let eps = f64::from(net.bn_eps);
    let chunks: Vec<Vec<usize>> = pixels
        .par_chunks(CHUNK * net.input_len())
        .map(|chunk| {
            let rows = chunk.len() / net.input_len();
            let dots_of = |l: usize, x: &[u64]| -> Array2<f32> {
                if l == 0 && u8_input {
                    let d = pixel_dots(&first_signs, chunk);
                    Array2::from_shape_vec((rows, net.layers[0].outputs), d)
                        .expect("shape")
                        .mapv(|v| v as f32)
                } else {
                    packed_dots(&packed[l], kernel, x, rows)
                }
            };
            let mut x = if u8_input {
                Vec::new()
            } else {
                pack_images(chunk, net.input_len())
            };
            for l in 0..last {
                let lr = net.layers[l];
                let dots = dots_of(l, &x);
                let wpr = words_for(lr.outputs);
                let mut bits = vec![0u64; rows * wpr];
                for (i, row) in dots.rows().into_iter().enumerate() {
                    for (j, &d) in row.iter().enumerate() {
                        let d = f64::from(d);
                        let z = match (lr.bn, lr.bias) {
                            (Some(bn), _) => {
                                let g = f64::from(net.data(bn.gamma)[j]);
                                let b = f64::from(net.data(bn.beta)[j]);
                                let m = f64::from(net.data(bn.mean)[j]);
                                let v = f64::from(net.data(bn.var)[j]);
                                g * (d - m) / (v + eps).sqrt() + b
                            }
                            (None, Some(b)) => d + f64::from(net.data(b)[j]),
                            (None, None) => d,
                        };
                        bits[i * wpr + j / 64] |= u64::from(z >= 0.0) << (j % 64);
                    }
                }
                x = bits;
            }
            let dots = dots_of(last, &x);
            dots.rows()
                .into_iter()
                .map(|row| {
                    let scores: Vec<f32> = row
                        .iter()
                        .zip(&bias)
                        .map(|(&d, &b)| (f64::from(d) + f64::from(b)) as f32)
                        .collect();
                    rule.to_core().decide(&scores)
                })
                .collect()
        })
        .collect();
    Ok(chunks.concat())
}

/// Sets every batch norm's statistics to the exact mean and variance of its
/// dot products over `pixels`, layer by layer (each layer sees the previous
/// layers' outputs under their new statistics). Integer sums make the
/// result independent of how the work is split.
pub fn recompute_bn(net: &mut Network, pixels: &[u8]) -> Result<()> {
    let kernel = bnn_core::kernel::active();
    let images = (pixels.len() / net.input_len()) as f64;
    for l in 0..net.layers.len() - 1 {
        let Some(bn) = net.layers[l].bn else {
            continue;
        };
        let (first, before) = fold_hidden(net, l)?;
        let pixel_signs = (l == 0 && net.input == Input::U8).then(|| net.forward_weights(0));
        let this = packed_layer(net, l)?;
        let n = this.outputs();
        let (sum, sq) = pixels
            .par_chunks(CHUNK * net.input_len())
            .map(|chunk| {
                let rows = chunk.len() / net.input_len();
                let dots = match &pixel_signs {
                    Some(signs) => pixel_dots(signs, chunk),
                    None => {
                        let x =
                            hidden_bits(first.as_ref(), &before, kernel, chunk, net.input_len());
                        let mut dots = vec![0i32; rows * n];
                        this.dots(kernel, &x, rows, &mut dots);
                        dots
                    }
                };
                let mut sum = vec![0i64; n];
                let mut sq = vec![0i64; n];
                for d in dots.chunks_exact(n) {
                    for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(d) {
                        *s += i64::from(v);
                        *q += i64::from(v) * i64::from(v);
                    }
                }
                (sum, sq)
            })
            .reduce(
                || (vec![0i64; n], vec![0i64; n]),
                |(mut a, mut b), (c, d)| {
                    a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
                    b.iter_mut().zip(d).for_each(|(b, d)| *b += d);
                    (a, b)
                },
            );
        let mean: Vec<f64> = sum.iter().map(|&s| s as f64 / images).collect();
        let var: Vec<f32> = sq
            .iter()
            .zip(&mean)
            .map(|(&q, &m)| (q as f64 / images - m * m).max(0.0) as f32)
            .collect();
        net.tensors[bn.mean].data = mean.iter().map(|&m| m as f32).collect();
        net.tensors[bn.var].data = var;
    }
    Ok(())
}

/// Scores of the FP32 network (`x·Wᵀ + b`, ReLU between layers).
pub fn fp32_scores(net: &Network, pixels: &[u8]) -> Array2<f32> {
    debug_assert_eq!(net.kind, ModelKind::Fp32);
    let weights: Vec<Array2<f32>> = (0..net.layers.len())
        .map(|l| net.forward_weights(l))
        .collect();
    let alpha = net.alpha();
    let parts: Vec<Array2<f32>> = pixels
        .par_chunks(CHUNK * net.input_len())
        .map(|chunk| {
            let mut x = input_matrix(ModelKind::Fp32, net.input, chunk, net.input_len());
            for (l, w) in weights.iter().enumerate() {
                let mut z = a_bt(x.view(), w.view());
                if l + 1 == weights.len() {
                    z.mapv_inplace(|v| alpha * v);
                }
                let b = net.data(net.layers[l].bias.expect("fp32 layers have biases"));
                for mut r in z.rows_mut() {
                    r.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
                }
                if l + 1 < weights.len() {
                    z.mapv_inplace(|v| v.max(0.0));
                }
                x = z;
            }
            x
        })
        .collect();
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(0), &views).expect("same widths")
}

/// Classes of the FP32 network (argmax, first maximum wins).
pub fn predict_fp32(net: &Network, pixels: &[u8]) -> Vec<usize> {
    fp32_scores(net, pixels)
        .rows()
        .into_iter()
        .map(|r| bnn_core::DecisionRule::Scores.decide(r.as_slice().expect("standard layout")))
        .collect()
}
