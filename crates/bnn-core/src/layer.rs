//! One binary dense layer: packed ±1 weights and the transform of its
//! integer dot products (see [`crate::transform`]): a threshold per neuron
//! for hidden layers (which emit bits), or a float bias per neuron for the
//! output layer (which emits scores).

use crate::bits::{words_for, BitMatrix};
use crate::error::{Error, Result};
use crate::kernel::{FireArgs, Kernel, LANES, TILE_BLOCKS};
use crate::sparse::{LayerMode, Transposed};
pub use crate::transform::{Threshold, Transform};

/// A dense layer of ±1 weights, stored in the kernels' interleaved layout
/// (see [`crate::kernel`]).
#[derive(Clone, Debug)]
pub struct BinaryDense {
    inputs: usize,
    outputs: usize,
    transform: Transform,
    /// The weights, only in the kernels' layout; [`BinaryDense::weights`]
    /// rebuilds the row-major matrix when asked.
    interleaved: Vec<u64>,
    /// Per neuron (padded to whole blocks), the popcount limit of
    /// `(popcount <= limit) XOR flip`; padding neurons never fire.
    limits: Vec<i64>,
    flips: Vec<u8>,
    /// The same weights transposed, for the sparse kernel.
    pub(crate) transposed: Transposed,
}

impl PartialEq for BinaryDense {
    fn eq(&self, other: &Self) -> bool {
        self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.interleaved == other.interleaved
            && self.transform == other.transform
    }
}

impl BinaryDense {
    /// A hidden layer: `weights` is outputs × inputs.
    pub fn hidden(weights: BitMatrix, thresholds: Vec<Threshold>) -> Result<Self> {
        Self::new(weights, Transform::Sign(thresholds))
    }

    /// An output layer: `weights` is outputs × inputs.
    pub fn output(weights: BitMatrix, bias: Vec<f32>) -> Result<Self> {
        Self::new(weights, Transform::Scores(bias))
    }

    /// A layer of `weights` (outputs × inputs) and `transform`: thresholds
    /// for a hidden layer, biases for an output layer. Refuses an empty
    /// layer or a transform of another width.
    pub fn new(weights: BitMatrix, transform: Transform) -> Result<Self> {
        let (outputs, inputs) = (weights.rows(), weights.cols());
        if outputs == 0 || inputs == 0 {
            return Err(Error::InvalidModel(format!(
                "layer of {outputs} neurons over {inputs} inputs"
            )));
        }
        transform.check(outputs)?;
        let blocks = outputs.div_ceil(LANES);
        let wpr = weights.words_per_row();
        let mut interleaved = vec![0u64; blocks * wpr * LANES];
        for j in 0..outputs {
            let (b, l) = (j / LANES, j % LANES);
            for (k, &w) in weights.row(j).iter().enumerate() {
                interleaved[(b * wpr + k) * LANES + l] = w;
            }
        }
        let mut limits = vec![-1i64; blocks * LANES];
        let mut flips = vec![0u8; blocks];
        if let Transform::Sign(thresholds) = &transform {
            for (j, t) in thresholds.iter().enumerate() {
                limits[j] = t.popcount_limit(inputs);
                flips[j / LANES] |= u8::from(t.flip) << (j % LANES);
            }
        }
        let transposed = Transposed::new(&weights, &transform);
        Ok(BinaryDense {
            inputs,
            outputs,
            transform,
            interleaved,
            limits,
            flips,
            transposed,
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

    /// The weights as a row-major matrix (neurons × inputs), rebuilt from
    /// the interleaved copy: used by export and the reference, never by
    /// inference, so the layer keeps one copy of its weights, not two.
    pub fn weights(&self) -> BitMatrix {
        let wpr = self.words_per_row();
        let mut m = BitMatrix::new(self.outputs, self.inputs);
        for j in 0..self.outputs {
            let (b, l) = (j / LANES, j % LANES);
            for (k, w) in m.row_mut(j).iter_mut().enumerate() {
                *w = self.interleaved[(b * wpr + k) * LANES + l];
            }
        }
        m
    }

    fn words_per_row(&self) -> usize {
        words_for(self.inputs)
    }

    /// What the layer does with its dot products: thresholds or biases.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// Whether the layer emits ±1 bits (thresholds) rather than scores.
    pub fn is_hidden(&self) -> bool {
        matches!(self.transform, Transform::Sign(_))
    }

    /// Bytes this layer holds in memory: the interleaved weights (padded to
    /// whole words and whole blocks of 8 neurons), the per-neuron popcount
    /// limits, flips, and thresholds or biases.
    pub fn memory_bytes(&self) -> usize {
        let per_neuron = match &self.transform {
            Transform::Sign(t) => t.len() * std::mem::size_of::<Threshold>(),
            Transform::Scores(b) => b.len() * 4,
        };
        8 * (self.interleaved.len() + self.limits.len()) + self.flips.len() + per_neuron
    }

    /// Bytes of the transposed copy of the weights that the sparse kernel
    /// reads, with its per-neuron cuts; not part of [`Self::memory_bytes`].
    pub fn transposed_bytes(&self) -> usize {
        self.transposed.memory_bytes()
    }

    /// Neurons rounded up to whole kernel blocks.
    pub(crate) fn padded_outputs(&self) -> usize {
        self.limits.len()
    }

    /// Words per row of this layer's bit output.
    pub fn output_words(&self) -> usize {
        words_for(self.outputs())
    }

    /// Integer dot products of `rows` packed input rows with every neuron:
    /// `out[row·outputs + j]`. Used by trainers for an exact forward pass.
    pub fn dots(&self, kernel: Kernel, xs: &[u64], rows: usize, out: &mut [i32]) {
        let padded = self.padded_outputs();
        let mut pops = vec![0u32; rows * padded];
        self.popcounts(kernel, xs, rows, &mut pops);
        let n = self.inputs() as i32;
        for (o, p) in out[..rows * self.outputs()]
            .chunks_exact_mut(self.outputs())
            .zip(pops.chunks_exact(padded))
        {
            for (d, &p) in o.iter_mut().zip(p) {
                *d = n - 2 * p as i32;
            }
        }
    }

    /// Popcounts per row and padded neuron.
    pub(crate) fn popcounts(&self, kernel: Kernel, xs: &[u64], rows: usize, out: &mut [u32]) {
        self.popcounts_with(kernel, LayerMode::active(), xs, rows, out);
    }

    /// `popcount(x ⊕ w_j)` of `rows` packed input rows, `out[row·p + j]`
    /// with `p` the neurons rounded up to whole blocks of 8, by the kernel
    /// `mode` picks (see [`crate::sparse`]).
    pub fn popcounts_with(
        &self,
        kernel: Kernel,
        mode: LayerMode,
        xs: &[u64],
        rows: usize,
        out: &mut [u32],
    ) {
        let padded = self.padded_outputs();
        assert!(xs.len() >= rows * self.words_per_row() && out.len() >= rows * padded);
        if self.transposed.chooses(kernel, mode, xs, rows) {
            return self.transposed.popcounts(kernel, xs, rows, padded, out);
        }
        let wpr = self.words_per_row();
        kernel.block_popcounts(
            xs,
            rows,
            wpr,
            &self.interleaved,
            self.limits.len() / LANES,
            out,
        );
    }

    /// A hidden layer's output bits for `rows` packed input rows.
    pub(crate) fn fire_into(&self, kernel: Kernel, xs: &[u64], rows: usize, out: &mut [u64]) {
        self.fire_with(kernel, LayerMode::active(), xs, rows, out);
    }

    /// Whether a first layer should take its images as pixels
    /// ([`Self::fire_pixels_into`]) rather than packed: a hidden layer the
    /// active layer mode runs sparse whatever the image.
    pub(crate) fn reads_pixels(&self, kernel: Kernel) -> bool {
        self.is_hidden() && self.transposed.settled(kernel, LayerMode::active()) == Some(true)
    }

    /// A first hidden layer's output bits straight from `rows` images of
    /// pixels (`p >= threshold` is a 1), by the sparse kernel, whose
    /// listing reads the pixels: the images need no packed copy, which
    /// measured faster than packing the chunk first (docs/PERFORMANCE.md,
    /// "Why the kernels are as they are").
    pub(crate) fn fire_pixels_into(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        threshold: u8,
        rows: usize,
        out: &mut [u64],
    ) {
        assert!(self.is_hidden(), "an output layer emits scores, not bits");
        self.transposed
            .fire_pixels(kernel, pixels, threshold, rows, out);
    }

    /// A hidden layer's output bits for `rows` packed input rows
    /// ([`Self::output_words`] words a row), by the kernel `mode` picks.
    pub fn fire_with(
        &self,
        kernel: Kernel,
        mode: LayerMode,
        xs: &[u64],
        rows: usize,
        out: &mut [u64],
    ) {
        assert!(self.is_hidden(), "an output layer emits scores, not bits");
        assert!(xs.len() >= rows * self.words_per_row() && out.len() >= rows * self.output_words());
        if self.transposed.chooses(kernel, mode, xs, rows) {
            return self.transposed.fire(kernel, xs, rows, out);
        }
        self.fire_dense_with_limits(kernel, (xs, rows), (&self.limits, &[]), out);
    }

    /// Whether `mode` runs this layer by the dense kernel whatever its
    /// inputs, so that [`Self::fire_dense_with_limits`] stands in for
    /// [`Self::fire_with`].
    pub(crate) fn runs_dense(&self, kernel: Kernel, mode: LayerMode) -> bool {
        self.transposed.settled(kernel, mode) == Some(false)
    }

    /// Popcount limits in this layer's layout (one per padded neuron,
    /// `-1` for the padding ones) from thresholds on its dot, with the
    /// layer's own flips: a set of what [`Self::fire_dense_with_limits`]
    /// takes.
    pub(crate) fn limits_of(&self, thresholds: impl IntoIterator<Item = Threshold>) -> Vec<i64> {
        let mut limits = vec![-1i64; self.limits.len()];
        for (limit, t) in limits.iter_mut().zip(thresholds) {
            *limit = t.popcount_limit(self.inputs);
        }
        limits
    }

    /// The dense kernel's output bits for `rows` packed input rows, row
    /// `r` against set `row_sets[r]` of `limits` (sets of limits as
    /// [`Self::limits_of`] gives them, one after another; set 0 for every
    /// row when `row_sets` is empty) in place of the
    /// layer's own limits, with the same weights and flips. A zero-padded
    /// convolution fires each border position against its class's
    /// shifted thresholds (see `crate::conv`) this way, in one pass with
    /// the interior and with no copy of the weights.
    pub(crate) fn fire_dense_with_limits(
        &self,
        kernel: Kernel,
        (xs, rows): (&[u64], usize),
        (limits, row_sets): (&[i64], &[u16]),
        out: &mut [u64],
    ) {
        assert!(self.is_hidden(), "an output layer emits scores, not bits");
        assert!(xs.len() >= rows * self.words_per_row() && out.len() >= rows * self.output_words());
        let blocks = self.limits.len() / LANES;
        let args = FireArgs {
            xs,
            rows,
            wpr: self.words_per_row(),
            weights: &self.interleaved,
            blocks,
            limits,
            row_sets,
            flips: &self.flips,
            out_wpr: self.output_words(),
        };
        debug_assert!(blocks.div_ceil(TILE_BLOCKS) == args.out_wpr);
        kernel.fire(&args, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The folded threshold agrees with evaluating the float expression for
    /// every dot product a layer can produce.
    #[test]
    fn bias_threshold_matches_float_sign() {
        let n = 9usize;
        for bias in [
            -10.5, -9.0, -3.5, -0.25, -0.0, 0.0, 0.1, 1.0, 2.5, 8.99, 9.0, 20.0,
        ] {
            let t = Threshold::from_bias(bias, n).unwrap();
            for dot in (-(n as i32)..=n as i32).step_by(2) {
                assert_eq!(
                    t.fires(dot),
                    f64::from(dot) + bias >= 0.0,
                    "bias {bias} dot {dot}"
                );
            }
        }
        assert_eq!(
            Threshold::from_bias(f64::NAN, 3).unwrap_err().to_string(),
            "invalid model: bias NaN is not finite"
        );
    }

    #[test]
    fn batch_norm_threshold_matches_float_sign() {
        let n = 15usize;
        let eps = 1e-5;
        for gamma in [-2.0, -0.5, 0.0, 0.3, 1.7] {
            for beta in [-1.0, -0.2, 0.0, 0.4, 2.0] {
                for mean in [-3.3, 0.0, 1.25, 7.0] {
                    for var in [0.5, 4.0, 30.0] {
                        let bias = 0.375;
                        let t = Threshold::from_batch_norm(gamma, beta, mean, var, eps, bias, n)
                            .unwrap();
                        for dot in -(n as i32)..=n as i32 {
                            let bn =
                                gamma * (f64::from(dot) + bias - mean) / (var + eps).sqrt() + beta;
                            assert_eq!(
                                t.fires(dot),
                                bn >= 0.0,
                                "g {gamma} b {beta} m {mean} v {var} dot {dot}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The popcount limit fires exactly when the threshold does, for
    /// thresholds well beyond the reachable range, and stays in `[-1, n]`.
    #[test]
    fn popcount_limit_matches_threshold() {
        for n in [1usize, 2, 3, 8, 63, 64, 65] {
            for v in -(n as i32) - 4..=n as i32 + 4 {
                for t in [Threshold::at_least(v), Threshold::at_most(v)] {
                    let limit = t.popcount_limit(n);
                    assert!((-1..=n as i64).contains(&limit), "n {n} {t:?}: {limit}");
                    for p in 0..=n as i64 {
                        let dot = n as i32 - 2 * p as i32;
                        assert_eq!((p <= limit) != t.flip, t.fires(dot), "n {n} {t:?} p {p}");
                    }
                }
            }
        }
        // Thresholds far out of reach clamp to "never" and "always".
        let limits = [
            Threshold::at_most(i32::MIN),
            Threshold::at_least(i32::MIN),
            Threshold::at_least(i32::MAX),
            Threshold::at_most(i32::MAX),
        ]
        .map(|t| t.popcount_limit(5));
        assert_eq!(limits, [5, 5, -1, -1]);
    }

    /// The layer's stored limits and flips reproduce `Threshold::fires` for
    /// every dot.
    #[test]
    fn limits_match_thresholds() {
        for n in [1usize, 2, 7, 64, 65] {
            let thresholds: Vec<Threshold> = (-(n as i32) - 2..=n as i32 + 2)
                .flat_map(|v| [Threshold::at_least(v), Threshold::at_most(v)])
                .collect();
            let layer =
                BinaryDense::hidden(BitMatrix::new(thresholds.len(), n), thresholds.clone())
                    .unwrap();
            for (j, t) in thresholds.iter().enumerate() {
                for p in 0..=n as i64 {
                    let dot = n as i32 - 2 * p as i32;
                    let fired =
                        (p <= layer.limits[j]) ^ (layer.flips[j / LANES] >> (j % LANES) & 1 == 1);
                    assert_eq!(fired, t.fires(dot), "n {n} {t:?} p {p}");
                }
            }
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        let message = |r: Result<BinaryDense>| r.unwrap_err().to_string();
        assert_eq!(
            message(BinaryDense::hidden(
                BitMatrix::new(3, 4),
                vec![Threshold::at_least(0); 2]
            )),
            "invalid model: 2 thresholds for 3 neurons"
        );
        assert_eq!(
            message(BinaryDense::output(BitMatrix::new(3, 4), vec![0.0; 2])),
            "invalid model: 2 biases for 3 neurons"
        );
        assert_eq!(
            message(BinaryDense::output(
                BitMatrix::new(2, 4),
                vec![0.0, f32::NAN]
            )),
            "invalid model: bias 1 is NaN"
        );
        assert_eq!(
            message(BinaryDense::output(BitMatrix::new(0, 4), vec![])),
            "invalid model: layer of 0 neurons over 4 inputs"
        );
        assert_eq!(
            message(BinaryDense::output(BitMatrix::new(1, 0), vec![0.0])),
            "invalid model: layer of 1 neurons over 0 inputs"
        );
    }
}
