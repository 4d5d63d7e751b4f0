//! Binary convolutions and 2×2 max pooling over bit maps.
//!
//! # Layout
//!
//! An activation map of `H×W×C` values is stored NHWC, position-major with
//! the channel fastest: value `(y, x, c)` is bit `(y·W + x)·C + c` of one
//! continuous bit stream (bit 1 = +1, as everywhere in the engine). So a map
//! is already the flattened vector a dense layer after it takes, and
//! flattening costs nothing.
//!
//! A convolution `k×k`, stride 1, `N` output channels holds one row of
//! `k·k·C` weights per output channel, in `(ky, kx, c)` order: exactly the
//! input window in NHWC order. In the map, the `k` positions of one window
//! row are `k·C` consecutive bits, so gathering a window (bit im2col) is `k`
//! copies of `k·C` bits ([`crate::bits::or_bits`], a word at a time).
//!
//! # Padding
//!
//! `same` pads `(k−1)/2` positions on each side (the output keeps `H×W`),
//! `valid` pads none (`(H−k+1)×(W−k+1)`). A padded position of a bit map is
//! −1 (bit 0): the im2col row simply leaves those bits zero, the weights
//! see −1 there like any other −1, and the integer dot needs no correction
//! term; the trainer pads its sign activations with −1 to match. A padded
//! pixel of a u8 map is 0 and contributes nothing to `Σ p·w`.
//!
//! `zero` has `same`'s geometry but reads a padded position of a bit map
//! as 0, as PyTorch and ONNX pad a ±1 map: the dot of a border position is
//! `Σ x·w` over its in-bounds cells only. Zero is not a bit, so the im2col
//! rows stay what `same` gathers (−1 outside), and the difference is exact
//! integer arithmetic: each out-of-bounds cell added `(−1)·w`, where zero
//! padding adds 0, so `dot_zero = dot_same + Σ_out w`. That sum depends
//! only on the filter and on which window rows and columns fall outside,
//! which is one of a few border *classes* (8 for a 3×3 kernel on a map of
//! at least 3×3), so it is computed once per class and filter when the
//! stage is built (`ZeroBorder`), as a set of popcount limits per class:
//! the thresholds `t.value − Σ_out w` on the popcounted dot. At run time
//! every listed position, in map order, fires in one pass of the dense
//! kernel against its own class's set ([`BinaryDense`]'s
//! `fire_dense_with_limits`: the kernels take a set of limits a row), so
//! the border costs what the interior does, two rows to a weight load
//! whatever their classes. Firing the border after the interior, sorted
//! into classes, measured 7 % slower than `same` padding on an imported
//! MNIST CNN; popcounting the border rows again after firing every row as
//! `same`, 42 % slower (docs/IMPORT.md, "Speed"). The sparse kernel holds
//! its own thresholds, so under it the rows are popcounted and compared
//! with their class's limits outside the kernel. No kernel knows about
//! zero padding, only about sets of limits, so every kernel path is exact
//! by the same argument, and pooling the bits stays exact (each bit is the
//! threshold of its own position's dot, which is all the pooling argument
//! below needs).
//!
//! # Pooling on bits
//!
//! The trainer runs conv → 2×2 max pool → batch norm → sign. The engine
//! computes every conv position's output bit with the channel's folded
//! [`Threshold`] and pools the bits: OR for a channel whose threshold is not
//! flipped, AND for a flipped one. This is exact:
//!
//! - the batch norm and sign fold into `t.fires(d)` on the integer dot `d`
//!   ([`Threshold::from_batch_norm`]), and a max pool of `d + bias` is the
//!   max pool of `d` shifted by the bias, which the fold already holds;
//! - not flipped, `fires(d) = [d ≥ v]` is non-decreasing in `d`, so
//!   `fires(max dᵢ) = [max dᵢ ≥ v] = OR [dᵢ ≥ v] = OR fires(dᵢ)`;
//! - flipped (γ < 0), `fires(d) = [d ≤ v]` is non-increasing, so
//!   `fires(max dᵢ) = [max dᵢ ≤ v] = AND [dᵢ ≤ v] = AND fires(dᵢ)`;
//! - γ = 0 folds to a threshold out of reach, constant in `d`, where OR and
//!   AND agree.
//!
//! So pooling the bits equals pooling the dots before the threshold, which
//! is what the float reference does (`reference.rs`); the test
//! `bit_pooling_equals_pooling_the_dots` checks it for every dot and
//! threshold of small windows.
//!
//! # Kernels
//!
//! A binary convolution is bit im2col feeding the blocked XOR-popcount
//! kernels: one im2col row of `k·k·C` bits per output position (the `k`
//! runs of `k·C` bits each window row is in the map), and the filters as a
//! hidden [`BinaryDense`] over those rows, so it runs through the one
//! dispatch point ([`crate::kernel`]) with its 8 neurons per register and no
//! per-neuron horizontal sum. The rows of one image are few (196 for the
//! second convolution of `cnn-small`), so a tile of filters stays in L1
//! across all of them. When `C` is a multiple of 32 (as in `cnn-small`),
//! every window offset is a whole 32-bit half of a word: the map is copied
//! once into halves with −1 positions around it, and each im2col word is
//! two of those halves at offsets fixed per layer (`halves_im2col`), with
//! no bit shift across words and no branch on the border. Other channel
//! counts copy bit runs ([`crate::bits::or_bits`]). When `C` is a multiple
//! of 64 (every binary convolution of `cnv`) a window row is whole words:
//! one fixed-size copy of `k·C/64` words from the map itself (valid
//! padding) or from a copy with −1 words around it, which on `cnv` saves
//! the assembly of each word from two halves. Under the automatic layer
//! mode the convolutions run the dense kernel: the sparse choice counts
//! every im2col row's ones on each call, a cost that never paid back on
//! `weights/mnist-cnn-small.bnn`.
//!
//! A u8 first convolution has no im2col at all: the image is copied once
//! into a buffer with zero pixels around it, and the kernel
//! (`Kernel::pixel_rows_fire`) reads each window in place as `k` runs of
//! `k·C` bytes, each run read to a whole group of 4 pixels against zero
//! weights (see [`PixelDense`]'s `for_windows`). Four listed positions
//! at a time (two on AVX2), every group of 4 pixels is broadcast against 4
//! blocks of 16 filters whose sums stay in registers (`VPDPBUSD`, or
//! `VPMADDUBSW` + `VPMADDWD` on AVX2): the positions share each weight load
//! and their sums are independent chains that overlap, where one position
//! alone waited on its chain's latency. Zero groups are not skipped: the
//! branch followed the strokes and mispredicted, and a zero group costs
//! one multiply-add a block. The scalar reference still skips them.
//!
//! # Blank fields
//!
//! Each stage computes only the output positions whose receptive field
//! holds a non-zero pixel; the others take the bits the same position has
//! for the blank image (every pixel zero), computed once per model on first
//! use (`crate::blank` says why this is exact). A list, not a branch in a
//! kernel, does the skipping: the u8 kernel's four positions at a time are
//! any four listed ones, and a binary convolution's im2col rows are the
//! listed positions only, their output bits then copied into the blank
//! image's map. Skipping blank blocks of four neighbouring positions with a
//! branch inside the kernel lost (see the measurements below); the list costs a
//! few shifts and ORs a map row and one store a listed position. On the
//! MNIST test digits it leaves 32 % of the first convolution's positions
//! of `cnn-small` and 62 % of its second.
//!
//! Every variant above was measured on `cnn-small` and `cnv` before it was
//! kept or dropped; docs/PERFORMANCE.md ("CNNs: every variant measured")
//! has the figures and the commands that give them. What they taught:
//! the per-row calls of the dense pixel layer (listing each row's non-zero
//! groups, a dispatch, a store and reload of the sums) cost more than the
//! arithmetic of a 9-pixel window, and so did copying runs of 3 bytes into
//! im2col rows. A direct kernel for the binary convolutions was not
//! written: the XOR-popcount over im2col rows is already the arithmetic a
//! direct kernel would do, and the gather it saves would move into its
//! inner loop.

use crate::bits::{or_bits, words_for, BitMatrix, WORD_BITS};
use crate::blank::Live;
use crate::error::{Error, Result};
use crate::input::InputShape;
use crate::kernel::{Kernel, Spot};
use crate::layer::BinaryDense;
use crate::pixel::PixelDense;
use crate::sparse::LayerMode;
use crate::transform::{Threshold, Transform};

/// Largest kernel side accepted: far beyond what small images use, small
/// enough that a window stays a few hundred positions.
pub const MAX_KERNEL: usize = 15;
/// Most values in one activation map, and most weights in one filter row.
pub const MAX_MAP: usize = 1 << 24;
/// Most im2col values one convolution gathers for one image (output
/// positions × window): bounds the scratch memory a model can claim.
pub const MAX_IM2COL: usize = 1 << 26;

/// Zero bytes after each padded pixel row: a window's run is read to a
/// whole group of 4 pixels.
const PIXEL_SLACK: usize = 4;

/// How a convolution treats the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Pad `(k−1)/2` on each side: the output keeps the input's size.
    Same,
    /// No padding: the output is `(H−k+1)×(W−k+1)`.
    Valid,
    /// `same`'s geometry with padded positions read as 0 rather than −1, as
    /// PyTorch and ONNX pad a ±1 map: a border position's dot counts only
    /// its in-bounds window cells (see the module docs). On u8 pixels,
    /// which `same` already pads with 0, it is `same`.
    Zero,
}

impl Padding {
    /// The lowercase name reports and options use: `same`, `valid`, `zero`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
            Padding::Zero => "zero",
        }
    }

    /// Positions padded before the first row or column.
    pub fn before(self, k: usize) -> usize {
        match self {
            Padding::Same | Padding::Zero => (k - 1) / 2,
            Padding::Valid => 0,
        }
    }

    /// The output side for an input side, or `None` when the kernel does
    /// not fit.
    pub fn output_side(self, side: usize, k: usize) -> Option<usize> {
        match self {
            Padding::Same | Padding::Zero => Some(side),
            Padding::Valid => (side + 1).checked_sub(k).filter(|&s| s > 0),
        }
    }
}

impl std::str::FromStr for Padding {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "same" => Ok(Padding::Same),
            "valid" => Ok(Padding::Valid),
            "zero" => Ok(Padding::Zero),
            other => Err(Error::InvalidModel(format!(
                "unknown padding '{other}' (known: same, valid, zero)"
            ))),
        }
    }
}

impl std::fmt::Display for Padding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A binary 2-D convolution, stride 1: `out_channels` filters of `k×k×C`
/// ±1 weights, each followed by its folded batch-norm [`Threshold`].
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    k: usize,
    in_channels: usize,
    padding: Padding,
    /// The filters as a hidden dense layer over im2col rows.
    filters: BinaryDense,
}

impl Conv2d {
    /// `weights` is `out_channels × (k·k·in_channels)`, each row in
    /// `(ky, kx, c)` order (bit 1 = +1); `thresholds` has one entry per
    /// output channel, on the integer dot of the window (for a u8 first
    /// convolution, `Σ p·w` with `p` in 0..=255).
    ///
    /// Build the weights with [`BitMatrix::from_pm1`] (±1 `i8`) or
    /// [`BitMatrix::from_signs`] (latent f32 weights by sign), and fold each
    /// channel's batch norm (which follows the optional pool: the fold
    /// applies to the pooled dot, see the module docs) by
    /// [`Threshold::from_batch_norm`] with `inputs` the window
    /// `k·k·in_channels` on bits, or [`PixelDense::dot_bound`] of it on u8
    /// pixels.
    pub fn new(
        k: usize,
        in_channels: usize,
        padding: Padding,
        weights: BitMatrix,
        thresholds: Vec<Threshold>,
    ) -> Result<Self> {
        check_kernel(k).map_err(Error::InvalidModel)?;
        let window = k
            .checked_mul(k)
            .and_then(|kk| kk.checked_mul(in_channels))
            .filter(|&w| in_channels >= 1 && w <= MAX_MAP)
            .ok_or_else(|| {
                Error::InvalidModel(format!(
                    "convolution of {in_channels} input channels out of range 1..={}",
                    MAX_MAP / (k * k)
                ))
            })?;
        if weights.cols() != window {
            return Err(Error::InvalidModel(format!(
                "convolution {k}x{k} over {in_channels} channels needs rows of {window} weights, got {}",
                weights.cols()
            )));
        }
        Ok(Conv2d {
            k,
            in_channels,
            padding,
            filters: BinaryDense::hidden(weights, thresholds)?,
        })
    }

    /// The kernel side `k` (odd, at most [`MAX_KERNEL`]).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Channels of the input map: the `C` of each window's `k·k·C` bits.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Filters, hence channels of the output map.
    pub fn out_channels(&self) -> usize {
        self.filters.outputs()
    }

    /// How the border is treated (see the module docs).
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// Weights per filter: `k·k·in_channels`.
    pub fn window(&self) -> usize {
        self.filters.inputs()
    }

    /// The filters, `out_channels × window`, rows in `(ky, kx, c)` order.
    pub fn weights(&self) -> BitMatrix {
        self.filters.weights()
    }

    /// One threshold per filter: when its output position is +1.
    pub fn thresholds(&self) -> &[Threshold] {
        match self.filters.transform() {
            Transform::Sign(t) => t,
            Transform::Scores(_) => unreachable!("filters are built hidden"),
        }
    }

    /// The thresholds as a [`Transform::Sign`], as dense layers hold them.
    pub fn transform(&self) -> &Transform {
        self.filters.transform()
    }

    /// Bytes the filters hold in memory (see [`BinaryDense::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        self.filters.memory_bytes()
    }
}

fn check_kernel(k: usize) -> std::result::Result<(), String> {
    if k.is_multiple_of(2) || !(1..=MAX_KERNEL).contains(&k) {
        return Err(format!("kernel size {k} is not odd in 1..={MAX_KERNEL}"));
    }
    Ok(())
}

/// The im2col of a map of whole channel words whose windows are `k` rows
/// of `RUN` words each (`k` positions), `line` words apart: row `i` of
/// `cols` is the window of `spots[i]` (its `base` in 32-bit halves).
fn words_im2col<const RUN: usize>(
    map: &[u64],
    (k, line): (usize, usize),
    spots: &[Spot],
    cols: &mut [u64],
) {
    for (dst, spot) in cols.chunks_exact_mut(k * RUN).zip(spots) {
        let first = spot.base as usize / 2;
        for (ky, d) in dst.chunks_exact_mut(RUN).enumerate() {
            let d: &mut [u64; RUN] = d.try_into().expect("chunks of RUN words");
            let from = first + ky * line;
            *d = map[from..from + RUN]
                .try_into()
                .expect("a window row inside the map");
        }
    }
}

/// One entry of the layer list [`crate::Model::from_layers`] takes.
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    /// A convolution; its input channels must match the map it receives.
    Conv(Conv2d),
    /// 2×2 max pooling, stride 2 (an odd last row or column is dropped);
    /// only directly after a convolution.
    MaxPool,
    /// A dense layer; after a convolution it takes the map flattened in
    /// NHWC order.
    Dense(BinaryDense),
}

/// What flows between layers: a map, or a flat vector after a dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Map(InputShape),
    Flat(usize),
}

/// Walks a layer list's shapes, checking that they chain: the one place
/// that judges shapes, for models built in memory and for file headers.
pub(crate) struct Shapes {
    flow: Flow,
    after_conv: bool,
    /// The layer about to be checked, from 1.
    n: usize,
}

impl Shapes {
    pub fn new(input: InputShape) -> Self {
        Shapes {
            flow: Flow::Map(input),
            after_conv: false,
            n: 1,
        }
    }

    pub fn flow(&self) -> Flow {
        self.flow
    }

    /// A convolution; returns its input map shape and its window length.
    pub fn conv(
        &mut self,
        k: usize,
        padding: Padding,
        channels: usize,
    ) -> std::result::Result<(InputShape, usize), String> {
        let n = self.n;
        let Flow::Map(input) = self.flow else {
            return Err(format!(
                "layer {n}: a convolution cannot follow a dense layer"
            ));
        };
        check_kernel(k).map_err(|e| format!("layer {n}: {e}"))?;
        let (h, w, c) = dims(input);
        let (Some(ho), Some(wo)) = (padding.output_side(h, k), padding.output_side(w, k)) else {
            return Err(format!(
                "layer {n}: a {k}x{k} valid convolution does not fit a {h}x{w} map"
            ));
        };
        let window = k * k * c;
        let out_len = (ho * wo).checked_mul(channels);
        if channels == 0 || out_len.is_none_or(|l| l > MAX_MAP) || window > MAX_MAP {
            return Err(format!(
                "layer {n}: {channels} channels of {ho}x{wo} over windows of {window} exceed the limits (1..={MAX_MAP} values a map and a window)"
            ));
        }
        if (ho * wo).saturating_mul(window) > MAX_IM2COL {
            return Err(format!(
                "layer {n}: {ho}x{wo} windows of {window} values exceed {MAX_IM2COL} values per image"
            ));
        }
        self.flow = Flow::Map(InputShape::new(ho as u32, wo as u32, channels as u32));
        self.after_conv = true;
        self.n += 1;
        Ok((input, window))
    }

    pub fn pool(&mut self) -> std::result::Result<(), String> {
        let n = self.n;
        let Flow::Map(input) = self.flow else {
            return Err(format!("layer {n}: max pooling must follow a convolution"));
        };
        if !self.after_conv {
            return Err(format!("layer {n}: max pooling must follow a convolution"));
        }
        let (h, w, c) = dims(input);
        if h < 2 || w < 2 {
            return Err(format!(
                "layer {n}: 2x2 max pooling needs a map of at least 2x2, got {h}x{w}"
            ));
        }
        self.flow = Flow::Map(InputShape::new((h / 2) as u32, (w / 2) as u32, c as u32));
        self.after_conv = false;
        self.n += 1;
        Ok(())
    }

    /// A dense layer; returns the inputs it must take.
    pub fn dense(&mut self, outputs: usize) -> std::result::Result<usize, String> {
        let n = self.n;
        if outputs == 0 || outputs > MAX_MAP {
            return Err(format!(
                "layer {n} has {outputs} neurons, out of range 1..={MAX_MAP}"
            ));
        }
        let inputs = flow_len(self.flow);
        self.flow = Flow::Flat(outputs);
        self.after_conv = false;
        self.n += 1;
        Ok(inputs)
    }
}

fn dims(s: InputShape) -> (usize, usize, usize) {
    (s.height as usize, s.width as usize, s.channels as usize)
}

fn flow_len(flow: Flow) -> usize {
    match flow {
        Flow::Map(s) => s.len().expect("maps are checked to fit"),
        Flow::Flat(n) => n,
    }
}

/// A convolution placed in a model: its input and output shapes, whether a
/// 2×2 max pool follows, and the form it runs in.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvStage {
    conv: Conv2d,
    /// The first convolution of a u8-input model, over pixel values.
    pixels: Option<PixelDense>,
    pooled: bool,
    input: InputShape,
    /// The convolution's output, before pooling.
    conv_shape: InputShape,
    output: InputShape,
    /// Bit `c` set for each channel whose threshold is flipped: those pool
    /// with AND, the others with OR.
    flips: Vec<u64>,
    /// For a bit map of whole 32-bit channel groups: where the two halves
    /// of each im2col word lie in the padded map of halves, relative to
    /// the window's first (see `halves_im2col`); empty otherwise.
    pairs: Vec<[usize; 2]>,
    /// The last word's one half, when the window has an odd count of them.
    tail: Option<usize>,
    /// For zero padding of a bit map: the border positions' corrections.
    zero: Option<ZeroBorder>,
}

/// Border positions of a zero-padded bit-map convolution, and each
/// filter's threshold there as a popcount limit: the dot gains `fix`, the
/// `Σ w` over the window cells that fall outside the map, over `same`'s −1
/// padding (see the module docs), so `t.fires(dot + fix)` is the threshold
/// `t.value − fix` on the dot the kernels popcount.
#[derive(Clone, Debug, PartialEq)]
struct ZeroBorder {
    /// Per output position, in map order: its class, `rc·cols + cc` for
    /// its class `rc` of window rows outside, its class `cc` of window
    /// columns outside (each 0 for none) and `cols` column classes, so
    /// class 0 is the interior. A table, not a division by the map's
    /// width: naming a position's class costs a load.
    class: Vec<u16>,
    /// Per class, the filters' popcount limits in the kernels' layout
    /// ([`BinaryDense::limits_of`], one set after another; class 0's are
    /// the filters' own): filter `f` fires there iff `(popcount ≤ limit)
    /// ≠ flip`.
    limits: Vec<i64>,
    /// Limits a class: the filters rounded up to whole kernel blocks.
    padded: usize,
}

/// Rows popcounted at a time under the sparse kernel: bounds the scratch
/// to a few rows.
const BORDER_CHUNK: usize = 64;

impl ZeroBorder {
    /// The corrections of `conv` (zero-padded) on an `h×w` map with an
    /// `ho×wo` output. A class is a pair (cells outside before, cells
    /// outside after) along one side; class 0 is (0, 0). Their count is at
    /// most `min(side, k)` a side, so `fix` holds at most `ho·wo·N` values,
    /// which [`Shapes`] bounds by [`MAX_MAP`].
    fn new(conv: &Conv2d, (h, w): (usize, usize), (ho, wo): (usize, usize)) -> Self {
        let (k, c) = (conv.k, conv.in_channels);
        let pad = conv.padding.before(k);
        // Cells outside before and after, for output index `o` of a side
        // of `n` inputs.
        let outside = |o: usize, n: usize| (pad.saturating_sub(o), (o + k).saturating_sub(pad + n));
        let classes = |out: usize, n: usize| {
            let mut kinds = vec![(0usize, 0usize)];
            let index: Vec<u32> = (0..out)
                .map(|o| {
                    let kind = outside(o, n);
                    let at = kinds.iter().position(|&x| x == kind).unwrap_or_else(|| {
                        kinds.push(kind);
                        kinds.len() - 1
                    });
                    at as u32
                })
                .collect();
            (index, kinds)
        };
        let (row_class, row_kinds) = classes(ho, h);
        let (col_class, col_kinds) = classes(wo, w);
        let weights = conv.weights();
        // Per class, the shifted thresholds, filter by filter.
        let classes = row_kinds.len() * col_kinds.len();
        let mut shifted = vec![Vec::with_capacity(conv.out_channels()); classes];
        // Per filter, prefix sums of its cells' ±1 sums over the k×k grid:
        // `sums[(y·(k+1) + x)]` = Σ over cells above y and left of x.
        let side = k + 1;
        let mut sums = vec![0i32; side * side];
        for (f, &t) in conv.thresholds().iter().enumerate() {
            let row = weights.row(f);
            for ky in 0..k {
                for kx in 0..k {
                    let from = (ky * k + kx) * c;
                    let ones = (from..from + c)
                        .filter(|&i| row[i / WORD_BITS] >> (i % WORD_BITS) & 1 == 1)
                        .count() as i32;
                    let cell = 2 * ones - c as i32;
                    sums[(ky + 1) * side + kx + 1] =
                        cell + sums[ky * side + kx + 1] + sums[(ky + 1) * side + kx]
                            - sums[ky * side + kx];
                }
            }
            let total = sums[k * side + k];
            for (rc, &(top, bottom)) in row_kinds.iter().enumerate() {
                for (cc, &(left, right)) in col_kinds.iter().enumerate() {
                    // In-bounds cells: rows top..k−bottom, columns
                    // left..k−right (empty when the window overhangs the
                    // whole map).
                    let (y0, y1) = (top.min(k), k.saturating_sub(bottom).max(top.min(k)));
                    let (x0, x1) = (left.min(k), k.saturating_sub(right).max(left.min(k)));
                    let inside = sums[y1 * side + x1] - sums[y0 * side + x1] - sums[y1 * side + x0]
                        + sums[y0 * side + x0];
                    let fix = total - inside;
                    // |fix| is at most the window: a value that saturates
                    // was out of reach of every dot before and still is,
                    // and the limit clamps to the same end.
                    shifted[rc * col_kinds.len() + cc].push(Threshold {
                        value: t.value.saturating_sub(fix),
                        flip: t.flip,
                    });
                }
            }
        }
        let filters = &conv.filters;
        let limits = shifted.into_iter().flat_map(|set| filters.limits_of(set));
        let class = (0..ho * wo).map(|o| {
            let (rc, cc) = (row_class[o / wo] as usize, col_class[o % wo] as usize);
            // A side has at most (pad + 1)² ≤ 64 classes.
            (rc * col_kinds.len() + cc) as u16
        });
        ZeroBorder {
            class: class.collect(),
            limits: limits.collect(),
            padded: filters.padded_outputs(),
        }
    }

    /// The popcount limits of `class`, in the kernels' layout.
    fn limits(&self, class: u16) -> &[i64] {
        &self.limits[usize::from(class) * self.padded..][..self.padded]
    }

    /// The class of each of `spots`, in `sets`: the set of limits each
    /// fires against.
    fn sets_of(&self, spots: &[Spot], sets: &mut Vec<u16>) {
        sets.clear();
        sets.extend(spots.iter().map(|spot| self.class[spot.row as usize]));
    }

    fn memory_bytes(&self) -> usize {
        2 * self.class.len() + 8 * self.limits.len()
    }
}

/// Reusable buffers of the convolutions of one image.
#[derive(Default)]
pub(crate) struct ConvScratch {
    cols: Vec<u64>,
    /// The image with zero pixels around it (see `pad_pixels`).
    padded: Vec<u8>,
    /// A bit map of whole 32-bit channel groups with −1 positions around
    /// it (see `halves_im2col`).
    halves: Vec<u32>,
    /// A bit map of whole 64-bit channel words with −1 positions around it
    /// (see `halves_im2col`).
    words: Vec<u64>,
    fired: Vec<u64>,
    pooled: Vec<u64>,
    /// The positions of the current map that may differ from the blank
    /// image's, and the output positions computed.
    live: Live,
    spots: Vec<Spot>,
    /// The computed positions' output bits, before they join the blank
    /// ones.
    compact: Vec<u64>,
    /// Zero padding: each listed position's class, and popcounts when
    /// the sparse kernel runs (see `ZeroBorder`).
    sets: Vec<u16>,
    border_pops: Vec<u32>,
}

impl ConvScratch {
    /// The last convolution's output bits, before pooling.
    pub(crate) fn fired(&self) -> &[u64] {
        &self.fired
    }

    /// Starts an image of shape `shape` through the convolutions: only the
    /// positions whose field holds a non-zero pixel are computed, or every
    /// position when `skip_blank` is false (the blank image's own run).
    pub(crate) fn begin(
        &mut self,
        kernel: Kernel,
        image: &[u8],
        shape: InputShape,
        skip_blank: bool,
    ) {
        if skip_blank {
            self.live.of_pixels(kernel, image, dims(shape));
        } else {
            self.live.everything();
        }
    }
}

impl ConvStage {
    /// Places `conv` on a map of shape `input` (already checked by
    /// [`Shapes`]); `pixel_input` for the first convolution of a u8 model.
    pub(crate) fn new(
        conv: Conv2d,
        pixel_input: bool,
        pooled: bool,
        input: InputShape,
        conv_shape: InputShape,
    ) -> Result<Self> {
        let pixels = if pixel_input {
            let (k, c) = (conv.k(), input.channels as usize);
            let thresholds = conv.thresholds().to_vec();
            Some(PixelDense::for_windows(
                &conv.weights(),
                thresholds,
                k,
                k * c,
            )?)
        } else {
            None
        };
        let output = if pooled {
            InputShape::new(
                conv_shape.height / 2,
                conv_shape.width / 2,
                conv_shape.channels,
            )
        } else {
            conv_shape
        };
        let mut flips = vec![0u64; words_for(conv.out_channels())];
        for (c, t) in conv.thresholds().iter().enumerate() {
            flips[c / WORD_BITS] |= u64::from(t.flip) << (c % WORD_BITS);
        }
        let (pairs, tail) = if pixel_input || !input.channels.is_multiple_of(32) {
            (Vec::new(), None)
        } else {
            let (_, w, c) = dims(input);
            let (k, units) = (conv.k(), c / 32);
            let wp = w + 2 * conv.padding().before(k);
            let run = k * units;
            let at = |t: usize| t / run * wp * units + t % run;
            let halves = k * run;
            let pairs = (0..halves / 2).map(|m| [at(2 * m), at(2 * m + 1)]);
            (pairs.collect(), (halves % 2 == 1).then(|| at(halves - 1)))
        };
        let zero = (conv.padding == Padding::Zero && !pixel_input).then(|| {
            let (h, w, _) = dims(input);
            let (ho, wo, _) = dims(conv_shape);
            ZeroBorder::new(&conv, (h, w), (ho, wo))
        });
        Ok(ConvStage {
            conv,
            pixels,
            pooled,
            input,
            conv_shape,
            output,
            flips,
            pairs,
            tail,
            zero,
        })
    }

    /// The convolution itself, without the pooling and shapes around it.
    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// Whether this convolution takes u8 pixel values (the first of a
    /// u8-input model).
    pub fn takes_pixels(&self) -> bool {
        self.pixels.is_some()
    }

    /// Whether a 2×2 max pool follows.
    pub fn pooled(&self) -> bool {
        self.pooled
    }

    /// The map this stage reads: the image, or the previous stage's output.
    pub fn input_shape(&self) -> InputShape {
        self.input
    }

    /// The convolution's output shape, before any pooling.
    pub fn conv_shape(&self) -> InputShape {
        self.conv_shape
    }

    /// The shape this stage hands on (after pooling, if any).
    pub fn output_shape(&self) -> InputShape {
        self.output
    }

    /// Values (bits) of [`ConvStage::output_shape`]: what the next stage
    /// or the first dense layer reads.
    pub fn output_len(&self) -> usize {
        self.output.len().expect("checked by Shapes")
    }

    /// Words of the convolution's output before pooling: `ow` words a
    /// position.
    pub(crate) fn fired_words(&self) -> usize {
        let (ho, wo, n) = dims(self.conv_shape);
        ho * wo * words_for(n)
    }

    /// Bytes the stage holds in memory: the filters, the pixel copy of a
    /// u8-input stage, the flip masks and the zero-padding corrections.
    pub fn memory_bytes(&self) -> usize {
        self.conv.memory_bytes()
            + self.pixels.as_ref().map_or(0, |p| p.memory_bytes())
            + 8 * self.flips.len()
            + self.zero.as_ref().map_or(0, ZeroBorder::memory_bytes)
    }

    /// One image's output map: from a bit map `x` (`input` bits) or, for a
    /// pixel stage, from `pixels`; `out` has `words_for(output_len)` words.
    /// Only the positions `s.live` marks are computed; the others take
    /// their bits from `blank`, the convolution's bits (before pooling) for
    /// the blank image, unused when every position is live. `s.live` moves
    /// on to the output map, and `s.fired` keeps the convolution's bits
    /// before pooling.
    pub(crate) fn run(
        &self,
        kernel: Kernel,
        (x, pixels): (&[u64], &[u8]),
        blank: &[u64],
        s: &mut ConvScratch,
        out: &mut [u64],
    ) {
        let (ho, wo, n) = dims(self.conv_shape);
        let rows = ho * wo;
        let ow = words_for(n);
        let k = self.conv.k;
        s.live.convolve(k, self.conv.padding.before(k), (ho, wo));
        match &self.pixels {
            Some(layer) => {
                let (step, line) = self.pad_pixels(pixels, &mut s.padded);
                let n = s
                    .live
                    .spots((ho, wo), |oy, ox| oy * line + ox * step, &mut s.spots);
                self.start_fired(n == rows, blank, &mut s.fired);
                layer.fire_windows(kernel, &s.padded, &s.spots[..n], line, k, &mut s.fired);
            }
            None => {
                let (_, w, c) = dims(self.input);
                let (units, wp) = (c / 32, w + 2 * self.conv.padding.before(k));
                let live = s
                    .live
                    .spots((ho, wo), |oy, ox| (oy * wp + ox) * units, &mut s.spots);
                let spots = &s.spots[..live];
                let rw = words_for(self.conv.window());
                if self.input.channels.is_multiple_of(32) {
                    // Every word is written: no clearing.
                    s.cols.resize(live * rw, 0);
                    let buffers = (&mut s.halves, &mut s.words);
                    self.halves_im2col(x, spots, buffers, &mut s.cols[..live * rw]);
                } else {
                    s.cols.clear();
                    s.cols.resize(live * rw, 0);
                    let cols = &mut s.cols;
                    self.windows(spots, |row, from, to, len| {
                        or_bits(x, from, &mut cols[row * rw..(row + 1) * rw], to, len);
                    });
                }
                // The sparse kernel's choice counts the ones of every
                // im2col row on each call, and on `cnn-small`'s trained
                // maps it keeps the dense kernel anyway (see the module
                // docs): only a forced mode reaches it.
                let mode = match LayerMode::active() {
                    LayerMode::Auto => LayerMode::Dense,
                    forced => forced,
                };
                let every = live == rows;
                self.start_fired(every, blank, &mut s.fired);
                // Every position, in map order: its rows are the map's.
                let fired = if every { &mut s.fired } else { &mut s.compact };
                fired.resize(live * ow, 0);
                let filters = &self.conv.filters;
                match &self.zero {
                    None => filters.fire_with(kernel, mode, &s.cols, live, fired),
                    Some(zero) => {
                        zero.sets_of(spots, &mut s.sets);
                        let rows = (&s.cols[..], live);
                        self.fire_zero(
                            kernel,
                            mode,
                            zero,
                            rows,
                            (&s.sets, &mut s.border_pops),
                            fired,
                        );
                    }
                }
                if !every {
                    scatter(spots, &s.compact, ow, &mut s.fired);
                }
            }
        }
        let positions = if self.pooled {
            pool_bits(&s.fired, (ho, wo), ow, &self.flips, &mut s.pooled);
            s.live.pool();
            &s.pooled
        } else {
            &s.fired
        };
        pack_positions(positions, ow, n, out);
    }

    /// Zero padding: the output bits of `rows` im2col rows, row `r` of
    /// class `sets[r]` (0 for the interior), each against its class's
    /// popcount limits. The dense kernel takes a set of limits a row, so
    /// the border fires in the same pass as the interior, two rows to a
    /// weight load whatever their classes. The sparse kernel holds its own
    /// thresholds: there the rows are popcounted and compared with their
    /// class's limits here, 64 filters to a word built in a register.
    /// Either way each position is popcounted once.
    fn fire_zero(
        &self,
        kernel: Kernel,
        mode: LayerMode,
        zero: &ZeroBorder,
        (cols, rows): (&[u64], usize),
        (sets, pops): (&[u16], &mut Vec<u32>),
        fired: &mut [u64],
    ) {
        let filters = &self.conv.filters;
        if filters.runs_dense(kernel, mode) {
            let limits = (&zero.limits[..], sets);
            return filters.fire_dense_with_limits(kernel, (cols, rows), limits, fired);
        }
        let (ow, padded) = (filters.output_words(), filters.padded_outputs());
        let rw = words_for(self.conv.window());
        for at in (0..rows).step_by(BORDER_CHUNK) {
            let chunk = (rows - at).min(BORDER_CHUNK);
            pops.clear();
            pops.resize(chunk * padded, 0);
            filters.popcounts_with(kernel, mode, &cols[at * rw..], chunk, pops);
            let out = fired[at * ow..(at + chunk) * ow].chunks_exact_mut(ow);
            for ((p, out), &set) in pops.chunks_exact(padded).zip(out).zip(&sets[at..]) {
                let words = p.chunks(WORD_BITS).zip(zero.limits(set).chunks(WORD_BITS));
                for ((word, &flips), (p, l)) in out.iter_mut().zip(&self.flips).zip(words) {
                    let below = p
                        .iter()
                        .zip(l)
                        .enumerate()
                        .fold(0u64, |acc, (j, (&pop, &lim))| {
                            acc | u64::from(i64::from(pop) <= lim) << j
                        });
                    *word = below ^ flips;
                }
            }
        }
    }

    /// Readies `fired` for the computed positions: zeros to overwrite when
    /// `every` position is computed, else the blank image's bits.
    fn start_fired(&self, every: bool, blank: &[u64], fired: &mut Vec<u64>) {
        fired.clear();
        if every {
            fired.resize(self.fired_words(), 0);
        } else {
            assert_eq!(blank.len(), self.fired_words(), "blank map size");
            fired.extend_from_slice(blank);
        }
    }

    /// Copies one image into `padded` with zero pixels around it (the
    /// convolution's padding on every side, and 4 more bytes a row so that
    /// a window's last run may be read to a whole group of 4); returns the
    /// bytes per position and per padded row. A window is then `k` runs of
    /// `k·C` bytes, one per padded row, read in place with no im2col copy.
    fn pad_pixels(&self, pixels: &[u8], padded: &mut Vec<u8>) -> (usize, usize) {
        let (h, w, c) = dims(self.input);
        let pad = self.conv.padding.before(self.conv.k);
        let line = (w + 2 * pad) * c + PIXEL_SLACK;
        padded.clear();
        padded.resize((h + 2 * pad) * line, 0);
        for y in 0..h {
            padded[(y + pad) * line + pad * c..][..w * c]
                .copy_from_slice(&pixels[y * w * c..][..w * c]);
        }
        (c, line)
    }

    /// The bit im2col of a map whose channels fill whole 32-bit halves of
    /// words: every window offset is then a multiple of 32 bits, so the map
    /// is copied once into `halves` with −1 (zero) positions around it, and
    /// each im2col word is two halves of it at offsets from the window's
    /// first that are the same for every position (`pairs`, `tail`): two
    /// loads and a store a word, no shift across words, no branch on the
    /// border. Row `i` of `cols` is `spots[i]`'s window (its `base`, in
    /// halves), and every word of it is written.
    ///
    /// Channels in whole 64-bit words (`C` a multiple of 64, as in every
    /// binary convolution of `cnv`) need no halves: each window row is `k`
    /// positions of whole words, one slice copy, read from the map itself
    /// under valid padding or from a copy of it with −1 words around it
    /// (`words`). Assembling each word from two halves, with a bounds check
    /// a half, cost `cnv` about a tenth of its time.
    fn halves_im2col(
        &self,
        x: &[u64],
        spots: &[Spot],
        (halves, words): (&mut Vec<u32>, &mut Vec<u64>),
        cols: &mut [u64],
    ) {
        let (h, w, c) = dims(self.input);
        let k = self.conv.k;
        let pad = self.conv.padding.before(k);
        let wp = w + 2 * pad;
        if c.is_multiple_of(64) {
            let units = c / 64;
            let map: &[u64] = if pad == 0 {
                &x[..h * w * units]
            } else {
                words.clear();
                words.resize((h + 2 * pad) * wp * units, 0);
                for y in 0..h {
                    words[((y + pad) * wp + pad) * units..][..w * units]
                        .copy_from_slice(&x[y * w * units..][..w * units]);
                }
                words
            };
            // A run of a few words is copied by fixed-size moves: as a
            // slice copy it was a call to `memcpy` per run, 6 % of `cnv`.
            match k * units {
                3 => words_im2col::<3>(map, (k, wp * units), spots, cols),
                6 => words_im2col::<6>(map, (k, wp * units), spots, cols),
                12 => words_im2col::<12>(map, (k, wp * units), spots, cols),
                run => {
                    for (dst, spot) in cols.chunks_exact_mut(k * run).zip(spots) {
                        // `base` counts halves; two a word here.
                        let first = spot.base as usize / 2;
                        for (ky, d) in dst.chunks_exact_mut(run).enumerate() {
                            d.copy_from_slice(&map[first + ky * wp * units..][..run]);
                        }
                    }
                }
            }
            return;
        }
        let units = c / 32;
        halves.clear();
        halves.resize((h + 2 * pad) * wp * units, 0);
        for y in 0..h {
            let row = &mut halves[((y + pad) * wp + pad) * units..][..w * units];
            for (i, half) in row.iter_mut().enumerate() {
                let at = y * w * units + i;
                *half = (x[at / 2] >> (32 * (at % 2))) as u32;
            }
        }
        let rw = words_for(self.conv.window());
        for (dst, spot) in cols.chunks_exact_mut(rw).zip(spots) {
            let window = &halves[spot.base as usize..];
            for (word, &[lo, hi]) in dst.iter_mut().zip(&self.pairs) {
                *word = u64::from(window[lo]) | u64::from(window[hi]) << 32;
            }
            if let Some(last) = self.tail {
                dst[rw - 1] = u64::from(window[last]);
            }
        }
    }

    /// Calls `copy(row, from, to, len)` for every run of input bits that
    /// the window of `spots[row]` takes: `len` bits from map index `from`
    /// to window index `to` of im2col row `row`. Padded positions are never
    /// named: their bits stay 0, which is −1.
    fn windows(&self, spots: &[Spot], mut copy: impl FnMut(usize, usize, usize, usize)) {
        let (h, w, c) = dims(self.input);
        let wo = dims(self.conv_shape).1;
        let k = self.conv.k;
        let pad = self.conv.padding.before(k);
        for (row, spot) in spots.iter().enumerate() {
            let (oy, ox) = (spot.row as usize / wo, spot.row as usize % wo);
            // Window columns kx with 0 <= ox + kx - pad < w.
            let kx_lo = pad.saturating_sub(ox);
            let kx_hi = k.min(w + pad - ox);
            let ix = ox + kx_lo - pad;
            for ky in 0..k {
                let Some(iy) = (oy + ky).checked_sub(pad).filter(|&iy| iy < h) else {
                    continue;
                };
                copy(
                    row,
                    (iy * w + ix) * c,
                    (ky * k + kx_lo) * c,
                    (kx_hi - kx_lo) * c,
                );
            }
        }
    }
}

/// Packs per-position output rows (`ow` words each, `n` bits used) into one
/// continuous bit stream of `out.len()` words: the map in NHWC order.
fn pack_positions(positions: &[u64], ow: usize, n: usize, out: &mut [u64]) {
    if n.is_multiple_of(WORD_BITS) {
        out.copy_from_slice(&positions[..out.len()]);
    } else if n.is_multiple_of(32) {
        // Whole halves: paired into words in a register, not a
        // shifted OR per position.
        let units = n / 32;
        let mut halves = positions
            .chunks_exact(ow)
            .flat_map(|p| (0..units).map(move |u| (p[u / 2] >> (32 * (u % 2))) as u32));
        for word in out.iter_mut() {
            let low = halves.next().unwrap_or(0);
            *word = u64::from(low) | u64::from(halves.next().unwrap_or(0)) << 32;
        }
    } else {
        out.fill(0);
        for (p, words) in positions.chunks_exact(ow).enumerate() {
            or_bits(words, 0, out, p * n, n);
        }
    }
}

/// Copies row `i` of `compact` (`ow` words a row) to position
/// `spots[i].row` of `fired`. One word a position (at most 64 filters, as
/// in every MNIST CNN here) is a plain store, where a slice copy of
/// unknown length is a call to `memcpy` a position.
fn scatter(spots: &[Spot], compact: &[u64], ow: usize, fired: &mut [u64]) {
    if ow == 1 {
        for (spot, &bits) in spots.iter().zip(compact) {
            fired[spot.row as usize] = bits;
        }
        return;
    }
    for (spot, bits) in spots.iter().zip(compact.chunks_exact(ow)) {
        fired[spot.row as usize * ow..][..ow].copy_from_slice(bits);
    }
}

/// 2×2 max pooling, stride 2, of a conv's output bits (`ow` words per
/// position, `ho×wo` positions): OR per channel, AND where `flips` is set
/// (see the module docs for why this is exact).
fn pool_bits(
    fired: &[u64],
    (ho, wo): (usize, usize),
    ow: usize,
    flips: &[u64],
    out: &mut Vec<u64>,
) {
    let (hp, wp) = (ho / 2, wo / 2);
    out.clear();
    out.resize(hp * wp * ow, 0);
    // Row pairs, then column pairs of each (an odd last row or column is
    // left out by `chunks_exact`): slices, not an index per position.
    let rows = fired.chunks_exact(2 * wo * ow).take(hp);
    for (pair, line) in rows.zip(out.chunks_exact_mut(wp * ow)) {
        let (top, bottom) = pair.split_at(wo * ow);
        let windows = top.chunks_exact(2 * ow).zip(bottom.chunks_exact(2 * ow));
        for ((t, b), o) in windows.zip(line.chunks_exact_mut(ow)) {
            for j in 0..ow {
                let (a, b, c, d) = (t[j], t[ow + j], b[j], b[ow + j]);
                let any = a | b | c | d;
                let all = a & b & c & d;
                o[j] = (any & !flips[j]) | (all & flips[j]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pooling the threshold bits (OR, or AND where flipped) gives the bit
    /// of the pooled dot, for every window of dots and every threshold.
    #[test]
    fn bit_pooling_equals_pooling_the_dots() {
        let dots = -3..=3;
        for v in -5..=5 {
            for t in [Threshold::at_least(v), Threshold::at_most(v)] {
                for a in dots.clone() {
                    for b in dots.clone() {
                        for c in dots.clone() {
                            for d in dots.clone() {
                                let max = a.max(b).max(c).max(d);
                                let bits = [a, b, c, d].map(|x| u64::from(t.fires(x)));
                                let flips = [u64::from(t.flip)];
                                let mut out = Vec::new();
                                pool_bits(&bits, (2, 2), 1, &flips, &mut out);
                                assert_eq!(out, [u64::from(t.fires(max))], "{t:?} {a} {b} {c} {d}");
                            }
                        }
                    }
                }
            }
        }
    }

    /// The im2col of whole 32-bit channel groups (and of whole 64-bit
    /// words, its own path) equals the bit-run copy, for several groups a
    /// position, every kernel size, both paddings and odd map sides.
    #[test]
    fn halves_im2col_equals_bit_runs() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for (c, k, padding) in [
            (32, 3, Padding::Same),
            (32, 3, Padding::Valid),
            (64, 1, Padding::Same),
            (96, 5, Padding::Same),
            (64, 5, Padding::Valid),
            (128, 3, Padding::Same),
            (64, 3, Padding::Valid),
            (256, 3, Padding::Valid),
            (192, 1, Padding::Valid),
        ] {
            let (h, w) = (7, 5);
            let input = InputShape::new(h, w, c as u32);
            let (ho, wo) = (
                padding.output_side(h as usize, k).unwrap(),
                padding.output_side(w as usize, k).unwrap(),
            );
            let conv_shape = InputShape::new(ho as u32, wo as u32, 3);
            let weights = BitMatrix::new(3, k * k * c);
            let conv = Conv2d::new(k, c, padding, weights, vec![Threshold::at_least(0); 3]);
            let stage = ConvStage::new(conv.unwrap(), false, false, input, conv_shape).unwrap();
            let x: Vec<u64> = (0..words_for(h as usize * w as usize * c))
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed
                })
                .collect();
            let rw = words_for(k * k * c);
            // Some positions, as a blank-field list leaves them.
            let (units, wp) = (c / 32, w as usize + 2 * padding.before(k));
            let spots: Vec<Spot> = (0..ho * wo)
                .filter(|r| r % 3 != 1)
                .map(|r| Spot {
                    row: r as u32,
                    base: ((r / wo * wp + r % wo) * units) as u32,
                })
                .collect();
            let mut runs = vec![0u64; spots.len() * rw];
            stage.windows(&spots, |row, from, to, len| {
                or_bits(&x, from, &mut runs[row * rw..(row + 1) * rw], to, len);
            });
            let mut halves = vec![0u64; spots.len() * rw];
            let buffers = (&mut Vec::new(), &mut Vec::new());
            stage.halves_im2col(&x, &spots, buffers, &mut halves);
            assert_eq!(halves, runs, "C {c}, k {k}, {padding}");
            assert!(runs.iter().any(|&v| v != 0));
        }
    }

    /// Packing whole words, whole halves or any other channel count gives
    /// the bit-run copy of each position's `n` bits.
    #[test]
    fn packed_positions_equal_bit_runs() {
        for n in [32, 64, 96, 128, 160, 7, 70] {
            let ow = words_for(n);
            let count = 5;
            let positions: Vec<u64> = (0..count * ow as u64)
                .map(|i| {
                    (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        & if (i as usize + 1).is_multiple_of(ow) {
                            crate::bits::tail_mask(n - (ow - 1) * 64)
                        } else {
                            !0
                        }
                })
                .collect();
            let mut want = vec![0u64; words_for(count as usize * n)];
            for (p, words) in positions.chunks_exact(ow).enumerate() {
                or_bits(words, 0, &mut want, p * n, n);
            }
            let mut got = vec![!0u64; want.len()];
            pack_positions(&positions, ow, n, &mut got);
            assert_eq!(got, want, "{n} channels");
        }
    }

    #[test]
    fn shapes_chain_and_refuse() {
        let mut s = Shapes::new(InputShape::new(28, 28, 1));
        assert_eq!(
            s.conv(3, Padding::Same, 32),
            Ok((InputShape::new(28, 28, 1), 9))
        );
        s.pool().unwrap();
        assert_eq!(s.conv(3, Padding::Valid, 64).unwrap().1, 288);
        assert_eq!(s.flow(), Flow::Map(InputShape::new(12, 12, 64)));
        s.pool().unwrap();
        assert!(s
            .pool()
            .unwrap_err()
            .contains("layer 5: max pooling must follow"));
        assert_eq!(s.dense(10), Ok(6 * 6 * 64));
        assert!(s
            .conv(3, Padding::Same, 4)
            .unwrap_err()
            .contains("cannot follow"));

        let mut s = Shapes::new(InputShape::new(4, 4, 1));
        assert!(s.conv(2, Padding::Same, 4).unwrap_err().contains("not odd"));
        assert!(s
            .conv(17, Padding::Same, 4)
            .unwrap_err()
            .contains("not odd"));
        assert!(s
            .conv(5, Padding::Valid, 4)
            .unwrap_err()
            .contains("does not fit"));
        assert!(s.conv(3, Padding::Same, 0).unwrap_err().contains("exceed"));
        assert!(s
            .conv(3, Padding::Same, 1 << 21)
            .unwrap_err()
            .contains("exceed"));
        let mut s = Shapes::new(InputShape::new(1, 5, 1));
        s.conv(1, Padding::Same, 2).unwrap();
        assert!(s.pool().unwrap_err().contains("at least 2x2"));
        assert_eq!(
            Shapes::new(InputShape::new(2, 2, 1)).pool(),
            Err("layer 1: max pooling must follow a convolution".to_string())
        );
    }

    #[test]
    fn padding_sides() {
        assert_eq!(Padding::Same.output_side(5, 3), Some(5));
        assert_eq!(Padding::Valid.output_side(5, 3), Some(3));
        assert_eq!(Padding::Valid.output_side(5, 5), Some(1));
        assert_eq!(Padding::Valid.output_side(4, 5), None);
        assert_eq!(Padding::Same.before(5), 2);
        assert_eq!("valid".parse::<Padding>().unwrap(), Padding::Valid);
        assert_eq!(
            "full".parse::<Padding>().unwrap_err().to_string(),
            "invalid model: unknown padding 'full' (known: same, valid, zero)"
        );
    }
}
