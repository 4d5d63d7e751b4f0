//! The Verilog-2001 back end: one clocked module that XORs and popcounts one
//! weight word per cycle, its ROM contents as `$readmemh` files, and a
//! self-checking testbench with engine-computed expectations.
//!
//! The class must equal the engine's for every input, so the output layer
//! does not approximate the float biases: its ROM holds, for every output
//! neuron and every possible popcount `p`, the engine's f32 score
//! `(n − 2p) as f32 + bias` — exact by construction, and the module can hand
//! out the very bits the engine computes. Scores are compared as integers
//! after the usual sign-magnitude-to-ordered mapping, which preserves the
//! float order (−0 is mapped onto +0; no NaN can arise from finite biases).

mod memfiles;
mod rtl;
mod testbench;

use crate::plan::Plan;
use crate::vectors::Vectors;
use crate::File;

/// Bits needed to count from 0 to `max` (at least 1).
pub(crate) fn bits_for(max: usize) -> usize {
    (usize::BITS - max.leading_zeros()).max(1) as usize
}

/// Pixels per write on the image port: one byte each in a 64-bit bus.
pub const PIXELS_PER_WRITE: usize = 8;

/// Every size the module's text and its memory files agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub word: usize,
    pub log2_word: usize,
    pub layers: usize,
    /// Weight ROM depth: Σ outputs × words per neuron.
    pub weight_words: usize,
    /// Threshold ROM depth: all hidden neurons.
    pub hidden_neurons: usize,
    /// Popcount accumulator width: holds the widest layer's input count.
    pub sum_width: usize,
    /// Signed popcount limit width (the threshold ROM adds a flip bit).
    pub limit_width: usize,
    pub classes: usize,
    /// Popcounts an output neuron can produce: last layer inputs + 1.
    pub score_row: usize,
    pub activation_words: usize,
    pub pixel_writes: usize,
    pub pixel_addr_width: usize,
    pub layer_width: usize,
    pub neuron_width: usize,
    pub word_index_width: usize,
    pub weight_addr_width: usize,
    pub limit_addr_width: usize,
    pub score_addr_width: usize,
    pub class_width: usize,
    pub act_addr_width: usize,
    pub popcount_width: usize,
}

impl Geometry {
    pub fn of(plan: &Plan) -> Self {
        let word = plan.word.bits();
        let log2_word = word.trailing_zeros() as usize;
        let max_outputs = plan.layers.iter().map(|l| l.outputs).max().unwrap_or(1);
        let max_wpr = plan
            .layers
            .iter()
            .map(|l| l.words_per_row)
            .max()
            .unwrap_or(1);
        let hidden_neurons = plan.hidden().iter().map(|l| l.outputs).sum();
        let sum_width = bits_for(plan.max_inputs());
        let classes = plan.num_classes();
        let score_row = plan.output().inputs + 1;
        let activation_words = plan.max_activation_words();
        let pixel_writes = plan.input_len.div_ceil(PIXELS_PER_WRITE);
        let groups_shift = log2_word - 3;
        Geometry {
            word,
            log2_word,
            layers: plan.layers.len(),
            weight_words: plan.weight_words(),
            hidden_neurons,
            sum_width,
            limit_width: sum_width + 1,
            classes,
            score_row,
            activation_words,
            pixel_writes,
            pixel_addr_width: bits_for(pixel_writes - 1).max(groups_shift),
            layer_width: bits_for(plan.layers.len() - 1),
            neuron_width: bits_for(max_outputs - 1).max(log2_word),
            word_index_width: bits_for(max_wpr - 1),
            weight_addr_width: bits_for(plan.weight_words() - 1),
            limit_addr_width: bits_for(hidden_neurons.saturating_sub(1)),
            score_addr_width: bits_for(classes * score_row - 1),
            class_width: bits_for(classes - 1),
            act_addr_width: bits_for(activation_words - 1),
            popcount_width: bits_for(word),
        }
    }

    /// Cycles from the clock edge that samples `start` to the edge that
    /// raises `done`: one per weight word, one idle cycle between layers
    /// (the next layer must not read activations still being written), and
    /// two to drain the pipeline (popcount, then score lookup and decision).
    pub fn latency(&self) -> usize {
        self.weight_words + (self.layers - 1) + 2
    }

    /// Bits of every ROM and RAM the module declares.
    pub fn memory_bits(&self) -> MemoryBits {
        MemoryBits {
            weights: self.weight_words * self.word,
            limits: self.hidden_neurons * (self.limit_width + 1),
            scores: self.classes * self.score_row * 32,
            activations: 2 * self.activation_words * self.word,
        }
    }
}

/// Storage of the module, in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryBits {
    pub weights: usize,
    pub limits: usize,
    pub scores: usize,
    pub activations: usize,
}

impl MemoryBits {
    pub fn total(&self) -> usize {
        self.weights + self.limits + self.scores + self.activations
    }
}

/// File names of a Verilog export.
#[derive(Clone, Debug)]
pub struct Names {
    pub module: String,
    pub testbench: String,
    pub weights: String,
    pub limits: String,
    pub scores: String,
    pub tb_pixels: String,
    pub tb_expected: String,
}

impl Names {
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
    prefix: &str,
    provenance: &str,
    vectors: &Vectors,
) -> (Vec<File>, Geometry) {
    let g = Geometry::of(plan);
    let names = Names::new(prefix);
    let mut files = vec![
        File::text(
            &format!("{}.v", names.module),
            rtl::module(plan, &g, &names, provenance),
        ),
        File::text(&names.weights, memfiles::weights(plan)),
    ];
    if g.hidden_neurons > 0 {
        files.push(File::text(&names.limits, memfiles::limits(plan, &g)));
    }
    files.push(File::text(&names.scores, memfiles::scores(plan)));
    files.push(File::text(
        &format!("{}.v", names.testbench),
        testbench::testbench(&g, &names, vectors.count),
    ));
    files.push(File::text(&names.tb_pixels, memfiles::pixels(vectors)));
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
