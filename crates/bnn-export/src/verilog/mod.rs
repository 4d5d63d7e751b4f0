//! The Verilog-2001 back end: one clocked module that XORs and popcounts
//! `P` weight words per cycle (folded over SIMD words of a row and PE
//! neurons, see [`fold`]), its ROM contents as `$readmemh` files, and a
//! self-checking testbench with engine-computed expectations.
//!
//! The class must equal the engine's for every input, so the output layer
//! does not approximate the float biases: its ROM holds, for every output
//! neuron and every possible popcount `p`, the engine's f32 score
//! `(n − 2p) as f32 + bias` — exact by construction, and the module can hand
//! out the very bits the engine computes. Scores are compared as integers
//! after the usual sign-magnitude-to-ordered mapping, which preserves the
//! float order (−0 is mapped onto +0; no NaN can arise from finite biases).

pub mod fold;
mod memfiles;
mod rtl;
mod testbench;

use crate::plan::Plan;
use crate::vectors::Vectors;
use crate::File;

pub use fold::LayerFold;

/// Bits needed to count from 0 to `max` (at least 1).
pub(crate) fn bits_for(max: usize) -> usize {
    (usize::BITS - max.leading_zeros()).max(1) as usize
}

/// Every size the module's text, its memory files and its testbench agree
/// on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bits per weight word: 32 or 64.
    pub word: usize,
    /// Lanes asked for (`--parallel`).
    pub parallel: usize,
    /// Words of one row per cycle.
    pub simd: usize,
    /// Neurons per cycle.
    pub pe: usize,
    /// Every dense layer under the folding, in order.
    pub layers: Vec<LayerFold>,
    /// Adder-tree levels after the per-byte popcounts, each registered.
    pub tree_levels: usize,
    /// Input pixels per write on the image port: a multiple of 8, wide
    /// enough that loading the next image never bounds the interval.
    pub pixels_per_write: usize,
    /// Pixels per image.
    pub inputs: usize,
    /// Output neurons: one score per class.
    pub classes: usize,
    /// Popcount accumulator width: holds the widest layer's input count.
    pub sum_width: usize,
    /// Signed popcount limit width (the threshold ROM adds a flip bit).
    pub limit_width: usize,
    /// Popcounts an output neuron can produce: last layer inputs + 1.
    pub score_row: usize,
}

impl Geometry {
    /// The geometry of `plan` with `parallel` weight words per cycle
    /// (`--parallel`; 0 is taken as 1).
    pub fn of(plan: &Plan, parallel: usize) -> Self {
        let word = plan.word.bits();
        let shape: Vec<_> = plan
            .layers
            .iter()
            .map(|l| (l.inputs, l.outputs, l.words_per_row, l.is_hidden()))
            .collect();
        let fold::Fold { simd, pe, layers } = fold::choose(&shape, parallel.max(1), word);
        let sum_width = bits_for(plan.max_inputs());
        let mut g = Geometry {
            word,
            parallel,
            simd,
            pe,
            layers,
            tree_levels: fold::tree_levels(simd * word / 8),
            pixels_per_write: 8,
            inputs: plan.input_len,
            classes: plan.num_classes(),
            sum_width,
            limit_width: sum_width + 1,
            score_row: plan.output().inputs + 1,
        };
        // One write per cycle, then the start cycle.
        while g.pixel_writes() + 1 > g.interval() && g.pixels_per_write < g.inputs {
            g.pixels_per_write *= 2;
        }
        g
    }

    /// Weight words XOR-popcounted per cycle: `simd × pe`.
    pub fn lanes(&self) -> usize {
        self.simd * self.pe
    }

    /// Rows of the weight ROM: one per cycle of work.
    pub fn rows(&self) -> usize {
        self.layers.iter().map(LayerFold::cycles).sum()
    }

    /// Rows of the threshold ROM: one per hidden neuron group.
    pub fn hidden_groups(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.hidden)
            .map(|l| l.groups)
            .sum()
    }

    /// Idle cycles between layers.
    pub fn gap(&self) -> usize {
        fold::gap(self.tree_levels)
    }

    /// The stage that accumulates and decides, counting the issue as 0:
    /// weight read, BRAM output register, per-byte popcounts, then the tree.
    pub fn decide_stage(&self) -> usize {
        3 + self.tree_levels
    }

    /// Cycles between accepted starts counting only the layers' work and
    /// gaps (see [`fold::compute_interval`]).
    pub fn compute_interval(&self) -> usize {
        fold::compute_interval(&self.layers, self.gap())
    }

    /// Whether the module must space starts apart so that the serial score
    /// stage (one class per cycle) finishes before the next image's scores.
    pub fn spaced_by_classes(&self) -> bool {
        self.classes > self.compute_interval()
    }

    /// Steady-state cycles between images streamed back to back.
    pub fn interval(&self) -> usize {
        self.compute_interval().max(self.classes)
    }

    /// Cycles from the edge that accepts `start` to the edge that raises
    /// `done`: the work and the gaps, the pipeline to the decision, then
    /// one score per class and the decision register.
    pub fn latency(&self) -> usize {
        self.rows() + (self.layers.len() - 1) * self.gap() + self.decide_stage() + 1 + self.classes
    }

    /// Writes on the image port that load one image.
    pub fn pixel_writes(&self) -> usize {
        self.inputs.div_ceil(self.pixels_per_write)
    }

    /// Bits of every ROM and of the activation registers.
    pub fn memory_bits(&self) -> MemoryBits {
        let hidden_outputs: usize = self
            .layers
            .iter()
            .filter(|l| l.hidden)
            .map(|l| l.groups * self.pe)
            .sum();
        MemoryBits {
            weights: self.rows() * self.lanes() * self.word,
            limits: self.hidden_groups() * self.pe * (self.limit_width + 1),
            scores: self.classes * self.score_row * 32,
            activations: 2 * self.inputs + hidden_outputs,
        }
    }
}

/// Storage of the module, in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBits {
    /// Weight ROM, spare lanes included.
    pub weights: usize,
    /// Threshold ROM: a limit and a flip bit per hidden neuron slot.
    pub limits: usize,
    /// Score ROM: a 32-bit float per class and possible popcount.
    pub scores: usize,
    /// Registers: the image load buffer, the image and every hidden layer's
    /// output.
    pub activations: usize,
}

impl MemoryBits {
    /// All of the above together.
    pub fn total(&self) -> usize {
        self.weights + self.limits + self.scores + self.activations
    }
}

/// File names of a Verilog export.
#[derive(Clone, Debug)]
pub struct Names {
    /// The module's name (its file is `<module>.v`).
    pub module: String,
    /// The testbench module's name, `<prefix>_tb`.
    pub testbench: String,
    /// The weight ROM's memory file.
    pub weights: String,
    /// The threshold ROM's memory file.
    pub limits: String,
    /// The score ROM's memory file.
    pub scores: String,
    /// The testbench's images.
    pub tb_pixels: String,
    /// The engine's classes and scores the testbench checks against.
    pub tb_expected: String,
}

impl Names {
    /// Every name for `prefix`, which must already have passed
    /// [`crate::ident::check_name`].
    pub fn new(prefix: &str) -> Self {
        Names {
            module: prefix.to_string(),
            testbench: format!("{prefix}_tb"),
            weights: format!("{prefix}_weights.hex"),
            limits: format!("{prefix}_limits.hex"),
            scores: format!("{prefix}_scores.hex"),
            tb_pixels: format!("{prefix}_tb_pixels.hex"),
            tb_expected: format!("{prefix}_tb_expected.hex"),
        }
    }
}

/// The module, its memory files, the testbench and its vectors.
pub fn generate(
    plan: &Plan,
    parallel: usize,
    prefix: &str,
    provenance: &str,
    vectors: &Vectors,
) -> (Vec<File>, Geometry) {
    let g = Geometry::of(plan, parallel);
    let names = Names::new(prefix);
    let mut files = vec![
        File::text(
            &format!("{}.v", names.module),
            rtl::module(plan, &g, &names, provenance),
        ),
        File::text(&names.weights, memfiles::weights(plan, &g)),
    ];
    if g.hidden_groups() > 0 {
        files.push(File::text(&names.limits, memfiles::limits(plan, &g)));
    }
    files.push(File::text(&names.scores, memfiles::scores(plan)));
    files.push(File::text(
        &format!("{}.v", names.testbench),
        testbench::testbench(&g, &names, vectors.count),
    ));
    files.push(File::text(&names.tb_pixels, memfiles::pixels(vectors, &g)));
    files.push(File::text(&names.tb_expected, memfiles::expected(vectors)));
    (files, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_widths() {
        assert_eq!(bits_for(0), 1);
        assert_eq!(bits_for(1), 1);
        assert_eq!(bits_for(2), 2);
        assert_eq!(bits_for(511), 9);
        assert_eq!(bits_for(512), 10);
    }
}
