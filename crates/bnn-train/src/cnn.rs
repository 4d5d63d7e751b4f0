//! Convolutional models: the training step through the convolutions, and
//! their forward passes for evaluation.
//!
//! Each convolution is im2col + one sgemm, then the optional 2×2 max pool,
//! batch norm and sign (the straight-through estimator passes the gradient
//! where |batch-norm output| ≤ clip), as the engine contract orders them.
//! Padded positions are −1 in a layer whose input is ±1 (bits), and 0 in a
//! first layer on u8 pixels; the engine pads the same way, so its im2col
//! needs no correction term.
//!
//! Forward passes for evaluation use the same sgemm on ±1 or u8 values:
//! every product is an integer and every partial sum below 2²⁴ (a patch of
//! at most 15·15·4096 ±1 values, or 255·15·15 for u8 pixels), so f32 gives
//! the exact integer dot in any order of addition. Pooling the dots before
//! the threshold is what the engine's OR/AND pooling of threshold bits
//! computes, so the folded forward pass here predicts exactly what the
//! engine does.

use bnn_core::bits::{pack_signs, words_for};
use bnn_core::{
    BinaryDense, BitMatrix, Conv2d, InputEncoding, InputShape, Layer, Model, Padding, PixelDense,
    Threshold,
};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::config::{Input, Rule, TrainConfig, INPUT_THRESHOLD};
use crate::conv::{bit_im2col, col2im_into, im2col_into, max_pool_backward_into, max_pool_into};
use crate::error::Result;
use crate::export::{bn_thresholds, kept_output_bias, output_bias, thresholds};
use crate::linalg::a_bt;
use crate::mapnorm::{self, MapNorm};
use crate::net::Network;
use crate::scratch;
use crate::step::{dense_pass, StepOutput};

/// Images per parallel task of the evaluation passes (fixed, so results
/// never depend on threads).
const CHUNK: usize = 100;

/// The first layer's input as an (images·H·W) × C map, one row a position
/// as every map here: pixel values for u8 input, ±1 (pixel ≥ threshold)
/// for binary input. One column per channel: a single column would read a
/// colour image's 3 values a position as 3 positions.
pub fn input_map(input: Input, pixels: &[u8], channels: usize) -> Array2<f32> {
    let values = pixels
        .iter()
        .map(|&p| match input {
            Input::U8 => f32::from(p),
            Input::Binary => {
                if p >= INPUT_THRESHOLD {
                    1.0
                } else {
                    -1.0
                }
            }
        })
        .collect();
    Array2::from_shape_vec((pixels.len() / channels, channels), values).expect("shape")
}

/// What padded positions of convolution `c` contribute: 0 for u8 pixels,
/// −1 for bits.
pub fn pad_value(net: &Network, c: usize) -> f32 {
    if c == 0 && net.input == Input::U8 {
        0.0
    } else {
        -1.0
    }
}

/// Images per parallel task of a convolution: each task runs its own
/// im2col and sgemm calls, so the split, and with it every sum, is fixed
/// by the batch alone, never by the thread count.
const TASK: usize = 4;

/// One convolution's filters as the forward pass runs them.
pub struct Filters {
    /// Sign weights, out_c × patch.
    pub signs: Array2<f32>,
    /// The same signs packed, for XNOR-popcount dots on ±1 input (absent
    /// for a first layer on u8 pixels).
    pub packed: Option<BinaryDense>,
}

impl Filters {
    /// The filters of convolution `c` of `net`, as signs and packed.
    pub fn of(net: &Network, c: usize) -> Result<Self> {
        let signs = net.conv_weights(c);
        let packed = if c == 0 && net.input == Input::U8 {
            None
        } else {
            let (n, patch) = signs.dim();
            let bits = BitMatrix::from_signs(n, patch, signs.as_slice().expect("standard"))?;
            Some(BinaryDense::output(bits, vec![0.0; n])?)
        };
        Ok(Filters { signs, packed })
    }
}

/// Each image's ±1 map packed as one stream of positions × channels bits
/// (the layout [`bit_im2col`] reads).
fn pack_images(x: ArrayView2<'_, f32>, images: usize) -> Vec<u64> {
    let per_image = x.len() / images.max(1);
    let wpi = words_for(per_image);
    let mut bits = vec![0u64; images * wpi];
    bits.par_chunks_mut(wpi.max(1))
        .zip(
            x.as_slice()
                .expect("standard layout")
                .par_chunks(per_image.max(1)),
        )
        .for_each(|(out, img)| pack_signs(img, out));
    bits
}

/// The integer dots of convolution `c` on map `x` (positions × channels),
/// pooled when the layer pools (the maximum of each 2×2 window); with, per
/// task, the rows of the maxima (for the backward pass). A layer on ±1
/// input reads its packed form `bits` (packed here when absent).
fn conv_forward(
    net: &Network,
    c: usize,
    x: ArrayView2<'_, f32>,
    bits: Option<&[u64]>,
    filters: &Filters,
) -> (Array2<f32>, Vec<Vec<u32>>) {
    let s = net.convs[c].shape;
    let pad = pad_value(net, c);
    let kernel = bnn_core::kernel::active();
    let per_in = s.in_h * s.in_w;
    let images = x.nrows() / per_in;
    let (ph, pw) = s.pooled();
    let per_out = ph * pw * s.out_c;
    let packed;
    let bits = match (&filters.packed, bits) {
        (Some(_), None) => {
            packed = pack_images(x, images);
            &packed[..]
        }
        (_, bits) => bits.unwrap_or_default(),
    };
    let wpi = words_for(per_in * s.in_c);
    let rw = words_for(s.patch());
    let mut p = Array2::<f32>::zeros((images * ph * pw, s.out_c));
    let args = p
        .as_slice_mut()
        .expect("standard layout")
        .par_chunks_mut(TASK * per_out)
        .enumerate()
        .map(|(t, out)| {
            let (first, n) = (t * TASK, out.len() / per_out);
            let rows = n * s.out_h * s.out_w;
            // The pooled (or copied) dots of the task's images.
            let finish = |a: ArrayView2<'_, f32>, out: &mut [f32]| {
                if s.pool {
                    let mut arg = vec![0u32; out.len()];
                    max_pool_into(a, s.out_h, s.out_w, out, &mut arg);
                    arg
                } else {
                    out.copy_from_slice(a.as_slice().expect("standard layout"));
                    Vec::new()
                }
            };
            match &filters.packed {
                Some(layer) => {
                    let mut cols = vec![0u64; rows * rw];
                    bit_im2col(&bits[first * wpi..(first + n) * wpi], &s, &mut cols);
                    scratch::with_i32(0, rows * s.out_c, |dots| {
                        layer.dots(kernel, &cols, rows, dots);
                        scratch::with(0, rows * s.out_c, |a| {
                            a.iter_mut()
                                .zip(dots.iter())
                                .for_each(|(a, &d)| *a = d as f32);
                            finish(
                                ArrayView2::from_shape((rows, s.out_c), &*a).expect("shape"),
                                out,
                            )
                        })
                    })
                }
                None => {
                    let xs = x.slice(ndarray::s![first * per_in..(first + n) * per_in, ..]);
                    scratch::with(1, rows * s.patch(), |col| {
                        im2col_into(xs, &s, pad, col);
                        let col = ArrayView2::from_shape((rows, s.patch()), &*col).expect("shape");
                        scratch::with(0, rows * s.out_c, |a| {
                            let mut a =
                                ArrayViewMut2::from_shape((rows, s.out_c), a).expect("shape");
                            general_mat_mul(1.0, &col, &filters.signs.t(), 0.0, &mut a);
                            finish(a.view(), out)
                        })
                    })
                }
            }
        })
        .collect();
    (p, args)
}

/// The weight gradient of convolution `c` and, unless it is the first, the
/// gradient of its input map, from the gradient `gp` of its (pooled) dots.
/// The weight gradient sums the tasks' parts in task order.
fn conv_backward(
    net: &Network,
    c: usize,
    x: ArrayView2<'_, f32>,
    gp: ArrayView2<'_, f32>,
    args: &[Vec<u32>],
    signs: &Array2<f32>,
) -> (Vec<f32>, Option<Array2<f32>>) {
    let s = net.convs[c].shape;
    let pad = pad_value(net, c);
    let (ph, pw) = s.pooled();
    let task_in = TASK * s.in_h * s.in_w * s.in_c;
    let x = x.as_slice().expect("standard layout");
    let gp = gp.as_slice().expect("standard layout");
    let mut dx = (c > 0).then(|| Array2::<f32>::zeros((x.len() / s.in_c, s.in_c)));
    let dx_parts: Vec<&mut [f32]> = match &mut dx {
        Some(d) => d
            .as_slice_mut()
            .expect("standard layout")
            .chunks_mut(task_in)
            .collect(),
        None => args.iter().map(|_| <&mut [f32]>::default()).collect(),
    };
    let parts: Vec<Array2<f32>> = x
        .par_chunks(task_in)
        .zip(gp.par_chunks(TASK * ph * pw * s.out_c))
        .zip(args.par_iter())
        .zip(dx_parts.into_par_iter())
        .map(|(((xs, gs), arg), dxs)| {
            let xs = ArrayView2::from_shape((xs.len() / s.in_c, s.in_c), xs).expect("shape");
            let gs = ArrayView2::from_shape((gs.len() / s.out_c, s.out_c), gs).expect("shape");
            let rows = xs.nrows() / (s.in_h * s.in_w) * s.out_h * s.out_w;
            let unpooled = if s.pool { rows * s.out_c } else { 0 };
            scratch::with(0, unpooled, |ga| {
                let ga = if s.pool {
                    max_pool_backward_into(gs, arg, ga);
                    ArrayView2::from_shape((rows, s.out_c), &*ga).expect("shape")
                } else {
                    gs.view()
                };
                scratch::with(1, rows * s.patch(), |col| {
                    im2col_into(xs, &s, pad, col);
                    let col = ArrayView2::from_shape((rows, s.patch()), &*col).expect("shape");
                    if !dxs.is_empty() {
                        scratch::with(2, rows * s.patch(), |dcol| {
                            let mut dcol =
                                ArrayViewMut2::from_shape((rows, s.patch()), dcol).expect("shape");
                            general_mat_mul(1.0, &ga, signs, 0.0, &mut dcol);
                            col2im_into(dcol.view(), &s, dxs);
                        });
                    }
                    ga.t().dot(&col)
                })
            })
        })
        .collect();
    let mut dw = Array2::<f32>::zeros((s.out_c, s.patch()));
    for part in &parts {
        dw += part;
    }
    (dw.into_raw_vec_and_offset().0, dx)
}

struct ConvCache {
    /// The layer's input map.
    x: Array2<f32>,
    /// Its (pooled) dots, from which the backward pass recomputes the batch
    /// norm.
    p: Array2<f32>,
    norm: MapNorm,
    args: Vec<Vec<u32>>,
}

/// Forward and backward over one batch of a convolutional model.
pub fn step(
    net: &Network,
    config: &TrainConfig,
    clips: &[f32],
    pixels: &[u8],
    labels: &[u16],
    rng: &mut ChaCha8Rng,
) -> Result<StepOutput> {
    let rows = labels.len();
    let convs = net.convs.len();
    let mut x = input_map(net.input, pixels, net.input_map.2);
    // The packed form of `x` once it is ±1.
    let mut bits: Option<Vec<u64>> = None;
    let mut caches = Vec::with_capacity(convs);
    let mut stats = Vec::with_capacity(convs);
    let mut preact = Vec::with_capacity(convs);
    let filters = (0..convs)
        .map(|c| Filters::of(net, c))
        .collect::<Result<Vec<_>>>()?;
    for (c, conv) in net.convs.iter().enumerate() {
        let (p, args) = conv_forward(net, c, x.view(), bits.as_deref(), &filters[c]);
        let norm = mapnorm::stats(&p, rows, net.bn_eps);
        let (h, hbits, sq) =
            norm.activate(&p, rows, net.data(conv.bn.gamma), net.data(conv.bn.beta));
        stats.push(Some((norm.mean.clone(), norm.var.clone())));
        preact.push((sq, p.len() as u64));
        bits = Some(hbits);
        caches.push(ConvCache {
            x: std::mem::replace(&mut x, h),
            p,
            norm,
            args,
        });
    }
    // Flatten: an image's positions × channels, row-major, is its NHWC
    // feature vector, and its packed stream is that vector packed.
    let features = x.len() / rows;
    let x = x.into_shape_with_order((rows, features)).expect("shape");
    let (mut out, gx) = dense_pass(net, config, &clips[convs..], x, bits, labels, rng, true)?;
    let mut g = gx.expect("asked for the input gradient");
    for c in (0..convs).rev() {
        let conv = net.convs[c];
        let cache = &caches[c];
        let mut gp = g
            .into_shape_with_order(cache.p.dim())
            .expect("one gradient per activation");
        let (dgamma, dbeta) = cache.norm.backward(
            &mut gp,
            &cache.p,
            rows,
            net.data(conv.bn.gamma),
            net.data(conv.bn.beta),
            clips[c],
        );
        out.grads[conv.bn.gamma] = dgamma;
        out.grads[conv.bn.beta] = dbeta;
        let (dw, dx) = conv_backward(
            net,
            c,
            cache.x.view(),
            gp.view(),
            &cache.args,
            &filters[c].signs,
        );
        out.grads[conv.w] = dw;
        g = dx.unwrap_or_default();
    }
    out.batch_stats = stats.into_iter().chain(out.batch_stats).collect();
    out.preact = preact.into_iter().chain(out.preact).collect();
    Ok(out)
}

/// How a forward pass turns a layer's (pooled) dots into ±1 values: `layer`
/// counts convolutions first, then dense layers.
pub type Activate<'a> = dyn Fn(usize, &Array2<f32>) -> Array2<f32> + Sync + 'a;

/// The dots of layer `upto` (convolutions first, then dense layers; pooled
/// for a pooling convolution) for a chunk of images, each earlier layer
/// activated by `act`. Exact integers (see the module comment).
pub fn forward_dots(net: &Network, chunk: &[u8], upto: usize, act: &Activate<'_>) -> Array2<f32> {
    let rows = chunk.len() / net.input_len();
    let mut x = input_map(net.input, chunk, net.input_map.2);
    for c in 0..net.convs.len() {
        let filters = Filters::of(net, c).expect("signs pack");
        let (p, _) = conv_forward(net, c, x.view(), None, &filters);
        if c == upto {
            return p;
        }
        x = act(c, &p);
    }
    let features = x.len() / rows;
    let mut x = x.into_shape_with_order((rows, features)).expect("shape");
    for l in 0..net.layers.len() {
        let dots = a_bt(x.view(), net.forward_weights(l).view());
        if net.convs.len() + l == upto {
            return dots;
        }
        x = act(net.convs.len() + l, &dots);
    }
    unreachable!("layer {upto} is beyond the network")
}

/// Classes from the output dots of each chunk of images, every hidden layer
/// activated by `act`, and the output bias `c/α` added in f32.
pub fn predict_with(net: &Network, rule: Rule, pixels: &[u8], act: &Activate<'_>) -> Vec<usize> {
    let last = net.convs.len() + net.layers.len() - 1;
    let bias = output_bias(net);
    pixels
        .par_chunks(CHUNK * net.input_len())
        .flat_map_iter(|chunk| {
            let dots = forward_dots(net, chunk, last, act);
            dots.rows()
                .into_iter()
                .map(|d| {
                    let scores: Vec<f32> = d.iter().zip(&bias).map(|(&d, &b)| d + b).collect();
                    rule.to_core().decide(&scores)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether each value of `dots` passes its column's test.
pub fn activate_by(dots: &Array2<f32>, fires: impl Fn(usize, f32) -> bool) -> Array2<f32> {
    let mut h = dots.clone();
    for mut row in h.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = if fires(j, *v) { 1.0 } else { -1.0 };
        }
    }
    h
}

/// Per-channel integer thresholds of every convolution and hidden dense
/// layer (batch norm with running statistics folded), in layer order.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds(pub Vec<Vec<Threshold>>);

/// The largest |dot| convolution `c` can produce: the bound the thresholds
/// are clamped to.
pub fn conv_dot_bound(net: &Network, c: usize) -> usize {
    let patch = net.convs[c].shape.patch();
    if c == 0 && net.input == Input::U8 {
        PixelDense::dot_bound(patch)
    } else {
        patch
    }
}

/// Folds every batch norm before a sign into an integer threshold.
pub fn fold(net: &Network) -> Result<Thresholds> {
    let mut all = Vec::new();
    for (c, conv) in net.convs.iter().enumerate() {
        all.push(bn_thresholds(
            net,
            conv.bn,
            conv.shape.out_c,
            conv_dot_bound(net, c),
        )?);
    }
    for l in 0..net.layers.len() - 1 {
        all.push(thresholds(net, l)?);
    }
    Ok(Thresholds(all))
}

/// Classes of the folded model: integer dots against the thresholds, the
/// arithmetic the engine runs.
pub fn predict_folded(net: &Network, folded: &Thresholds, rule: Rule, pixels: &[u8]) -> Vec<usize> {
    let act = |layer: usize, dots: &Array2<f32>| {
        let t = &folded.0[layer];
        activate_by(dots, |j, d| t[j].fires(d as i32))
    };
    predict_with(net, rule, pixels, &act)
}

/// Classes of the unfolded model: each batch norm in f64 on the dots, with
/// its running statistics, and its sign.
pub fn predict_unfolded(net: &Network, rule: Rule, pixels: &[u8]) -> Vec<usize> {
    let sites = net.bn_sites();
    let eps = f64::from(net.bn_eps);
    let act = |layer: usize, dots: &Array2<f32>| {
        let bn = sites[layer].expect("hidden layers of convolutional models have batch norm");
        let (g, b, m, v) = (
            net.data(bn.gamma),
            net.data(bn.beta),
            net.data(bn.mean),
            net.data(bn.var),
        );
        activate_by(dots, |j, d| {
            let z = f64::from(g[j]) * (f64::from(d) - f64::from(m[j]))
                / (f64::from(v[j]) + eps).sqrt()
                + f64::from(b[j]);
            z >= 0.0
        })
    };
    predict_with(net, rule, pixels, &act)
}

/// Sets every batch norm's statistics to the exact mean and variance of its
/// (pooled) dots over `pixels`, layer by layer, each layer seeing the
/// earlier layers folded with their new statistics. Integer sums make the
/// result independent of how the work is split.
pub fn recompute_bn(net: &mut Network, pixels: &[u8]) -> Result<()> {
    let images = (pixels.len() / net.input_len()) as f64;
    let sites = net.bn_sites();
    for (layer, bn) in sites.iter().enumerate() {
        let Some(bn) = *bn else { continue };
        let folded = fold(net)?;
        let act = |l: usize, dots: &Array2<f32>| {
            let t = &folded.0[l];
            activate_by(dots, |j, d| t[j].fires(d as i32))
        };
        let n = net.data(bn.gamma).len();
        let net_now = &*net;
        let (sum, sq, positions) = pixels
            .par_chunks(CHUNK * net.input_len())
            .map(|chunk| {
                let dots = forward_dots(net_now, chunk, layer, &act);
                let mut sum = vec![0i64; n];
                let mut sq = vec![0i64; n];
                for d in dots.rows() {
                    for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(d) {
                        let v = v as i64;
                        *s += v;
                        *q += v * v;
                    }
                }
                (sum, sq, dots.nrows() as u64)
            })
            .reduce(
                || (vec![0i64; n], vec![0i64; n], 0),
                |(mut a, mut b, p), (c, d, q)| {
                    a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
                    b.iter_mut().zip(d).for_each(|(b, d)| *b += d);
                    (a, b, p + q)
                },
            );
        let count = positions as f64;
        debug_assert!(count >= images);
        let mean: Vec<f64> = sum.iter().map(|&s| s as f64 / count).collect();
        let var: Vec<f32> = sq
            .iter()
            .zip(&mean)
            .map(|(&q, &m)| (q as f64 / count - m * m).max(0.0) as f32)
            .collect();
        net.tensors[bn.mean].data = mean.iter().map(|&m| m as f32).collect();
        net.tensors[bn.var].data = var;
    }
    Ok(())
}

/// The folded model as a bnn-core model: each convolution (and its pool)
/// with its thresholds, the hidden dense layers with theirs, and the output
/// layer with the bias `c/α`, on the network's input map in the model's
/// encoding.
pub fn to_model(net: &Network, folded: &Thresholds, rule: Rule) -> Result<Model> {
    let mut layers = Vec::new();
    for (c, conv) in net.convs.iter().enumerate() {
        let s = conv.shape;
        let bits = BitMatrix::from_signs(s.out_c, s.patch(), net.data(conv.w))?;
        // A 1×1 kernel pads nothing either way.
        let padding = if s.pad == Padding::Same.before(s.kernel) {
            Padding::Same
        } else {
            Padding::Valid
        };
        let thresholds = folded.0[c].clone();
        layers.push(Layer::Conv(Conv2d::new(
            s.kernel, s.in_c, padding, bits, thresholds,
        )?));
        if s.pool {
            layers.push(Layer::MaxPool);
        }
    }
    let last = net.layers.len() - 1;
    for (l, layer) in net.layers.iter().enumerate() {
        let bits = BitMatrix::from_signs(layer.outputs, layer.inputs, net.data(layer.w))?;
        layers.push(Layer::Dense(if l == last {
            BinaryDense::output(bits, kept_output_bias(net)?)?
        } else {
            BinaryDense::hidden(bits, folded.0[net.convs.len() + l].clone())?
        }));
    }
    let encoding = match net.input {
        Input::U8 => InputEncoding::U8,
        Input::Binary => InputEncoding::Binary {
            threshold: INPUT_THRESHOLD,
        },
    };
    let (h, w, c) = net.input_map;
    let shape = InputShape::new(h as u32, w as u32, c as u32);
    Ok(Model::from_layers(shape, encoding, layers, rule.to_core())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::{col2im, im2col, max_pool, max_pool_backward};
    use crate::linalg::{a_b, at_b};
    use crate::step::{bn_backward, bn_forward};
    use rand::SeedableRng;

    /// The convolution step's weight and batch-norm gradients are those of
    /// the network whose signs are replaced by the identity: a small
    /// network whose pre-activations all lie within the clip, trained on a
    /// smooth loss, matches central finite differences of a float model
    /// evaluated through the same im2col and pooling code, with the sign
    /// weights held fixed (the STE's latent weights enter only through
    /// `sign`, so their gradient is the one of the sign weights).
    #[test]
    fn conv_gradients_pass_through_pool_and_batch_norm() {
        let s = crate::arch::ConvShape {
            kernel: 3,
            pad: 1,
            in_h: 4,
            in_w: 5,
            in_c: 2,
            out_h: 4,
            out_w: 5,
            out_c: 3,
            pool: true,
        };
        let x = Array2::from_shape_fn((2 * 20, 2), |(i, j)| ((i * 3 + j * 5) as f32 * 0.7).sin());
        let w = Array2::from_shape_fn((3, 18), |(i, j)| ((i * 18 + j) as f32 * 1.3).cos());
        let gamma = [0.8f32, -1.1, 1.4];
        let beta = [0.1f32, -0.2, 0.05];
        let r = Array2::from_shape_fn((2 * 4, 3), |(i, j)| ((i + 4 * j) as f32 * 0.37).sin());
        // loss = Σ r ⊙ BN(pool(conv(x, w)))
        let loss = |x: &Array2<f32>, w: &Array2<f32>| -> f64 {
            let col = im2col(x.view(), &s, -1.0);
            let a = a_bt(col.view(), w.view());
            let (p, _) = max_pool(a.view(), 4, 5);
            let (z, ..) = bn_forward(&p, &gamma, &beta, 1e-5);
            z.iter().zip(&r).map(|(a, b)| f64::from(a * b)).sum()
        };
        let col = im2col(x.view(), &s, -1.0);
        let a = a_bt(col.view(), w.view());
        let (p, arg) = max_pool(a.view(), 4, 5);
        let (_, cache, ..) = bn_forward(&p, &gamma, &beta, 1e-5);
        let (gp, ..) = bn_backward(&r, &cache, &gamma);
        let ga = max_pool_backward(gp.view(), &arg, 40);
        let dw = at_b(ga.view(), col.view());
        let dx = col2im(a_b(ga.view(), w.view()).view(), &s);
        let h = 1e-2f32;
        for (i, j) in [(0, 0), (1, 7), (2, 17), (0, 9)] {
            let (mut p, mut m) = (w.clone(), w.clone());
            p[[i, j]] += h;
            m[[i, j]] -= h;
            let fd = ((loss(&x, &p) - loss(&x, &m)) / (2.0 * f64::from(h))) as f32;
            assert!(
                (fd - dw[[i, j]]).abs() < 2e-2,
                "w[{i},{j}]: {fd} vs {}",
                dw[[i, j]]
            );
        }
        for (i, j) in [(0, 0), (7, 1), (23, 0), (39, 1)] {
            let (mut p, mut m) = (x.clone(), x.clone());
            p[[i, j]] += h;
            m[[i, j]] -= h;
            let fd = ((loss(&p, &w) - loss(&m, &w)) / (2.0 * f64::from(h))) as f32;
            assert!(
                (fd - dx[[i, j]]).abs() < 2e-2,
                "x[{i},{j}]: {fd} vs {}",
                dx[[i, j]]
            );
        }
    }

    /// A whole step on a tiny convolutional model returns a gradient for
    /// every trained tensor, and statistics and STE sums for every site.
    #[test]
    fn a_step_reaches_every_tensor() {
        let mut config = crate::recipe("cnn-small").unwrap();
        config.arch = Some("c3x4,p2,c3x3,d5,d10".parse().unwrap());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let net = Network::new(&config, &mut rng);
        let data = crate::data::synthetic(6, 1, 2);
        let (split, _) = data.train_and_validation(1);
        let clips = vec![1e9; crate::step::ste_sites(&config)];
        let out = step(&net, &config, &clips, split.pixels, split.labels, &mut rng).unwrap();
        assert_eq!(
            out.grads.len(),
            net.tensors.len(),
            "one gradient per tensor"
        );
        for (t, g) in net.tensors.iter().zip(&out.grads) {
            if t.role.trainable() {
                assert_eq!(g.len(), t.data.len(), "{}", t.name);
                assert!(g.iter().any(|&v| v != 0.0), "{}", t.name);
            }
        }
        // Two convolutions and the hidden dense layer.
        assert_eq!(out.batch_stats.len(), 3);
        assert!(out.batch_stats.iter().all(Option::is_some));
        assert_eq!(out.preact.len(), 3);
        assert!(out.preact.iter().all(|&(s, n)| s > 0.0 && n > 0));
    }
}
