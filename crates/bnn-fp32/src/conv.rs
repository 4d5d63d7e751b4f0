//! Convolution layers in f32: im2col, one sgemm per layer and group of
//! images, then an optional 2×2 max pool, a per-channel affine map and the
//! hidden activation.
//!
//! Maps are NHWC, position-major with the channel fastest: element
//! `(y, x, c)` of an `h × w × c` map is at `(y·w + x)·c + c`. A kernel row
//! holds `k·k·c_in` weights in `(ky, kx, c)` order, which is exactly the
//! im2col row of the input window, so the product of the im2col matrix
//! (`positions × window`) and the transposed weights (`window × outputs`)
//! is the output map in the same layout, with no reordering.
//!
//! The affine map comes after the pool because that is where a folded
//! batch norm sits (conv → pool → BN → sign), and because pooling commutes
//! with it only for a positive scale: a negative one turns the max into a
//! min, so pooling after the scale would pool the wrong way.
//!
//! Images are grouped into one GEMM per layer (their im2col rows stacked);
//! the GEMM computes each output element the same way whatever the number
//! of rows, so an image gets the same bits alone (the single-image path) or
//! in any group, chunk or thread count.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};

pub use bnn_core::Padding;

use crate::model::Hidden;

/// Largest accepted kernel side.
pub const MAX_KERNEL: usize = 31;

/// Largest im2col matrix of one image and layer (`positions × window`
/// values): bounds the working memory a model can demand per image.
pub const MAX_IM2COL: usize = 1 << 26;

/// The shape of a feature map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MapShape {
    /// Rows of the map.
    pub height: usize,
    /// Columns of the map.
    pub width: usize,
    /// Values per position (1 for a grey image).
    pub channels: usize,
}

impl MapShape {
    /// A shape of `height × width × channels` (HWC), unchecked: sizes are
    /// validated where a model is built.
    pub fn new(height: usize, width: usize, channels: usize) -> MapShape {
        MapShape {
            height,
            width,
            channels,
        }
    }

    /// Values in the map, or `None` if that overflows.
    pub fn values(&self) -> Option<usize> {
        self.height
            .checked_mul(self.width)?
            .checked_mul(self.channels)
    }
}

impl std::fmt::Display for MapShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}×{}", self.height, self.width, self.channels)
    }
}

/// A stride-1 convolution, optionally max-pooled 2×2, then
/// `y = act(scale·v + bias)` per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvF32 {
    /// The map this layer reads (the image, or the previous layer's output).
    pub input: MapShape,
    /// The kernel side `k` (odd).
    pub kernel: usize,
    /// Output channels.
    pub outputs: usize,
    /// The border geometry (see [`Padding`]); the value a padded position
    /// holds is `pad_value`.
    pub padding: Padding,
    /// The value a padded input position holds: `−1` where the input is a
    /// ±1 map or binarized pixels, `0` for pixel values.
    pub pad_value: f32,
    /// A 2×2, stride-2 max pool after the convolution (an odd last row or
    /// column is dropped).
    pub pool: bool,
    /// `outputs × (k·k·channels)`, row-major, each row in `(ky, kx, c)`
    /// order.
    pub weights: Vec<f32>,
    /// Per output channel, applied after the pool.
    pub scale: Vec<f32>,
    /// Per output channel, added after `scale`.
    pub bias: Vec<f32>,
}

impl ConvF32 {
    /// Weights per output channel: `k·k·channels`.
    pub fn window(&self) -> usize {
        self.kernel * self.kernel * self.input.channels
    }

    /// The convolution's output size before pooling.
    pub fn conv_size(&self) -> (usize, usize) {
        conv_size(self.input, self.kernel, self.padding).unwrap_or((0, 0))
    }

    /// The map this layer hands on (after the pool, if any).
    pub fn output(&self) -> MapShape {
        let (h, w) = self.conv_size();
        let (h, w) = if self.pool { (h / 2, w / 2) } else { (h, w) };
        MapShape::new(h, w, self.outputs)
    }

    /// Multiply-adds per image.
    pub fn macs(&self) -> usize {
        let (h, w) = self.conv_size();
        h * w * self.window() * self.outputs
    }

    /// The architecture token: `c3x32`, followed by `,p2` when pooled.
    pub fn token(&self) -> String {
        let pool = if self.pool { ",p2" } else { "" };
        format!("c{}x{}{pool}", self.kernel, self.outputs)
    }

    /// Checks the layer on its own: its shape (see
    /// [`ConvF32::check_shape`]), parameter lengths and values. `n` names
    /// it in messages.
    pub(crate) fn check(&self, n: usize) -> Result<(), String> {
        self.check_shape(n)?;
        let window = self.window();
        if self.outputs.checked_mul(window) != Some(self.weights.len()) {
            return Err(format!(
                "layer {n} has {} weights for {} channels × {window}-value windows",
                self.weights.len(),
                self.outputs
            ));
        }
        for (what, v) in [("scales", &self.scale), ("biases", &self.bias)] {
            if v.len() != self.outputs {
                return Err(format!(
                    "layer {n} has {} {what} for {} channels",
                    v.len(),
                    self.outputs
                ));
            }
        }
        if let Some(i) = self.weights.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "layer {n} weight {i} (channel {}, window value {}) is {}",
                i / window,
                i % window,
                self.weights[i]
            ));
        }
        for (what, v) in [("scale", &self.scale), ("bias", &self.bias)] {
            if let Some(j) = v.iter().position(|v| !v.is_finite()) {
                return Err(format!("layer {n} {what} {j} is {}", v[j]));
            }
        }
        if !self.pad_value.is_finite() {
            return Err(format!("layer {n} pad value is {}", self.pad_value));
        }
        Ok(())
    }

    /// Checks what the layer's shape fields alone decide, so that a file's
    /// layer table can be checked before any parameter is read: an odd
    /// kernel of at most [`MAX_KERNEL`], channel counts and maps within the
    /// format's width limit, a kernel that fits a valid-padded map, a map
    /// large enough to pool, an im2col matrix within [`MAX_IM2COL`].
    pub(crate) fn check_shape(&self, n: usize) -> Result<(), String> {
        let k = self.kernel;
        if k == 0 || k.is_multiple_of(2) || k > MAX_KERNEL {
            return Err(format!(
                "layer {n}: kernel size {k} is not an odd number in 1..={MAX_KERNEL}"
            ));
        }
        let limit = crate::format::MAX_WIDTH as usize;
        let too_big = |s: MapShape| s.values().is_none_or(|l| l == 0 || l > limit);
        if too_big(self.input) {
            return Err(format!(
                "layer {n}: input map {} is empty or has more than {limit} values",
                self.input
            ));
        }
        if self.outputs == 0 || self.outputs > limit {
            return Err(format!(
                "layer {n}: {} output channels, out of range 1..={limit}",
                self.outputs
            ));
        }
        let (h, w) = conv_size(self.input, k, self.padding).ok_or_else(|| {
            format!(
                "layer {n}: a {k}×{k} kernel does not fit the {} input without padding",
                self.input
            )
        })?;
        if self.pool && (h < 2 || w < 2) {
            return Err(format!(
                "layer {n}: cannot pool a {h}×{w} map 2×2 (it needs at least 2×2)"
            ));
        }
        let out = self.output();
        if too_big(MapShape::new(h, w, self.outputs)) || too_big(out) {
            return Err(format!(
                "layer {n}: output map {h}×{w}×{} has more than {limit} values",
                self.outputs
            ));
        }
        let window = self.window();
        if (h * w).checked_mul(window).is_none_or(|v| v > MAX_IM2COL) {
            return Err(format!(
                "layer {n}: {} positions × {window}-value windows exceed {MAX_IM2COL} values",
                h * w
            ));
        }
        Ok(())
    }

    /// `window × outputs`, row-major: the GEMM's right operand.
    pub(crate) fn transposed(&self) -> Array2<f32> {
        Array2::from_shape_vec((self.outputs, self.window()), self.weights.clone())
            .expect("weight length checked")
            .reversed_axes()
            .as_standard_layout()
            .into_owned()
    }
}

/// The output size of a `k × k` convolution, or `None` if the kernel does
/// not fit (valid padding on a map smaller than the kernel).
pub fn conv_size(input: MapShape, k: usize, padding: Padding) -> Option<(usize, usize)> {
    Some((
        padding.output_side(input.height, k)?,
        padding.output_side(input.width, k)?,
    ))
}

/// Buffers of the convolution stack, reused from image to image.
#[derive(Default)]
pub(crate) struct ConvScratch {
    /// The current map (the input image first).
    map: Vec<f32>,
    /// The im2col matrix.
    cols: Vec<f32>,
    /// The convolution's output before pooling.
    prod: Vec<f32>,
    /// The next map.
    next: Vec<f32>,
    /// One pooled position's maxima.
    max: Vec<f32>,
}

impl ConvScratch {
    /// Runs `layers` on `images` images whose input values `x` yields one
    /// image after the other; returns the last maps, flattened, one image
    /// after the other. Several images share each layer's GEMM, which packs
    /// the layer's weights once for all of them.
    pub(crate) fn run<'s>(
        &'s mut self,
        layers: &[ConvF32],
        transposed: &[Array2<f32>],
        hidden: Hidden,
        images: usize,
        x: impl Iterator<Item = f32>,
    ) -> &'s [f32] {
        self.map.clear();
        self.map.extend(x);
        for (layer, wt) in layers.iter().zip(transposed) {
            self.layer(layer, wt, hidden, images);
            std::mem::swap(&mut self.map, &mut self.next);
        }
        &self.map
    }

    /// One layer: `map` in, `next` out.
    fn layer(&mut self, l: &ConvF32, wt: &Array2<f32>, hidden: Hidden, images: usize) {
        let (oh, ow) = l.conv_size();
        let rows = images * oh * ow;
        let in_len = self.map.len() / images;
        self.cols.clear();
        for map in self.map.chunks_exact(in_len) {
            im2col(l, map, &mut self.cols);
        }
        let cols = ArrayView2::from_shape((rows, l.window()), &self.cols[..])
            .expect("im2col fills positions × window");
        let n = l.outputs;
        self.prod.resize(rows * n, 0.0);
        let mut prod =
            ArrayViewMut2::from_shape((rows, n), &mut self.prod[..]).expect("sized above");
        general_mat_mul(1.0, &cols, wt, 0.0, &mut prod);
        let (scale, bias) = (&l.scale[..n], &l.bias[..n]);
        let finish = |out: &mut [f32], v: &[f32]| {
            for (((o, &v), &s), &b) in out.iter_mut().zip(v).zip(scale).zip(bias) {
                *o = hidden.apply(s * v + b);
            }
        };
        self.next.clear();
        if l.pool {
            let (ph, pw) = (oh / 2, ow / 2);
            self.next.resize(images * ph * pw * n, 0.0);
            let max = &mut self.max;
            max.resize(n, 0.0);
            let image_maps = self.prod.chunks_exact(oh * ow * n);
            for (prod, out) in image_maps.zip(self.next.chunks_exact_mut(ph * pw * n)) {
                let at = |y: usize, x: usize| &prod[(y * ow + x) * n..][..n];
                for (p, out) in out.chunks_exact_mut(n).enumerate() {
                    let (y, x) = (2 * (p / pw), 2 * (p % pw));
                    let (a, b, c, d) = (at(y, x), at(y, x + 1), at(y + 1, x), at(y + 1, x + 1));
                    for ((((m, &a), &b), &c), &d) in max.iter_mut().zip(a).zip(b).zip(c).zip(d) {
                        *m = a.max(b).max(c.max(d));
                    }
                    finish(out, max);
                }
            }
        } else {
            self.next.resize(rows * n, 0.0);
            for (out, v) in self.next.chunks_exact_mut(n).zip(self.prod.chunks_exact(n)) {
                finish(out, v);
            }
        }
    }
}

/// Appends the im2col matrix of `map` for layer `l`: one row per output
/// position,
/// each the `(ky, kx, c)` window around it, padded positions holding
/// `l.pad_value`.
fn im2col(l: &ConvF32, map: &[f32], cols: &mut Vec<f32>) {
    let MapShape {
        height: h,
        width: w,
        channels: c,
    } = l.input;
    let k = l.kernel;
    let pad = l.padding.before(k);
    let (oh, ow) = l.conv_size();
    cols.reserve(oh * ow * l.window());
    for oy in 0..oh {
        for ox in 0..ow {
            for ky in 0..k {
                let iy = (oy + ky).wrapping_sub(pad);
                if iy >= h {
                    cols.extend(std::iter::repeat_n(l.pad_value, k * c));
                    continue;
                }
                // The window's columns that fall inside the map, as a run.
                let x0 = ox as isize - pad as isize;
                let lo = (-x0).clamp(0, k as isize);
                let hi = (w as isize - x0).clamp(lo, k as isize);
                let (lo, hi) = (lo as usize, hi as usize);
                cols.extend(std::iter::repeat_n(l.pad_value, lo * c));
                if hi > lo {
                    let start = (iy * w + (x0 + lo as isize) as usize) * c;
                    cols.extend_from_slice(&map[start..start + (hi - lo) * c]);
                }
                cols.extend(std::iter::repeat_n(l.pad_value, (k - hi) * c));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(input: MapShape, k: usize, padding: Padding) -> ConvF32 {
        ConvF32 {
            input,
            kernel: k,
            outputs: 1,
            padding,
            pad_value: -7.0,
            pool: false,
            weights: vec![0.0; k * k * input.channels],
            scale: vec![1.0],
            bias: vec![0.0],
        }
    }

    #[test]
    fn im2col_rows_are_padded_windows() {
        // A 2×3×2 map holding 1..=12: same-padded 3×3 windows.
        let s = MapShape::new(2, 3, 2);
        let map: Vec<f32> = (1..=12).map(|v| v as f32).collect();
        let l = layer(s, 3, Padding::Same);
        let mut cols = Vec::new();
        im2col(&l, &map, &mut cols);
        assert_eq!(cols.len(), 6 * 18);
        let p = -7.0;
        // Position (0, 0): top row padded, then (−1,0),(0,0),(0,1) of row 0
        // and row 1.
        #[rustfmt::skip]
        let want = [
            p, p, p, p, p, p,
            p, p, 1.0, 2.0, 3.0, 4.0,
            p, p, 7.0, 8.0, 9.0, 10.0,
        ];
        assert_eq!(cols[..18], want);
        // Position (1, 2): the last column and the bottom row padded.
        #[rustfmt::skip]
        let want = [
            3.0, 4.0, 5.0, 6.0, p, p,
            9.0, 10.0, 11.0, 12.0, p, p,
            p, p, p, p, p, p,
        ];
        assert_eq!(cols[5 * 18..], want);
        // Valid padding on a 3×3 map and a 3×3 kernel: the whole map.
        let s = MapShape::new(3, 3, 1);
        let l = layer(s, 3, Padding::Valid);
        let map: Vec<f32> = (0..9).map(|v| v as f32).collect();
        cols.clear();
        im2col(&l, &map, &mut cols);
        assert_eq!(cols, map);
        // A kernel wider than the map: every row has padding on both sides.
        let l = layer(MapShape::new(1, 1, 1), 5, Padding::Same);
        cols.clear();
        im2col(&l, &[3.0], &mut cols);
        let mut want = vec![p; 25];
        want[12] = 3.0;
        assert_eq!(cols, want);
    }

    #[test]
    fn sizes() {
        let s = MapShape::new(7, 4, 3);
        assert_eq!(conv_size(s, 3, Padding::Same), Some((7, 4)));
        assert_eq!(conv_size(s, 3, Padding::Valid), Some((5, 2)));
        assert_eq!(conv_size(s, 5, Padding::Valid), None);
        let mut l = layer(s, 3, Padding::Valid);
        l.pool = true;
        assert_eq!(l.output(), MapShape::new(2, 1, 1));
        assert_eq!(l.token(), "c3x1,p2");
        assert_eq!(l.macs(), 10 * 27);
    }
}
