//! The sparse side of a binary layer: its weights transposed for the
//! bit-sliced kernel (`kernel::sliced`), and the choice between
//! that kernel and the dense one, per chunk of images.
//!
//! # The choice
//!
//! The dense kernel costs the same for every image: `⌈n/64⌉ · ⌈m/8⌉`
//! XOR-popcount-add steps for `n` inputs and `m` neurons. The sparse kernel
//! costs in proportion to the minority count `k = min(|O|, n − |O|)` of each
//! image, times the vectors a column spans, plus a fixed part per vector
//! (the comparison with the cuts, or reading out counts for an output
//! layer). [`LayerMode::Auto`] estimates both in units of one dense step
//! from the chunk's total `k` and takes the cheaper; the weights are
//! measured (see `costs`), and the test costs one popcount per input word.
//! `BNN_LAYER=dense|sparse` forces either, for tests and measurements.

use std::cell::RefCell;
use std::sync::OnceLock;

use crate::bits::{words_for, BitMatrix};
use crate::error::{Error, Result};
use crate::kernel::sliced::{self, SUM_PLANES};
use crate::kernel::{Kernel, Lines, Minority, SlicedArgs, LANES};
use crate::transform::Transform;

/// How a binary layer runs: the dense XNOR-popcount kernel, the sparse
/// bit-sliced one, or whichever is cheaper for each chunk of images.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LayerMode {
    /// Per chunk, whichever kernel the cost estimate says is cheaper.
    #[default]
    Auto,
    /// Always the dense XNOR-popcount kernel.
    Dense,
    /// Always the bit-sliced kernel.
    Sparse,
}

impl LayerMode {
    /// Every mode, in the order messages list them.
    pub const ALL: [LayerMode; 3] = [LayerMode::Auto, LayerMode::Dense, LayerMode::Sparse];

    /// The name `BNN_LAYER` takes.
    pub fn name(self) -> &'static str {
        match self {
            LayerMode::Auto => "auto",
            LayerMode::Dense => "dense",
            LayerMode::Sparse => "sparse",
        }
    }

    /// The mode of `name` (case and surrounding spaces ignored); an
    /// unknown name is a [`Error::Kernel`] listing the known ones.
    pub fn parse(name: &str) -> Result<LayerMode> {
        let wanted = name.trim().to_ascii_lowercase();
        LayerMode::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| {
                Error::Kernel(format!(
                    "unknown layer mode '{name}' (known: auto, dense, sparse)"
                ))
            })
    }

    /// The mode `BNN_LAYER` names; [`LayerMode::Auto`] when it is unset or
    /// empty.
    pub fn from_env() -> Result<LayerMode> {
        match std::env::var("BNN_LAYER") {
            Ok(name) if !name.trim().is_empty() => {
                LayerMode::parse(&name).map_err(|e| Error::Kernel(format!("BNN_LAYER: {e}")))
            }
            _ => Ok(LayerMode::Auto),
        }
    }

    /// The process-wide mode, read once ([`LayerMode::from_env`], `Auto`
    /// when invalid: the CLI reports that error before any work).
    pub fn active() -> LayerMode {
        static ACTIVE: OnceLock<LayerMode> = OnceLock::new();
        *ACTIVE.get_or_init(|| LayerMode::from_env().unwrap_or(LayerMode::Auto))
    }
}

impl std::fmt::Display for LayerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A layer's weights as columns, one per input, and for a hidden layer the
/// bit planes of its cuts (see [`crate::kernel::sliced`]). Empty for a
/// layer wider than [`sliced::MAX_INPUTS`] inputs, which always runs dense.
#[derive(Clone, Debug, Default)]
pub(crate) struct Transposed {
    inputs: usize,
    outputs: usize,
    cw: usize,
    planes: usize,
    /// Line-aligned, as are the cuts: a column of 512 neurons is then one
    /// aligned vector load (see `kernel/lines.rs`).
    columns: Lines,
    ones_cut: Lines,
    zeros_cut: Lines,
    flips: Vec<u64>,
    /// `popcount(w_j)` per neuron, padded with zeros to whole words: what
    /// turns column sums into popcounts (`BinaryDense::dots` asks hidden
    /// layers too).
    weight_ones: Vec<u32>,
}

/// Per-thread buffers: minority positions and sum planes.
#[derive(Default)]
struct Scratch {
    minority: Minority,
    planes: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Transposed {
    /// `weights` is neurons × inputs; `limits` the popcount limits of a
    /// hidden layer's neurons (see [`crate::Threshold::popcount_limit`]).
    pub(crate) fn new(weights: &BitMatrix, transform: &Transform) -> Transposed {
        let (m, n) = (weights.rows(), weights.cols());
        if n > sliced::MAX_INPUTS {
            return Transposed::default();
        }
        let cw = words_for(m);
        // One more column, of zeros: the index that pads position lists.
        let mut table = Lines::zeroed((n + 1) * cw);
        let columns = table.words_mut();
        let mut weight_ones = vec![0u32; cw * 64];
        for (j, ones) in weight_ones.iter_mut().enumerate().take(m) {
            for (k, &word) in weights.row(j).iter().enumerate() {
                *ones += word.count_ones();
                let mut bits = word;
                while bits != 0 {
                    let i = k * 64 + bits.trailing_zeros() as usize;
                    columns[i * cw + j / 64] |= 1 << (j % 64);
                    bits &= bits - 1;
                }
            }
        }
        let mut t = Transposed {
            inputs: n,
            outputs: m,
            cw,
            planes: 0,
            columns: table,
            weight_ones,
            ..Transposed::default()
        };
        if let Transform::Sign(thresholds) = transform {
            let planes = sliced::cut_planes(n);
            let never = (1u64 << planes) - 1;
            t.planes = planes;
            t.ones_cut = Lines::zeroed(planes * cw);
            t.zeros_cut = Lines::zeroed(planes * cw);
            t.flips = vec![0; cw];
            for (j, &w) in t.weight_ones.iter().enumerate() {
                let (word, bit) = (j / 64, j % 64);
                let (ones_cut, zeros_cut) = match thresholds.get(j) {
                    Some(th) => {
                        let limit = th.popcount_limit(n);
                        let w = i64::from(w);
                        t.flips[word] |= u64::from(th.flip) << bit;
                        ((w - limit + n as i64 + 1) as u64, (limit + w + 1) as u64)
                    }
                    None => (never, 0),
                };
                for b in 0..planes {
                    t.ones_cut.words_mut()[b * cw + word] |= (ones_cut >> b & 1) << bit;
                    t.zeros_cut.words_mut()[b * cw + word] |= (zeros_cut >> b & 1) << bit;
                }
            }
        }
        t
    }

    /// Bytes of the transposed copy and its cuts.
    pub(crate) fn memory_bytes(&self) -> usize {
        8 * (self.columns.len() + self.ones_cut.len() + self.zeros_cut.len() + self.flips.len())
            + 4 * self.weight_ones.len()
    }

    fn args(&self) -> SlicedArgs<'_> {
        SlicedArgs {
            columns: self.columns.words(),
            inputs: self.inputs,
            cw: self.cw,
            planes: self.planes,
            ones_cut: self.ones_cut.words(),
            zeros_cut: self.zeros_cut.words(),
            flips: &self.flips,
        }
    }

    /// Whether `mode` runs these `rows` packed inputs sparse.
    pub(crate) fn chooses(&self, kernel: Kernel, mode: LayerMode, xs: &[u64], rows: usize) -> bool {
        if let Some(sparse) = self.settled(kernel, mode) {
            return sparse;
        }
        let per_row = |minority: usize| self.costs_per_row(kernel, minority);
        let d = per_row(0).1;
        let wpr = words_for(self.inputs);
        let sparse: usize = xs[..rows * wpr]
            .chunks_exact(wpr)
            .map(|x| {
                let ones = kernel.ones(x);
                per_row(ones.min(self.inputs - ones)).0
            })
            .sum();
        sparse < rows * d
    }

    /// Whether `mode` runs this layer sparse whatever its inputs, or
    /// dense whatever they are, or `None` when that depends on them.
    pub(crate) fn settled(&self, kernel: Kernel, mode: LayerMode) -> Option<bool> {
        if self.columns.is_empty() {
            return Some(false);
        }
        match mode {
            LayerMode::Dense => Some(false),
            LayerMode::Sparse => Some(true),
            LayerMode::Auto => {
                // The rule is linear in the minority count, which lies in
                // 0..=inputs/2: when both ends agree, so does every image,
                // and no image needs counting. (784 → 512 and 1024 → 1024
                // are sparse at any density, 512 → 10 dense.)
                let per_row = |minority: usize| self.costs_per_row(kernel, minority);
                let ((s0, d), (s1, _)) = (per_row(0), per_row(self.inputs / 2));
                if s0 < d && s1 < d {
                    Some(true)
                } else if s0 >= d && s1 >= d {
                    Some(false)
                } else {
                    None
                }
            }
        }
    }

    /// The cost model's (sparse, dense) estimate for one row whose
    /// minority count is `minority`, in tenths of a dense step.
    fn costs_per_row(&self, kernel: Kernel, minority: usize) -> (usize, usize) {
        let c = costs(kernel);
        let vectors = self.cw.div_ceil(c.words);
        let fixed = if self.planes > 0 {
            c.per_plane * self.planes * vectors
        } else {
            c.per_count * self.outputs
        };
        let sparse = c.per_column * minority * vectors + fixed + c.per_image;
        let dense = 10 * words_for(self.inputs) * self.outputs.div_ceil(LANES);
        (sparse, dense)
    }

    /// A hidden layer's output bits (`out_wpr` words per row).
    pub(crate) fn fire(&self, kernel: Kernel, xs: &[u64], rows: usize, out: &mut [u64]) {
        let args = self.args();
        SCRATCH.with(|s| {
            let m = &mut s.borrow_mut().minority;
            kernel.sliced_fire_rows(&args, xs, rows, m, &mut out[..rows * self.cw]);
        });
    }

    /// A hidden layer's output bits for `rows` images of `inputs` pixels,
    /// whose bits are `p >= threshold`, listed from the pixels with no
    /// packed copy (see [`Kernel::sliced_fire_pixel_rows`]).
    pub(crate) fn fire_pixels(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        threshold: u8,
        rows: usize,
        out: &mut [u64],
    ) {
        let args = self.args();
        SCRATCH.with(|s| {
            let m = &mut s.borrow_mut().minority;
            let (px, out) = (&pixels[..rows * self.inputs], &mut out[..rows * self.cw]);
            kernel.sliced_fire_pixel_rows(&args, px, threshold, m, out);
        });
    }

    /// `popcount(x ⊕ w_j)` per row and neuron, `padded` neurons a row (the
    /// dense kernel's padding neurons, whose weights are zero, included).
    pub(crate) fn popcounts(
        &self,
        kernel: Kernel,
        xs: &[u64],
        rows: usize,
        padded: usize,
        out: &mut [u32],
    ) {
        let wpr = words_for(self.inputs);
        let args = self.args();
        SCRATCH.with(|s| {
            let s = &mut *s.borrow_mut();
            s.planes.resize(SUM_PLANES * self.cw, 0);
            for (x, o) in xs[..rows * wpr]
                .chunks_exact(wpr)
                .zip(out.chunks_exact_mut(padded))
            {
                kernel.minority(x, self.inputs, &mut s.minority);
                kernel.sliced_sum_planes(&args, &s.minority, &mut s.planes);
                let (ones, zeros) = (s.minority.ones(), s.minority.zeros());
                for (j, (p, &w)) in o.iter_mut().zip(&self.weight_ones).enumerate() {
                    let (word, bit) = (j / 64, j % 64);
                    let sum: u32 = (0..SUM_PLANES)
                        .map(|b| ((s.planes[b * self.cw + word] >> bit & 1) as u32) << b)
                        .sum();
                    *p = if zeros {
                        2 * sum + ones as u32 - w
                    } else {
                        w + ones as u32 - 2 * sum
                    };
                }
            }
        });
    }
}

impl crate::layer::BinaryDense {
    /// Whether `mode` runs these `rows` packed inputs through the sparse
    /// kernel: what [`LayerMode::Auto`] decides, for reports.
    pub fn runs_sparse(&self, kernel: Kernel, mode: LayerMode, xs: &[u64], rows: usize) -> bool {
        assert!(xs.len() >= rows * words_for(self.inputs()));
        self.transposed.chooses(kernel, mode, xs, rows)
    }
}

/// The cost model's weights, in tenths of one dense step (XOR, popcount
/// and add on 8 neurons and 64 inputs) of the same kernel.
pub(crate) struct Costs {
    /// Words one vector of the sparse kernel holds.
    words: usize,
    /// One column added into one vector of counters.
    per_column: usize,
    /// One plane of the comparison, per vector.
    per_plane: usize,
    /// Reading one neuron's count out of the planes (output layers).
    per_count: usize,
    /// Finding one image's minority positions, and the calls around.
    per_image: usize,
}

/// Fitted to `cargo bench --bench bnn -- sparse/` (chunks of 64 random
/// rows at 5, 13, 25 and 50 % ones; 784 and 1024 inputs; 512 and 1024
/// neurons): the time per row is close to linear in the minority count,
/// and the weights here are its slope and intercept over the dense
/// kernel's time per step. Since the column table starts on a cache line
/// (`kernel/lines.rs`), every kernel's sparse form is the faster at every
/// density measured, 50 % included, so the dense kernel is left to
/// balanced inputs whose minority is near half and whose layer is small
/// enough that the comparison's fixed cost counts. The AVX-512 weights are
/// refitted to the lean loop (`fire_lines`); the times they fit are in
/// docs/PERFORMANCE.md, "Sparse against dense layers".
pub(crate) fn costs(kernel: Kernel) -> Costs {
    match kernel {
        Kernel::Avx512 => Costs {
            words: 8,
            per_column: 13,
            per_plane: 10,
            per_count: 20,
            per_image: 900,
        },
        Kernel::Avx2 => Costs {
            words: 4,
            per_column: 8,
            per_plane: 10,
            per_count: 10,
            per_image: 300,
        },
        // Not fitted (no benchmark runs in a WebAssembly engine): between
        // the scalar and AVX2 weights, two words a vector. Either choice
        // gives the same bits; 784 -> 512 runs sparse at any density.
        Kernel::Simd128 => Costs {
            words: 2,
            per_column: 4,
            per_plane: 6,
            per_count: 6,
            per_image: 200,
        },
        // Not fitted: no ARM machine was at hand. From instruction counts
        // against a dense step of 12 NEON operations (EOR, CNT, ADD on four
        // vectors): a column into a vector of two words is 3.5 (seven full
        // adders of four per 8 columns), a plane of the comparison 2 to 6,
        // and the rest runs the portable code, so it costs the scalar's.
        Kernel::Neon => Costs {
            words: 2,
            per_column: 3,
            per_plane: 3,
            per_count: 3,
            per_image: 100,
        },
        Kernel::Scalar => Costs {
            words: 1,
            per_column: 2,
            per_plane: 3,
            per_count: 3,
            per_image: 100,
        },
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::bits::tail_mask;
    use crate::kernel::available;
    use crate::layer::BinaryDense;
    use crate::transform::Threshold;

    fn random_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize, density: f64) -> BitMatrix {
        let mut m = BitMatrix::new(rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                m.set(r, c, rng.gen_bool(density));
            }
        }
        m
    }

    /// Thresholds across the whole reachable range and beyond it, both
    /// directions.
    fn random_thresholds(rng: &mut ChaCha8Rng, m: usize, n: usize) -> Vec<Threshold> {
        let n = n as i32;
        (0..m)
            .map(|_| {
                let v = rng.gen_range(-n - 3..=n + 3);
                if rng.gen_bool(0.3) {
                    Threshold::at_most(v)
                } else {
                    Threshold::at_least(v)
                }
            })
            .collect()
    }

    /// Inputs of every density the kernel must handle: none set, all set,
    /// one bit, exactly half, one either side of half, and random ones.
    fn inputs(rng: &mut ChaCha8Rng, n: usize) -> BitMatrix {
        let mut rows: Vec<Vec<bool>> = vec![vec![false; n], vec![true; n]];
        for i in [0, n / 2, n - 1] {
            let mut one = vec![false; n];
            one[i] = true;
            rows.push(one.iter().map(|b| !b).collect());
            rows.push(one);
        }
        for ones in [
            n / 2,
            n.div_ceil(2),
            (n / 2).saturating_sub(1),
            (n / 2 + 1).min(n),
        ] {
            let mut v: Vec<bool> = (0..n).map(|i| i < ones).collect();
            for i in (1..n).rev() {
                v.swap(i, rng.gen_range(0..=i));
            }
            rows.push(v);
        }
        for density in [0.02, 0.13, 0.3, 0.5, 0.7, 0.95] {
            rows.push((0..n).map(|_| rng.gen_bool(density)).collect());
        }
        let mut m = BitMatrix::new(rows.len(), n);
        for (r, row) in rows.iter().enumerate() {
            for (c, &b) in row.iter().enumerate() {
                m.set(r, c, b);
            }
        }
        m
    }

    /// A hidden layer's bits for every row of `x` by the reference: the
    /// scalar kernel, dense.
    fn dense_bits(layer: &BinaryDense, x: &BitMatrix) -> BitMatrix {
        let mut bits = BitMatrix::new(x.rows(), layer.outputs());
        let mode = LayerMode::Dense;
        layer.fire_with(Kernel::Scalar, mode, x.words(), x.rows(), bits.words_mut());
        bits
    }

    /// Layers up to `LINES_MAX_INPUTS` inputs whose columns are whole
    /// vectors take `fire_lines`; the others, such as 2048 → 512 and
    /// 300 → 200 on AVX-512, the general loop.
    const SHAPES: [(usize, usize); 16] = [
        (1, 1),
        (2, 3),
        (7, 10),
        (63, 64),
        (64, 65),
        (65, 63),
        (127, 129),
        (128, 8),
        (300, 200),
        (511, 511),
        (784, 512),
        (784, 10),
        (1000, 1000),
        (1024, 1024),
        (2047, 128),
        (2048, 512),
    ];

    /// Sparse bits and popcounts equal the dense kernel's, for every kernel,
    /// shape and input density, and for every threshold direction.
    #[test]
    fn sparse_matches_dense() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        for (n, m) in SHAPES {
            let density = rng.gen_range(0.1..0.9);
            let weights = random_matrix(&mut rng, m, n, density);
            let t = random_thresholds(&mut rng, m, n);
            let hidden = BinaryDense::hidden(weights.clone(), t).unwrap();
            let output = BinaryDense::output(weights, vec![0.0; m]).unwrap();
            let x = inputs(&mut rng, n);
            let rows = x.rows();
            let want = dense_bits(&hidden, &x);
            let padded = m.div_ceil(LANES) * LANES;
            let mut want_pops = vec![0u32; rows * padded];
            output.popcounts_with(
                Kernel::Scalar,
                LayerMode::Dense,
                x.words(),
                rows,
                &mut want_pops,
            );
            for k in available() {
                for mode in LayerMode::ALL {
                    let mut got = BitMatrix::new(rows, m);
                    hidden.fire_with(k, mode, x.words(), rows, got.words_mut());
                    for r in 0..rows {
                        assert_eq!(got.row(r), want.row(r), "{k} {mode} {n}->{m} row {r}");
                        assert_eq!(got.row(r).last().unwrap() & !tail_mask(m), 0);
                    }
                    for layer in [&output, &hidden] {
                        let mut pops = vec![0u32; rows * padded];
                        layer.popcounts_with(k, mode, x.words(), rows, &mut pops);
                        assert_eq!(pops, want_pops, "{k} {mode} {n}->{m} popcounts");
                    }
                }
            }
        }
    }

    /// A first layer listing its images from their pixels gives the bits
    /// of the packed path, for every kernel and shape, at thresholds from
    /// 0 (every pixel a 1) to 255, on images of every density (so the
    /// AVX-512 lister's guess that the ones are the minority is wrong on
    /// some, and it lists again from the zeros).
    #[test]
    fn pixel_listing_matches_packed() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for (n, m) in SHAPES {
            let weights = random_matrix(&mut rng, m, n, 0.5);
            let t = random_thresholds(&mut rng, m, n);
            let hidden = BinaryDense::hidden(weights, t).unwrap();
            let bits = inputs(&mut rng, n);
            for threshold in [0u8, 1, 128, 255] {
                let rows = bits.rows();
                let mut pixels = Vec::with_capacity(rows * n);
                for r in 0..rows {
                    pixels.extend((0..n).map(|c| match (bits.get(r, c), threshold) {
                        (_, 0) => rng.gen(),
                        (true, t) => rng.gen_range(t..=255),
                        (false, t) => rng.gen_range(0..t),
                    }));
                }
                let mut x = BitMatrix::new(rows, n);
                let words = x.words_mut().chunks_exact_mut(words_for(n));
                for (image, w) in pixels.chunks_exact(n).zip(words) {
                    crate::bits::pack_pixels(image, threshold, w);
                }
                let want = dense_bits(&hidden, &x);
                for k in available() {
                    let mut got = BitMatrix::new(rows, m);
                    let t = &hidden.transposed;
                    t.fire_pixels(k, &pixels, threshold, rows, got.words_mut());
                    for r in 0..rows {
                        assert_eq!(
                            got.row(r),
                            want.row(r),
                            "{k} {n}->{m} t {threshold} row {r}"
                        );
                    }
                }
            }
        }
    }

    /// Sums up to the largest `fire_lines` takes (1023 columns, every
    /// plane set) and past it: all-one and all-zero weights against inputs
    /// with the most minority bits their width allows.
    #[test]
    fn largest_sums_match_dense() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for (n, m) in [(2047, 512), (2046, 64), (2049, 64), (1024, 1024)] {
            for density in [1.0, 0.0, 0.97] {
                let weights = random_matrix(&mut rng, m, n, density);
                let t = random_thresholds(&mut rng, m, n);
                let hidden = BinaryDense::hidden(weights, t).unwrap();
                let x = inputs(&mut rng, n);
                let want = dense_bits(&hidden, &x);
                let rows = x.rows();
                for k in available() {
                    let mut got = BitMatrix::new(rows, m);
                    hidden.fire_with(k, LayerMode::Sparse, x.words(), rows, got.words_mut());
                    assert!(got == want, "{k} {n}->{m} at weight density {density}");
                }
            }
        }
        // 530 positions: sixteen steps of 32 sum to 506 (six zero weights
        // among them), and the groups after them carry into plane 512.
        let (n, m) = (2047, 64);
        let mut weights = random_matrix(&mut rng, m, n, 1.0);
        let mut x = BitMatrix::new(1, n);
        for i in 0..530 {
            x.set(0, i, true);
        }
        for j in 0..m {
            for i in 0..6 {
                weights.set(j, i, false);
            }
        }
        let limits: Vec<Threshold> = (0..m as i32)
            .map(|j| Threshold::at_least(j * 40 - 1300))
            .collect();
        let hidden = BinaryDense::hidden(weights, limits).unwrap();
        let want = dense_bits(&hidden, &x);
        assert!(
            want.row(0)[0] != 0 && want.row(0)[0] != u64::MAX,
            "{:x}",
            want.row(0)[0]
        );
        for k in available() {
            let mut got = BitMatrix::new(1, m);
            hidden.fire_with(k, LayerMode::Sparse, x.words(), 1, got.words_mut());
            assert_eq!(
                got.row(0),
                want.row(0),
                "{k}: a carry into plane 512 after the steps"
            );
        }
    }

    /// The lean loop on `u64` words, which no kernel dispatches to, equals
    /// the general one: the portable reference for the SIMD forms of it.
    #[test]
    fn portable_lean_loop_matches_general_loop() {
        use crate::kernel::sliced::{portable, LINES_MAX_INPUTS};
        let mut rng = ChaCha8Rng::seed_from_u64(30);
        for (n, m) in SHAPES.into_iter().filter(|&(n, _)| n <= LINES_MAX_INPUTS) {
            let density = rng.gen_range(0.1..0.9);
            let layer = BinaryDense::hidden(
                random_matrix(&mut rng, m, n, density),
                random_thresholds(&mut rng, m, n),
            )
            .unwrap();
            let args = layer.transposed.args();
            let x = inputs(&mut rng, n);
            let mut list = Minority::default();
            for r in 0..x.rows() {
                Kernel::Scalar.minority(x.row(r), n, &mut list);
                let (idx, ones, zeros) = (list.positions(), list.ones(), list.zeros());
                let (mut lean, mut general) = (vec![0; args.cw], vec![0; args.cw]);
                portable::fire_lines(&args, idx, ones, zeros, &mut lean);
                portable::fire(&args, idx, ones, zeros, &mut general);
                assert_eq!(lean, general, "{n}->{m} row {r}");
            }
        }
    }

    /// Every kernel lists exactly the minority bits, in order, padded with
    /// the zero column's index to a multiple of 8; bits beyond the width in
    /// the last word (which a caller may leave set) are not listed.
    #[test]
    fn minority_positions_agree() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1usize, 2, 31, 32, 33, 64, 65, 784, 1024, 3000] {
            let x = inputs(&mut rng, n);
            for r in 0..x.rows() {
                let ones = (0..n).filter(|&i| x.get(r, i)).count();
                let zeros = 2 * ones > n;
                let mut expect: Vec<u16> = (0..n)
                    .filter(|&i| x.get(r, i) != zeros)
                    .map(|i| i as u16)
                    .collect();
                expect.resize(expect.len().next_multiple_of(8), n as u16);
                let mut dirty = x.row(r).to_vec();
                *dirty.last_mut().unwrap() |= !tail_mask(n);
                for k in available() {
                    for row in [x.row(r), &dirty[..]] {
                        let mut m = Minority::default();
                        k.minority(row, n, &mut m);
                        assert_eq!(m.positions(), expect, "{k} n {n} row {r}");
                        assert_eq!((m.ones(), m.zeros(), m.inputs()), (ones, zeros, n));
                    }
                }
            }
        }
    }

    /// Positions listed for one width are refused by a layer of another,
    /// by every kernel, before any column is read: the SIMD forms load
    /// whole column vectors unchecked on the strength of the widths
    /// agreeing.
    #[test]
    fn positions_of_another_width_panic() {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let layer = BinaryDense::hidden(
            random_matrix(&mut rng, 512, 784, 0.5),
            random_thresholds(&mut rng, 512, 784),
        )
        .unwrap();
        let t = &layer.transposed;
        let args = t.args();
        // The panic's message, so that only the width check passes (an index
        // out of bounds further on would be a panic too).
        let message = |r: std::thread::Result<()>| {
            r.err().map(|payload| match payload.downcast::<String>() {
                Ok(s) => *s,
                Err(payload) => payload
                    .downcast::<&str>()
                    .map_or_else(|_| "?".into(), |s| s.to_string()),
            })
        };
        let refused = |m: &Option<String>| {
            m.as_deref()
                .is_some_and(|m| m.contains("positions listed for another width"))
        };
        for k in available() {
            let run = |n: usize| {
                let x = random_matrix(&mut ChaCha8Rng::seed_from_u64(9), 1, n, 0.2);
                let mut m = Minority::default();
                k.minority(x.row(0), n, &mut m);
                let fire = catch_unwind(AssertUnwindSafe(|| {
                    let mut out = vec![0u64; t.cw];
                    k.sliced_fire(&args, &m, &mut out);
                }));
                let sums = catch_unwind(AssertUnwindSafe(|| {
                    let mut planes = vec![0u64; SUM_PLANES * t.cw];
                    k.sliced_sum_planes(&args, &m, &mut planes);
                }));
                (message(fire), message(sums))
            };
            assert_eq!(run(784), (None, None), "{k}: the layer's width");
            for n in [783, 785, 1024, 5000] {
                let (fire, sums) = run(n);
                assert!(
                    refused(&fire) && refused(&sums),
                    "{k}: positions of {n} inputs: {fire:?} {sums:?}"
                );
            }
        }
    }

    /// The per-chunk rule: sparse input into a wide layer goes sparse; half
    /// ones into 10 neurons (an output layer) stays dense; forcing wins.
    #[test]
    fn auto_follows_the_cost_model() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let wide = BinaryDense::hidden(
            random_matrix(&mut rng, 512, 784, 0.5),
            random_thresholds(&mut rng, 512, 784),
        )
        .unwrap();
        let narrow =
            BinaryDense::output(random_matrix(&mut rng, 10, 512, 0.5), vec![0.0; 10]).unwrap();
        let sparse_rows = random_matrix(&mut rng, 64, 784, 0.05);
        let half_rows = random_matrix(&mut rng, 64, 512, 0.5);
        for k in available() {
            let choose =
                |l: &BinaryDense, x: &BitMatrix, mode| l.transposed.chooses(k, mode, x.words(), 64);
            assert!(choose(&wide, &sparse_rows, LayerMode::Auto), "{k}");
            assert!(!choose(&narrow, &half_rows, LayerMode::Auto), "{k}");
            assert!(!choose(&wide, &sparse_rows, LayerMode::Dense), "{k}");
            assert!(choose(&narrow, &half_rows, LayerMode::Sparse), "{k}");
        }
    }

    /// Where the two ends of the density range disagree, the chunk's
    /// minority count decides; each kernel has such a layer among these.
    #[test]
    fn auto_counts_where_density_decides() {
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        for k in available() {
            let (n, m) = [(1024, 64), (1024, 32), (784, 256)]
                .into_iter()
                .find(|&(n, m)| {
                    let l =
                        BinaryDense::hidden(BitMatrix::new(m, n), vec![Threshold::at_least(0); m])
                            .unwrap();
                    let ((s0, d), (s1, _)) = (
                        l.transposed.costs_per_row(k, 0),
                        l.transposed.costs_per_row(k, n / 2),
                    );
                    s0 < d && d <= s1
                })
                .unwrap_or_else(|| panic!("{k}: no layer whose choice depends on density"));
            let layer = BinaryDense::hidden(
                random_matrix(&mut rng, m, n, 0.5),
                random_thresholds(&mut rng, m, n),
            )
            .unwrap();
            let choose = |density: f64| {
                let x = random_matrix(&mut rng.clone(), 64, n, density);
                layer.transposed.chooses(k, LayerMode::Auto, x.words(), 64)
            };
            assert!(choose(0.0), "{k} {n}->{m}: empty rows");
            assert!(!choose(0.5), "{k} {n}->{m}: balanced rows");
        }
    }

    #[test]
    fn layer_modes_parse() {
        for mode in LayerMode::ALL {
            assert_eq!(LayerMode::parse(mode.name()).unwrap(), mode);
        }
        assert_eq!(LayerMode::parse(" Sparse ").unwrap(), LayerMode::Sparse);
        let e = LayerMode::parse("fast").unwrap_err().to_string();
        assert!(e.contains("unknown layer mode 'fast'"), "{e}");
    }

    /// The transposed copy costs the packed weights' bytes and a little
    /// for the cuts: the budget is the packed size again.
    #[test]
    fn transposed_copy_is_small() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let w = random_matrix(&mut rng, 512, 784, 0.5);
        let t = random_thresholds(&mut rng, 512, 784);
        let layer = BinaryDense::hidden(w, t).unwrap();
        let packed = 784 * 512 / 8;
        assert!(
            layer.transposed_bytes() >= packed,
            "{}",
            layer.transposed_bytes()
        );
        assert!(
            layer.transposed_bytes() <= packed + packed / 8,
            "{}",
            layer.transposed_bytes()
        );
    }
}
