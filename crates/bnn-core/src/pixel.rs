//! The u8-input first layer: pixel values 0..=255 times ±1 weights.
//!
//! Its dot product `Σ p_i·w_i` is an exact integer in `[−255·n, 255·n]`, so
//! everything said of binary layers in [`crate::layer`] holds here too: a
//! hidden neuron's bias or batch norm folds into one integer [`Threshold`]
//! (build it with [`Threshold::from_bias`] or [`Threshold::from_batch_norm`],
//! passing [`PixelDense::dot_bound`] as the bound), and the output layer adds
//! a float bias. Only the dot product differs, and the kernels compute it
//! (see [`crate::kernel`], "Pixel layers").

use crate::bits::{words_for, BitMatrix};
use crate::error::{Error, Result};
use crate::kernel::{Kernel, PixelGroups, PixelPairs, PIXEL_GROUP, PIXEL_LANES};
use crate::transform::{Threshold, Transform};

/// A dense layer over u8 pixels with ±1 weights.
#[derive(Clone, Debug)]
pub struct PixelDense {
    inputs: usize,
    outputs: usize,
    transform: Transform,
    /// ±1 weights as `i8`, in the kernels' layout: for pixel group `g`
    /// (4 pixels), block `b` (16 neurons), lane `l`, pixel `i` of the group,
    /// the weight sits at `((g·blocks + b)·16 + l)·4 + i`. Padding pixels
    /// and padding neurons have weight 0.
    weights: Box<[i8]>,
    /// The same weights as sign bits, one word per group and block, bit
    /// `4·l + i` set for a −1 weight: an eighth of the bytes to stream
    /// from L2, which the AVX512-VNNI loops read for part of the blocks
    /// (see the kernel docs). Empty for a convolution's layer
    /// ([`PixelDense::for_windows`]), whose zero weights on real pixels
    /// bits cannot hold; it sums images one at a time.
    signs: Box<[u64]>,
    blocks: usize,
    /// Hidden layers, per padded neuron: it fires iff `(dot >= cut) XOR
    /// flip` (`cut = v` for `dot >= v`, `v + 1` for the flipped `dot <= v`,
    /// clamped to `±(255·n + 1)`; padding neurons never fire), with the
    /// flips as one 16-bit mask per block.
    cuts: Box<[i32]>,
    flips: Box<[u16]>,
}

impl PartialEq for PixelDense {
    fn eq(&self, other: &Self) -> bool {
        self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.weights == other.weights
            && self.transform == other.transform
    }
}

impl PixelDense {
    /// Most inputs a pixel layer takes: `255·n + 1` must fit an `i32`, the
    /// width of its dot products and thresholds.
    pub const MAX_INPUTS: usize = (i32::MAX as usize - 1) / 255;

    /// The largest `|Σ p_i·w_i|` over `inputs` pixels: the bound to pass to
    /// [`Threshold::from_bias`] and [`Threshold::from_batch_norm`] when
    /// folding a pixel layer's bias or batch norm.
    pub const fn dot_bound(inputs: usize) -> usize {
        255 * inputs
    }

    /// A hidden layer: `weights` is outputs × inputs (bit 1 = +1), and
    /// neuron `j` fires when `thresholds[j].fires(Σ p_i·w_ji)`.
    pub fn hidden(weights: BitMatrix, thresholds: Vec<Threshold>) -> Result<Self> {
        Self::new(weights, Transform::Sign(thresholds))
    }

    /// The only layer of a one-layer model: `score_j = Σ p_i·w_ji + bias_j`.
    pub fn output(weights: BitMatrix, bias: Vec<f32>) -> Result<Self> {
        Self::new(weights, Transform::Scores(bias))
    }

    /// A layer of `weights` (outputs × inputs) and `transform`: thresholds
    /// for a hidden layer, biases for an output layer. Refuses an empty
    /// layer, more than [`Self::MAX_INPUTS`] inputs or a transform of
    /// another width.
    pub fn new(weights: BitMatrix, transform: Transform) -> Result<Self> {
        let (outputs, inputs) = (weights.rows(), weights.cols());
        if outputs == 0 || inputs == 0 || inputs > Self::MAX_INPUTS {
            return Err(Error::InvalidModel(format!(
                "pixel layer of {outputs} neurons over {inputs} inputs (at most {} inputs)",
                Self::MAX_INPUTS
            )));
        }
        transform.check(outputs)?;
        let blocks = outputs.div_ceil(PIXEL_LANES);
        let groups = inputs.div_ceil(PIXEL_GROUP);
        let mut packed = vec![0i8; groups * blocks * PIXEL_LANES * PIXEL_GROUP];
        for j in 0..outputs {
            let (b, l) = (j / PIXEL_LANES, j % PIXEL_LANES);
            for i in 0..inputs {
                let (g, k) = (i / PIXEL_GROUP, i % PIXEL_GROUP);
                packed[((g * blocks + b) * PIXEL_LANES + l) * PIXEL_GROUP + k] =
                    if weights.get(j, i) { 1 } else { -1 };
            }
        }
        let bound = Self::dot_bound(inputs) as i64 + 1;
        let mut cuts = vec![bound as i32; blocks * PIXEL_LANES];
        let mut flips = vec![0u16; blocks];
        if let Transform::Sign(thresholds) = &transform {
            for (j, t) in thresholds.iter().enumerate() {
                let cut = i64::from(t.value) + i64::from(t.flip);
                cuts[j] = cut.clamp(-bound, bound) as i32;
                flips[j / PIXEL_LANES] |= u16::from(t.flip) << (j % PIXEL_LANES);
            }
        }
        let signs = crate::kernel::sign_bits(&packed);
        Ok(PixelDense {
            inputs,
            outputs,
            transform,
            signs: signs.into(),
            weights: packed.into(),
            blocks,
            cuts: cuts.into(),
            flips: flips.into(),
        })
    }

    /// Inputs per neuron: the weight matrix's columns.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Neurons: the weight matrix's rows.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    /// What the layer does with its dot products: thresholds or biases.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Whether the layer emits ±1 bits (thresholds) rather than scores.
    pub fn is_hidden(&self) -> bool {
        matches!(self.transform, Transform::Sign(_))
    }

    /// The weights as a row-major bit matrix (neurons × inputs, bit 1 = +1),
    /// rebuilt from the kernels' copy: for export, files and the reference.
    pub fn weights(&self) -> BitMatrix {
        let mut m = BitMatrix::new(self.outputs, self.inputs);
        for j in 0..self.outputs {
            let (b, l) = (j / PIXEL_LANES, j % PIXEL_LANES);
            for i in 0..self.inputs {
                let (g, k) = (i / PIXEL_GROUP, i % PIXEL_GROUP);
                let w = self.weights[((g * self.blocks + b) * PIXEL_LANES + l) * PIXEL_GROUP + k];
                m.set(j, i, w > 0);
            }
        }
        m
    }

    /// Bytes this layer holds in memory: one byte per weight (padded to
    /// whole groups of 4 pixels and blocks of 16 neurons), the same weights
    /// as sign bits, and the thresholds or biases.
    pub fn memory_bytes(&self) -> usize {
        let per_neuron = match &self.transform {
            Transform::Sign(t) => t.len() * std::mem::size_of::<Threshold>(),
            Transform::Scores(b) => b.len() * 4,
        };
        self.weights.len() + 8 * self.signs.len() + per_neuron
    }

    /// Words per row of this layer's bit output.
    pub fn output_words(&self) -> usize {
        words_for(self.outputs)
    }

    /// Neurons rounded up to whole kernel blocks.
    fn padded_outputs(&self) -> usize {
        self.blocks * PIXEL_LANES
    }

    /// Exact dot products `Σ p_i·w_ji` of `rows` images (`inputs` bytes
    /// each) with every neuron: `out[row·outputs + j]`. Trainers use it for
    /// an exact forward pass.
    pub fn dots(&self, kernel: Kernel, pixels: &[u8], rows: usize, out: &mut [i32]) {
        let mut scratch = PixelScratch::default();
        self.padded_dots(kernel, pixels, rows, &mut scratch);
        let padded = self.padded_outputs();
        for (o, d) in out[..rows * self.outputs]
            .chunks_exact_mut(self.outputs)
            .zip(scratch.dots.chunks_exact(padded))
        {
            o.copy_from_slice(&d[..self.outputs]);
        }
    }

    /// Dots per row and padded neuron, into `scratch.dots`: each image's
    /// non-zero groups, over every block; with AVX512-VNNI two images at a
    /// time, from both forms of the weights.
    fn padded_dots(&self, kernel: Kernel, pixels: &[u8], rows: usize, s: &mut PixelScratch) {
        assert!(pixels.len() >= rows * self.inputs, "pixel rows");
        let padded = self.padded_outputs();
        // The kernels overwrite every sum: no clearing between calls.
        s.dots.resize(rows * padded, 0);
        let mixed = kernel.pairs_pixel_rows() && !self.signs.is_empty();
        let mut r = 0;
        while r < rows {
            let image = &pixels[r * self.inputs..(r + 1) * self.inputs];
            if mixed && r + 1 < rows {
                let next = &pixels[(r + 1) * self.inputs..(r + 2) * self.inputs];
                kernel.pixel_pair_groups(image, next, &mut s.pairs);
                let (a, b) = s.dots[r * padded..(r + 2) * padded].split_at_mut(padded);
                let (w, signs) = (&self.weights, &self.signs);
                kernel.pixel_pair_dots(&s.pairs, w, signs, self.blocks, a, b);
                r += 2;
            } else {
                kernel.pixel_groups(image, &mut s.groups);
                let dots = &mut s.dots[r * padded..(r + 1) * padded];
                if mixed {
                    let (w, signs) = (&self.weights, &self.signs);
                    kernel.pixel_mixed_dots(&s.groups, w, signs, self.blocks, dots);
                } else {
                    kernel.pixel_dots(&s.groups, &self.weights, self.blocks, dots);
                }
                r += 1;
            }
        }
    }

    /// A hidden layer's output bits for `rows` images.
    pub(crate) fn fire_into(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        rows: usize,
        s: &mut PixelScratch,
        out: &mut [u64],
    ) {
        debug_assert!(self.is_hidden(), "only hidden layers fire");
        self.padded_dots(kernel, pixels, rows, s);
        let (padded, wpr) = (self.padded_outputs(), self.output_words());
        for (dots, words) in s.dots.chunks_exact(padded).zip(out.chunks_exact_mut(wpr)) {
            kernel.pixel_fire(dots, &self.cuts, &self.flips, words);
        }
    }

    /// The filters of a u8 convolution laid out for reading its windows as
    /// `runs` runs of `run` pixels straight from a padded image
    /// ([`PixelDense::fire_windows`]): each run padded to whole groups of 4
    /// with zero weights, which the pixels past a run (its neighbours in
    /// the image) then meet. `weights` is filters × `runs·run`.
    pub(crate) fn for_windows(
        weights: &BitMatrix,
        thresholds: Vec<Threshold>,
        runs: usize,
        run: usize,
    ) -> Result<Self> {
        let padded_run = run.div_ceil(PIXEL_GROUP) * PIXEL_GROUP;
        let mut padded = BitMatrix::new(weights.rows(), runs * padded_run);
        for j in 0..weights.rows() {
            for i in 0..runs * run {
                padded.set(j, i / run * padded_run + i % run, weights.get(j, i));
            }
        }
        let mut layer = Self::new(padded, Transform::Sign(thresholds))?;
        layer.signs = Box::default();
        for (i, w) in layer.weights.iter_mut().enumerate() {
            let input =
                i / (PIXEL_LANES * PIXEL_GROUP) / layer.blocks * PIXEL_GROUP + i % PIXEL_GROUP;
            if input % padded_run >= run {
                *w = 0;
            }
        }
        Ok(layer)
    }

    /// A u8 convolution's output bits (a layer from
    /// [`PixelDense::for_windows`]) at `spots` over `pixels`, the image
    /// padded with zero pixels, `line` bytes a padded row; one row of
    /// `output_words` words out per spot, at its `row`.
    pub(crate) fn fire_windows(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        spots: &[crate::kernel::Spot],
        line: usize,
        runs: usize,
        out: &mut [u64],
    ) {
        debug_assert!(self.is_hidden(), "only hidden layers fire");
        let groups = self.inputs / PIXEL_GROUP;
        let args = crate::kernel::PixelRows {
            pixels,
            spots,
            line,
            runs,
            run_groups: groups / runs,
            weights: &self.weights,
            blocks: self.blocks,
            cuts: &self.cuts,
            flips: &self.flips,
            out_wpr: self.output_words(),
        };
        kernel.pixel_rows_fire(&args, out);
    }

    /// The one-layer model's scores for `rows` images: `dot + bias` in f32,
    /// or `dot · scale + bias` with the model's per-class scale.
    pub(crate) fn scores_into(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        rows: usize,
        s: &mut PixelScratch,
        scale: Option<&[f32]>,
        scores: &mut [f32],
    ) {
        let Transform::Scores(bias) = &self.transform else {
            unreachable!("only output layers score")
        };
        self.padded_dots(kernel, pixels, rows, s);
        for (out, dots) in scores
            .chunks_exact_mut(self.outputs)
            .zip(s.dots.chunks_exact(self.padded_outputs()))
        {
            match scale {
                None => {
                    for ((o, &d), &b) in out.iter_mut().zip(dots).zip(bias) {
                        *o = d as f32 + b;
                    }
                }
                Some(scale) => {
                    for (((o, &d), &b), &k) in out.iter_mut().zip(dots).zip(bias).zip(scale) {
                        *o = crate::kernel::scaled_score(d as f32, k, b);
                    }
                }
            }
        }
    }
}

/// Reusable buffers of a pixel layer, kept per thread so that the
/// single-image path allocates nothing after its first call.
#[derive(Default)]
pub(crate) struct PixelScratch {
    /// The non-zero pixel groups of the current image.
    groups: PixelGroups,
    /// Two images' groups, for kernels that sum two images at once.
    pairs: PixelPairs,
    dots: Vec<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folded thresholds of a pixel layer agree with the float batch
    /// norm over the whole range of its dot products, extremes included.
    #[test]
    fn batch_norm_folds_over_the_pixel_range() {
        let n = 3usize;
        let bound = PixelDense::dot_bound(n);
        for gamma in [-1.5, -0.01, 0.0, 0.02, 2.0] {
            for beta in [-3.0, 0.0, 0.7] {
                for mean in [-500.0, -0.5, 0.0, 37.25, 760.0] {
                    let (var, eps, bias) = (1234.5, 1e-5, 0.125);
                    let t = Threshold::from_batch_norm(gamma, beta, mean, var, eps, bias, bound)
                        .unwrap();
                    for dot in -(bound as i32)..=bound as i32 {
                        let bn = gamma * (f64::from(dot) + bias - mean) / (var + eps).sqrt() + beta;
                        assert_eq!(t.fires(dot), bn >= 0.0, "g {gamma} b {beta} m {mean} {dot}");
                    }
                }
            }
        }
    }

    #[test]
    fn weights_round_trip_and_dots_are_exact() {
        let (m, n) = (19, 9);
        let mut w = BitMatrix::new(m, n);
        for j in 0..m {
            for i in 0..n {
                w.set(j, i, (i * 7 + j * 3) % 5 < 2);
            }
        }
        let layer = PixelDense::output(w.clone(), vec![0.5; m]).unwrap();
        assert_eq!(layer.weights(), w);
        let pixels: Vec<u8> = (0..2 * n).map(|i| (i * 37 % 256) as u8).collect();
        let mut dots = vec![0i32; 2 * m];
        for kernel in crate::kernel::available() {
            layer.dots(kernel, &pixels, 2, &mut dots);
            for r in 0..2 {
                for j in 0..m {
                    let expected: i32 = (0..n)
                        .map(|i| {
                            let p = i32::from(pixels[r * n + i]);
                            if w.get(j, i) {
                                p
                            } else {
                                -p
                            }
                        })
                        .sum();
                    assert_eq!(dots[r * m + j], expected, "{kernel} row {r} neuron {j}");
                }
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let t = vec![Threshold::at_least(0); 2];
        let message = |r: Result<PixelDense>| r.unwrap_err().to_string();
        assert_eq!(
            message(PixelDense::hidden(BitMatrix::new(3, 4), t)),
            "invalid model: 2 thresholds for 3 neurons"
        );
        assert_eq!(
            message(PixelDense::output(
                BitMatrix::new(2, 4),
                vec![0.0, f32::INFINITY]
            )),
            "invalid model: bias 1 is inf"
        );
        let max = PixelDense::MAX_INPUTS;
        assert_eq!(
            message(PixelDense::output(BitMatrix::new(0, 4), vec![])),
            format!("invalid model: pixel layer of 0 neurons over 4 inputs (at most {max} inputs)")
        );
        assert_eq!(
            message(PixelDense::output(BitMatrix::new(1, 0), vec![0.0])),
            format!("invalid model: pixel layer of 1 neurons over 0 inputs (at most {max} inputs)")
        );
        assert_eq!(
            message(PixelDense::output(BitMatrix::new(1, max + 1), vec![0.0])),
            format!(
                "invalid model: pixel layer of 1 neurons over {} inputs (at most {max} inputs)",
                max + 1
            )
        );
    }
}
