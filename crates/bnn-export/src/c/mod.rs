//! The C99 back end: `NAME.h` and `NAME.c`, one function
//! `int NAME_predict(const uint8_t pixels[], float scores_out[])`.
//!
//! The scores are always floats: the engine's output layer always carries an
//! f32 bias, and `(float)dot + bias` is one exact conversion and one correctly
//! rounded addition, so C and Rust agree bit for bit. A model with a
//! per-class score scale multiplies first, and that product is stored
//! through a `volatile float` so that no compiler flag can fuse it with the
//! addition into one multiply-add (one rounding where the engine has two).

pub mod conv;
mod header;
mod source;

pub use header::one_line;
pub use source::{flip_bytes, pack_flips};

use crate::plan::{ConvKind, Kind, PixelKind, Plan};
use crate::File;

/// Every name an export uses, derived from the `--name` prefix.
#[derive(Clone, Debug)]
pub struct Names {
    /// The `--name` prefix of every symbol, as given.
    pub prefix: String,
    /// The prefix in upper case, for macros.
    pub upper: String,
    /// `<prefix>.h`.
    pub header_file: String,
    /// `<prefix>.c`.
    pub source_file: String,
    /// The classifying function, `<prefix>_predict`.
    pub predict: String,
    /// Raw features to the u8 inputs, for a model with a stored encoding.
    pub encode: String,
    /// The class names' string table, for a model with names.
    pub class_names: String,
    /// The header's include guard, `<PREFIX>_H`.
    pub guard: String,
    /// The macro that selects the portable popcount over the compiler's
    /// builtin, `<PREFIX>_PORTABLE_POPCOUNT`.
    pub portable_macro: String,
}

impl Names {
    /// Every name for `prefix`, which must already have passed
    /// [`crate::ident::check_name`].
    pub fn new(prefix: &str) -> Self {
        let upper = prefix.to_ascii_uppercase();
        Names {
            prefix: prefix.to_string(),
            header_file: format!("{prefix}.h"),
            source_file: format!("{prefix}.c"),
            predict: format!("{prefix}_predict"),
            encode: format!("{prefix}_encode"),
            class_names: format!("{prefix}_class_names"),
            guard: format!("{upper}_H"),
            portable_macro: format!("{upper}_PORTABLE_POPCOUNT"),
            upper,
        }
    }
}

/// Bytes of constant data (flash on a microcontroller), by table, and the
/// RAM `predict` needs for activations: static buffers for a CNN, stack
/// arrays for an MLP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CSizes {
    /// Packed weight words of every layer.
    pub weights: usize,
    /// Hidden layers' popcount limits and a pixel layer's cuts.
    pub limits: usize,
    /// Bits marking the neurons whose comparison is flipped.
    pub flips: usize,
    /// The output layer's float biases.
    pub biases: usize,
    /// The per-class score scales of a model that has them.
    pub scales: usize,
    /// Arrays `predict` declares on its stack (an MLP's activations, and the
    /// local scores used when `scores_out` is null).
    pub stack: usize,
    /// A CNN's static activation buffers (see [`conv::Buffers`]); 0 for an
    /// MLP.
    pub static_ram: usize,
}

impl CSizes {
    /// The sizes of the export of `plan`, as the generated tables take them.
    pub fn of(plan: &Plan) -> Self {
        let limit_bytes = match source::limit_type(plan) {
            "int16_t" => 2,
            _ => 4,
        };
        let mut sizes = CSizes {
            weights: plan.weight_words() * plan.word.bytes(),
            scales: plan.score_scale.as_ref().map_or(0, |s| s.len() * 4),
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
        for c in &plan.convs {
            sizes.limits += c.flips().len()
                * match c.kind {
                    ConvKind::Bits(_) => limit_bytes,
                    ConvKind::Pixels(_) => 4,
                };
            sizes.flips += pack_flips(c.flips().into_iter()).map_or(0, |b| b.len());
        }
        if !plan.convs.is_empty() {
            sizes.static_ram = conv::Buffers::of(plan).bytes(plan.word);
            sizes.stack = plan.num_classes() * 4;
            return sizes;
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
        self.weights + self.limits + self.flips + self.biases + self.scales
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
