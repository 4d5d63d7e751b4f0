//! Convolution and pooling arithmetic on NHWC batches: im2col (so that a
//! convolution is one sgemm), its adjoint col2im (the input gradient), and
//! the 2×2 max pool with the positions of its maxima (its gradient).
//!
//! A map of `b` images is a matrix of `b·H·W` rows (positions, row-major
//! per image) by `C` columns, so that element (y, x, c) of image i sits at
//! row `i·H·W + y·W + x`, column `c`, exactly the engine's layout. Every
//! loop runs per image in parallel and writes only that image's rows, so
//! results never depend on the thread count.

use bnn_core::bits::{or_bits, words_for};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::arch::ConvShape;

/// The im2col matrix of a batch: one row per output position, holding the
/// k×k window in (ky, kx, c) order; positions outside the map hold `pad`.
pub fn im2col(x: ArrayView2<'_, f32>, s: &ConvShape, pad: f32) -> Array2<f32> {
    let images = x.nrows() / (s.in_h * s.in_w);
    let mut col = Array2::<f32>::zeros((images * s.out_h * s.out_w, s.patch()));
    im2col_into(x, s, pad, col.as_slice_mut().expect("standard layout"));
    col
}

/// [`im2col`] into `col` (one row of `patch` values per output position),
/// every value written, so that a reused buffer needs no clearing.
pub fn im2col_into(x: ArrayView2<'_, f32>, s: &ConvShape, pad: f32, col: &mut [f32]) {
    let per_in = s.in_h * s.in_w;
    let per_out = s.out_h * s.out_w;
    let patch = s.patch();
    let x = x.as_slice().expect("standard layout");
    col.par_chunks_mut(per_out * patch)
        .zip(x.par_chunks(per_in * s.in_c))
        .for_each(|(out, img)| {
            let c = s.in_c;
            let run = s.kernel * c;
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    let row = &mut out[(oy * s.out_w + ox) * patch..][..patch];
                    for ky in 0..s.kernel {
                        let dst = &mut row[ky * run..][..run];
                        let iy = (oy + ky) as isize - s.pad as isize;
                        if iy < 0 || iy >= s.in_h as isize {
                            dst.fill(pad);
                            continue;
                        }
                        let x0 = ox as isize - s.pad as isize;
                        // The columns of the window inside the map.
                        let lo = (-x0).clamp(0, s.kernel as isize) as usize;
                        let hi = (s.in_w as isize - x0).clamp(0, s.kernel as isize) as usize;
                        dst[..lo * c].fill(pad);
                        if hi > lo {
                            let src = (iy as usize * s.in_w + (x0 + lo as isize) as usize) * c;
                            dst[lo * c..hi * c].copy_from_slice(&img[src..src + (hi - lo) * c]);
                        }
                        dst[hi.max(lo) * c..].fill(pad);
                    }
                }
            }
        });
}

/// The bit im2col of a batch of ±1 maps: `bits` holds each image's map
/// packed as one stream of positions × channels bits (`v ≥ 0` → 1), padded
/// to whole words per image; each output position gets one row of
/// `words_for(patch)` words in [`im2col`]'s (ky, kx, c) order. Padded
/// positions are −1, bit 0, so they need no writes: copying runs of bits
/// costs a fraction of writing and packing the float im2col.
pub fn bit_im2col(bits: &[u64], s: &ConvShape, out: &mut [u64]) {
    let per_image = words_for(s.in_h * s.in_w * s.in_c);
    let rw = words_for(s.patch());
    let c = s.in_c;
    out.fill(0);
    out.par_chunks_mut(s.out_h * s.out_w * rw)
        .zip(bits.par_chunks(per_image))
        .for_each(|(out, img)| {
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    let row = &mut out[(oy * s.out_w + ox) * rw..][..rw];
                    for ky in 0..s.kernel {
                        let iy = (oy + ky) as isize - s.pad as isize;
                        if iy < 0 || iy >= s.in_h as isize {
                            continue;
                        }
                        let x0 = ox as isize - s.pad as isize;
                        let lo = (-x0).clamp(0, s.kernel as isize) as usize;
                        let hi = (s.in_w as isize - x0).clamp(0, s.kernel as isize) as usize;
                        if hi > lo {
                            let from = (iy as usize * s.in_w + (x0 + lo as isize) as usize) * c;
                            let to = (ky * s.kernel + lo) * c;
                            or_bits(img, from, row, to, (hi - lo) * c);
                        }
                    }
                }
            }
        });
}

/// The adjoint of [`im2col`]: each window's gradient added back onto the
/// input positions it read (padding positions dropped), in a fixed order.
pub fn col2im(dcol: ArrayView2<'_, f32>, s: &ConvShape) -> Array2<f32> {
    let images = dcol.nrows() / (s.out_h * s.out_w);
    let mut dx = Array2::<f32>::zeros((images * s.in_h * s.in_w, s.in_c));
    col2im_into(dcol, s, dx.as_slice_mut().expect("standard layout"));
    dx
}

/// [`col2im`] into `dx` (the images' input positions × channels, zeroed
/// here), so that a caller splitting a batch writes its part in place.
pub fn col2im_into(dcol: ArrayView2<'_, f32>, s: &ConvShape, dx: &mut [f32]) {
    let per_out = s.out_h * s.out_w;
    let patch = s.patch();
    let c = s.in_c;
    let dcol = dcol.as_slice().expect("standard layout");
    dx.fill(0.0);
    dx.par_chunks_mut(s.in_h * s.in_w * c)
        .zip(dcol.par_chunks(per_out * patch))
        .for_each(|(out, d)| {
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    let row = &d[(oy * s.out_w + ox) * patch..][..patch];
                    for ky in 0..s.kernel {
                        let iy = (oy + ky) as isize - s.pad as isize;
                        if iy < 0 || iy >= s.in_h as isize {
                            continue;
                        }
                        for kx in 0..s.kernel {
                            let ix = (ox + kx) as isize - s.pad as isize;
                            if ix < 0 || ix >= s.in_w as isize {
                                continue;
                            }
                            let dst = &mut out[(iy as usize * s.in_w + ix as usize) * c..][..c];
                            let src = &row[(ky * s.kernel + kx) * c..][..c];
                            for (o, &v) in dst.iter_mut().zip(src) {
                                *o += v;
                            }
                        }
                    }
                }
            }
        });
}

/// 2×2 max pool, stride 2 (an odd last row or column dropped), of an
/// `h`×`w` map per image; with each maximum's row in the input (the first
/// of equal values, in window order), for the gradient.
pub fn max_pool(z: ArrayView2<'_, f32>, h: usize, w: usize) -> (Array2<f32>, Vec<u32>) {
    let c = z.ncols();
    let images = z.nrows() / (h * w);
    let rows = images * (h / 2) * (w / 2);
    let mut out = Array2::<f32>::zeros((rows, c));
    let mut arg = vec![0u32; rows * c];
    max_pool_into(
        z,
        h,
        w,
        out.as_slice_mut().expect("standard layout"),
        &mut arg,
    );
    (out, arg)
}

/// [`max_pool`] into `out` and `arg` (pooled positions × channels each),
/// so that a caller splitting a batch writes its part in place.
pub fn max_pool_into(z: ArrayView2<'_, f32>, h: usize, w: usize, out: &mut [f32], arg: &mut [u32]) {
    let c = z.ncols();
    let (ph, pw) = (h / 2, w / 2);
    let z = z.as_slice().expect("standard layout");
    out.par_chunks_mut(ph * pw * c)
        .zip(arg.par_chunks_mut(ph * pw * c))
        .enumerate()
        .for_each(|(i, (out, arg))| pool_image(z, c, (h, w), i * h * w, out, arg));
}

/// [`max_pool`] of the image whose rows start at row `base` of `z`.
fn pool_image(
    z: &[f32],
    c: usize,
    (h, w): (usize, usize),
    base: usize,
    out: &mut [f32],
    arg: &mut [u32],
) {
    let (ph, pw) = (h / 2, w / 2);
    for py in 0..ph {
        for px in 0..pw {
            let o = (py * pw + px) * c;
            let first = base + 2 * py * w + 2 * px;
            let out = &mut out[o..o + c];
            let arg = &mut arg[o..o + c];
            let r0 = &z[first * c..][..c];
            let r1 = &z[(first + 1) * c..][..c];
            let r2 = &z[(first + w) * c..][..c];
            let r3 = &z[(first + w + 1) * c..][..c];
            let (f, w) = (first as u32, w as u32);
            // A tournament of selects, first pair against second (ties
            // keep the earlier row), in one pass over the four rows, where
            // three passes of selects would read and write the running
            // maximum and its row each time.
            for ch in 0..c {
                let (v0, v1, v2, v3) = (r0[ch], r1[ch], r2[ch], r3[ch]);
                let m01 = if v1 > v0 { v1 } else { v0 };
                let m23 = if v3 > v2 { v3 } else { v2 };
                let k01 = if v1 > v0 { f + 1 } else { f };
                let k23 = if v3 > v2 { f + w + 1 } else { f + w };
                out[ch] = if m23 > m01 { m23 } else { m01 };
                arg[ch] = if m23 > m01 { k23 } else { k01 };
            }
        }
    }
}

/// The gradient of [`max_pool`]: each pooled gradient goes to its maximum.
pub fn max_pool_backward(g: ArrayView2<'_, f32>, arg: &[u32], input_rows: usize) -> Array2<f32> {
    let mut dz = Array2::<f32>::zeros((input_rows, g.ncols()));
    max_pool_backward_into(g, arg, dz.as_slice_mut().expect("standard layout"));
    dz
}

/// [`max_pool_backward`] into `dz` (cleared here).
pub fn max_pool_backward_into(g: ArrayView2<'_, f32>, arg: &[u32], dz: &mut [f32]) {
    let c = g.ncols();
    let g = g.as_slice().expect("standard layout");
    dz.fill(0.0);
    // Row by row, with no integer division (`k % c`) per value.
    for (gr, ar) in g.chunks_exact(c).zip(arg.chunks_exact(c)) {
        for (ch, (&v, &r)) in gr.iter().zip(ar).enumerate() {
            dz[r as usize * c + ch] += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(h: usize, w: usize, c: usize, k: usize, pad: usize, n: usize) -> ConvShape {
        ConvShape {
            kernel: k,
            pad,
            in_h: h,
            in_w: w,
            in_c: c,
            out_h: h + 2 * pad - k + 1,
            out_w: w + 2 * pad - k + 1,
            out_c: n,
            pool: false,
        }
    }

    /// The convolution written the obvious way, one output at a time.
    fn naive_conv(x: &Array2<f32>, w: &Array2<f32>, s: &ConvShape, pad: f32) -> Array2<f32> {
        let images = x.nrows() / (s.in_h * s.in_w);
        let mut out = Array2::zeros((images * s.out_h * s.out_w, s.out_c));
        for i in 0..images {
            for oy in 0..s.out_h {
                for ox in 0..s.out_w {
                    for n in 0..s.out_c {
                        let mut acc = 0f32;
                        for ky in 0..s.kernel {
                            for kx in 0..s.kernel {
                                for c in 0..s.in_c {
                                    let iy = (oy + ky) as isize - s.pad as isize;
                                    let ix = (ox + kx) as isize - s.pad as isize;
                                    let inside = (0..s.in_h as isize).contains(&iy)
                                        && (0..s.in_w as isize).contains(&ix);
                                    let v = if inside {
                                        x[[
                                            i * s.in_h * s.in_w
                                                + iy as usize * s.in_w
                                                + ix as usize,
                                            c,
                                        ]]
                                    } else {
                                        pad
                                    };
                                    acc += v * w[[n, (ky * s.kernel + kx) * s.in_c + c]];
                                }
                            }
                        }
                        out[[i * s.out_h * s.out_w + oy * s.out_w + ox, n]] = acc;
                    }
                }
            }
        }
        out
    }

    fn values(rows: usize, cols: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            (((i * 31 + j * 17 + seed * 7) % 13) as f32 - 6.0) * 0.5
        })
    }

    #[test]
    fn im2col_sgemm_is_the_obvious_convolution() {
        for (h, w, c, k, pad, n) in [
            (5, 7, 3, 3, 1, 4),
            (5, 7, 3, 3, 0, 2),
            (6, 4, 2, 5, 2, 3),
            (6, 5, 1, 5, 0, 2),
            (3, 3, 4, 1, 0, 5),
            (2, 3, 1, 5, 2, 1),
        ] {
            let s = shape(h, w, c, k, pad, n);
            let x = values(2 * h * w, c, 1);
            let wt = values(n, s.patch(), 2);
            for padv in [0.0, -1.0] {
                let col = im2col(x.view(), &s, padv);
                let got = col.dot(&wt.t());
                assert_eq!(
                    got,
                    naive_conv(&x, &wt, &s, padv),
                    "{h}x{w}x{c} k{k} pad {pad}"
                );
            }
        }
    }

    /// The bit im2col is the float im2col (padding −1) packed row by row,
    /// for channel counts that cross word boundaries in every way.
    #[test]
    fn bit_im2col_packs_the_float_im2col() {
        for (h, w, c, k, pad) in [
            (5, 7, 3, 3, 1),
            (6, 4, 32, 3, 1),
            (4, 5, 70, 3, 0),
            (6, 5, 1, 5, 2),
            (3, 3, 130, 1, 0),
            (2, 3, 2, 5, 2),
        ] {
            let s = shape(h, w, c, k, pad, 1);
            let images = 3;
            let x = values(images * h * w, c, 5).mapv(|v| if v >= 0.0 { 1.0 } else { -1.0 });
            let per_image = words_for(h * w * c);
            let mut bits = vec![0u64; images * per_image];
            for (img, out) in x
                .as_slice()
                .unwrap()
                .chunks(h * w * c)
                .zip(bits.chunks_mut(per_image))
            {
                bnn_core::bits::pack_signs(img, out);
            }
            let col = im2col(x.view(), &s, -1.0);
            let rw = words_for(s.patch());
            let mut want = vec![0u64; col.nrows() * rw];
            for (row, out) in col.rows().into_iter().zip(want.chunks_mut(rw)) {
                bnn_core::bits::pack_signs(row.as_slice().unwrap(), out);
            }
            // Stale words in the output must not survive.
            let mut got = vec![u64::MAX; want.len()];
            bit_im2col(&bits, &s, &mut got);
            assert_eq!(got, want, "{h}x{w}x{c} k{k} pad {pad}");
        }
    }

    /// col2im is the adjoint of im2col: ⟨im2col(x), d⟩ = ⟨x, col2im(d)⟩.
    #[test]
    fn col2im_is_the_adjoint() {
        for (h, w, c, k, pad) in [(5, 7, 3, 3, 1), (6, 4, 2, 5, 2), (4, 4, 2, 3, 0)] {
            let s = shape(h, w, c, k, pad, 1);
            let x = values(3 * h * w, c, 3);
            let col = im2col(x.view(), &s, 0.0);
            let d = values(col.nrows(), col.ncols(), 4);
            let back = col2im(d.view(), &s);
            let lhs: f64 = col.iter().zip(&d).map(|(a, b)| f64::from(a * b)).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| f64::from(a * b)).sum();
            assert!((lhs - rhs).abs() < 1e-3, "{lhs} vs {rhs}");
        }
    }

    /// Against the obvious loop, on values with many ties, several
    /// images, odd sizes and channel counts that are not a vector width.
    #[test]
    fn pooling_is_the_first_maximum_of_each_window() {
        for (h, w, c) in [(4, 6, 3), (5, 7, 9), (6, 6, 32), (3, 3, 1)] {
            let images = 3;
            let z =
                Array2::from_shape_fn((images * h * w, c), |(i, j)| ((i * 5 + j * 3) % 4) as f32);
            let (p, arg) = max_pool(z.view(), h, w);
            let (ph, pw) = (h / 2, w / 2);
            for i in 0..images {
                for py in 0..ph {
                    for px in 0..pw {
                        for ch in 0..c {
                            let first = i * h * w + 2 * py * w + 2 * px;
                            let mut best = first;
                            for r in [first + 1, first + w, first + w + 1] {
                                if z[[r, ch]] > z[[best, ch]] {
                                    best = r;
                                }
                            }
                            let o = (i * ph + py) * pw + px;
                            assert_eq!(p[[o, ch]], z[[best, ch]]);
                            assert_eq!(arg[o * c + ch], best as u32, "{h}x{w}x{c} {o} {ch}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn pooling_takes_the_first_maximum_and_drops_odd_edges() {
        // One image, 3×5, one channel: the last row and column are dropped.
        let z = Array2::from_shape_vec(
            (15, 1),
            vec![
                1., 4., 2., 2., 9., //
                3., 4., 0., 1., 9., //
                9., 9., 9., 9., 9.,
            ],
        )
        .unwrap();
        let (p, arg) = max_pool(z.view(), 3, 5);
        assert_eq!(p.into_raw_vec_and_offset().0, vec![4., 2.]);
        assert_eq!(arg, vec![1, 2]);
        let g = Array2::from_shape_vec((2, 1), vec![0.5, -1.0]).unwrap();
        let d = max_pool_backward(g.view(), &arg, 15);
        let mut want = vec![0f32; 15];
        want[1] = 0.5;
        want[2] = -1.0;
        assert_eq!(d.into_raw_vec_and_offset().0, want);
        // Channels pool independently.
        let z2 =
            Array2::from_shape_fn((4, 2), |(r, c)| if c == 0 { r as f32 } else { -(r as f32) });
        let (p, arg) = max_pool(z2.view(), 2, 2);
        assert_eq!(p.into_raw_vec_and_offset().0, vec![3., 0.]);
        assert_eq!(arg, vec![3, 0]);
    }
}
