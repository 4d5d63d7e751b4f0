//! The C99 back end: `NAME.h` and `NAME.c`, one function
//! `int NAME_predict(const uint8_t pixels[], float scores_out[])`.
//!
//! The scores are always floats: the engine's output layer always carries an
//! f32 bias, and `(float)dot + bias` is one exact conversion and one correctly
//! rounded addition, so C and Rust agree bit for bit. There is no multiply in
//! that path, so floating-point contraction (FMA) cannot change it.

mod header;
mod source;

pub use header::one_line;
pub use source::{flip_bytes, pack_flips};

use crate::plan::{Kind, PixelKind, Plan};
use crate::File;

/// Every name an export uses, derived from the `--name` prefix.
#[derive(Clone, Debug)]
pub struct Names {
    pub prefix: String,
    pub upper: String,
    pub header_file: String,
    pub source_file: String,
    pub predict: String,
    pub guard: String,
    pub portable_macro: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        let upper = prefix.to_ascii_uppercase();
        Names {
            prefix: prefix.to_string(),
            header_file: format!("{prefix}.h"),
            source_file: format!("{prefix}.c"),
            predict: format!("{prefix}_predict"),
            guard: format!("{upper}_H"),
            portable_macro: format!("{upper}_PORTABLE_POPCOUNT"),
            upper,
        }
    }
}

/// Bytes of constant data (flash on a microcontroller), by table, and the
/// buffers `predict` keeps on the stack.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CSizes {
    pub weights: usize,
    pub limits: usize,
    pub flips: usize,
    pub biases: usize,
    pub stack: usize,
}

impl CSizes {
    pub fn of(plan: &Plan) -> Self {
        let limit_bytes = match source::limit_type(plan) {
            "int16_t" => 2,
            _ => 4,
        };
        let mut sizes = CSizes {
            weights: plan.weight_words() * plan.word.bytes(),
            ..CSizes::default()
        };
        for layer in &plan.layers {
            match &layer.kind {
                Kind::Hidden(limits) => {
                    sizes.limits += limits.len() * limit_bytes;
                    sizes.flips += flip_bytes(&layer.kind).map_or(0, |b| b.len());
                }
                Kind::Output(bias) => sizes.biases += bias.len() * 4,
            }
        }
        if let Some(first) = &plan.pixel {
            match &first.kind {
                PixelKind::Hidden(cuts) => {
                    sizes.limits += cuts.len() * 4;
                    sizes.flips += pack_flips(cuts.iter().map(|&(_, f)| f)).map_or(0, |b| b.len());
                }
                PixelKind::Output(bias) => sizes.biases += bias.len() * 4,
            }
        }
        let buffers = match (plan.max_activation_words(), plan.hidden().is_empty()) {
            (0, _) => 0,
            (_, true) => 1,
            (_, false) => 2,
        };
        sizes.stack =
            buffers * plan.max_activation_words() * plan.word.bytes() + plan.num_classes() * 4;
        sizes
    }

    /// All constant data.
    pub fn total(&self) -> usize {
        self.weights + self.limits + self.flips + self.biases
    }
}

/// The header and source of an export.
pub fn generate(plan: &Plan, prefix: &str, provenance: &str) -> (Vec<File>, CSizes) {
    let names = Names::new(prefix);
    let sizes = CSizes::of(plan);
    let files = vec![
        File::text(
            &names.header_file,
            header::header(plan, &names, &sizes, provenance),
        ),
        File::text(&names.source_file, source::source(plan, &names)),
    ];
    (files, sizes)
}
