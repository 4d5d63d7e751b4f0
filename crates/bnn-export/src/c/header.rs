//! The `.h` file: the one function, its sizes as macros, and the contract
//! (what the scores are, which class wins, what it costs) in its comment.

use std::fmt::Write;

use bnn_core::DecisionRule;

use super::{CSizes, Names};
use crate::plan::Plan;

pub fn header(plan: &Plan, names: &Names, sizes: &CSizes, provenance: &str) -> String {
    let n = names;
    let rule = match plan.rule {
        DecisionRule::Scores => {
            "the index of the largest score; ties go to the lowest index".to_string()
        }
        DecisionRule::Seed => "the first index whose score is >= 0 (the seed rule); \
             0 when every score is negative"
            .to_string(),
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "\
/* {file}: a {shape} binary neural network, exported by `bnn export`.
 * Source model: {provenance}
 *
 * int {predict}(const uint8_t pixels[{inputs}], float scores_out[{classes}]);
 *
 *   pixels      {inputs} bytes, one per input{layout}; {pixel_meaning}.
 *   scores_out  receives the {classes} output scores, each {score} with
 *               dot the integer +-1 dot product: bit for bit the engine's
 *               scores. May be a null pointer when only the class is needed.
 *   returns     the predicted class: {rule}.
 *
 * Needs only <stdint.h>; allocates nothing. Constant data: {total} bytes
 * ({word}-bit weight words); {ram}.
 * Define {portable} to avoid __builtin_popcount even on GCC and Clang.
 */
#ifndef {guard}
#define {guard}

#include <stdint.h>

#ifdef __cplusplus
extern \"C\" {{
#endif

#define {upper}_INPUTS {inputs}
#define {upper}_CLASSES {classes}
{input_macro}
#define {upper}_WORD_BITS {word}
#define {upper}_CONST_BYTES {total}
#define {upper}_STATIC_BYTES {static_ram}
#define {upper}_STACK_BYTES {stack}

int {predict}(const uint8_t pixels[{upper}_INPUTS], float scores_out[{upper}_CLASSES]);
{extra}
#ifdef __cplusplus
}}
#endif

#endif
",
        file = n.header_file,
        shape = plan.shape_text(),
        provenance = one_line(provenance),
        predict = n.predict,
        inputs = plan.input_len,
        classes = plan.num_classes(),
        pixel_meaning = match plan.takes_pixels() {
            true => "u8 input: the values 0..255 enter the first layer".to_string(),
            false => format!("a pixel is +1 when >= {}", plan.input_threshold),
        },
        input_macro = match plan.takes_pixels() {
            true => format!("#define {}_INPUT_U8 1", n.upper),
            false => format!(
                "#define {}_INPUT_THRESHOLD {}",
                n.upper, plan.input_threshold
            ),
        },
        rule = rule,
        score = match plan.score_scale {
            None => "(float)dot + bias",
            Some(_) => "(float)dot * scale + bias (the\n *               product rounded to float, then added; one scale per class)",
        },
        total = sizes.total(),
        word = plan.word.bits(),
        stack = sizes.stack,
        static_ram = sizes.static_ram,
        layout = match plan.convs.first() {
            Some(c) => format!(
                ", a {}x{}x{} image row by row with its channels innermost (NHWC)",
                c.input.0, c.input.1, c.input.2
            ),
            None => String::new(),
        },
        ram = if plan.convs.is_empty() {
            format!("stack arrays: {} bytes", sizes.stack)
        } else {
            format!(
                "stack arrays: {} bytes.\n * Static RAM for activations: {} bytes (two map buffers and a window row),\n * so {} is not reentrant",
                sizes.stack, sizes.static_ram, n.predict
            )
        },
        portable = n.portable_macro,
        extra = metadata_declarations(plan, n),
        guard = n.guard,
        upper = n.upper,
    );
    s
}

/// The encode function and the class names' table, each with a comment
/// saying what it is, for a model that stores them; empty otherwise.
fn metadata_declarations(plan: &Plan, n: &Names) -> String {
    let mut s = String::new();
    let upper = &n.upper;
    if let Some(e) = &plan.encoding {
        let d = e.features();
        let what = match e {
            bnn_core::FeatureEncoding::MinMax { .. } => {
                "value d is (x_d - min_d) * 255 / (max_d - min_d) in float,\n \
                 * clamped to 0..255 and rounded as floor(q + 0.5) (0 where max_d == min_d)"
                    .to_string()
            }
            bnn_core::FeatureEncoding::Thermometer { levels, .. } => {
                format!("value d*{levels} + k is 255 when x_d >= cut (d, k), else 0")
            }
        };
        let _ = write!(
            s,
            "
/* The model's stored feature encoding, {describe}:
 * {what}.
 * Bit for bit the engine's when float arithmetic is IEEE single precision
 * (FLT_EVAL_METHOD 0); a NaN feature encodes as 0. Pass `out` to {predict}. */
#define {upper}_FEATURES {d}
void {encode}(const float features[{upper}_FEATURES], uint8_t out[{upper}_INPUTS]);
",
            describe = e.describe(),
            predict = n.predict,
            encode = n.encode,
        );
    }
    if plan.class_names.is_some() {
        let _ = write!(
            s,
            "
/* The class names, UTF-8, indexed by the class {predict} returns. */
#define {upper}_HAS_CLASS_NAMES 1
extern const char *const {names}[{upper}_CLASSES];
",
            predict = n.predict,
            names = n.class_names,
        );
    }
    s
}

/// Free text made safe for a C comment: one line of printable ASCII, no
/// comment terminator and no trigraph (`??/` at a line end would splice the
/// next line into the comment).
pub fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(200)
        .collect();
    let mut line = line.replace("*/", "* /");
    while line.contains("??") {
        line = line.replace("??", "? ?");
    }
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "(no description)".into()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_cannot_break_the_comment() {
        assert_eq!(one_line("a */ b\n??/\nc"), "a * / b ? ?/ c");
        assert_eq!(one_line("x\n\ty \u{e9}"), "x y");
        assert_eq!(one_line(" \n"), "(no description)");
        assert_eq!(one_line("???/"), "? ? ?/");
    }
}
