//! The `$readmemh` files: one memory word per line, most significant digit
//! first, after one `//` comment line saying what the words are.

use std::fmt::Write;

use super::{Geometry, PIXELS_PER_WRITE};
use crate::plan::{Kind, Plan};
use crate::vectors::Vectors;

fn lines(comment: &str, digits: usize, words: impl IntoIterator<Item = u64>) -> String {
    let mut s = format!("// {comment}\n");
    for w in words {
        let _ = writeln!(s, "{w:0digits$x}");
    }
    s
}

/// Every layer's weight words, layer after layer, neuron after neuron: the
/// order the module reads them in, so its address simply counts up.
pub fn weights(plan: &Plan) -> String {
    let bits = plan.word.bits();
    lines(
        &format!(
            "{} weight words of {bits} bits: layer by layer, neuron by neuron; bit i of a neuron's row is bit i % {bits} of its word i / {bits}, 1 = +1",
            plan.weight_words()
        ),
        bits / 4,
        plan.layers.iter().flat_map(|l| l.weights.iter().copied()),
    )
}

/// `{flip, limit}` per hidden neuron, the limit in two's complement.
pub fn limits(plan: &Plan, g: &Geometry) -> String {
    let w = g.limit_width;
    let mask = (1u64 << w) - 1;
    let words = plan.hidden().iter().flat_map(|l| match &l.kind {
        Kind::Hidden(limits) => limits
            .iter()
            .map(|t| u64::from(t.flip) << w | (t.limit as u64 & mask))
            .collect::<Vec<_>>(),
        Kind::Output(_) => unreachable!("hidden layers only"),
    });
    lines(
        &format!(
            "{} hidden neurons: bit {w} = flip, bits {}:0 = signed popcount limit; fires iff (popcount <= limit) != flip",
            g.hidden_neurons,
            w - 1
        ),
        (w + 1).div_ceil(4),
        words,
    )
}

/// For output neuron `j` and popcount `p`, at `j·(n+1) + p`: the engine's
/// f32 score bits.
pub fn scores(plan: &Plan) -> String {
    let out = plan.output();
    let n = out.inputs as u32;
    let words =
        (0..out.outputs).flat_map(|j| (0..=n).map(move |p| u64::from(out.score(j, p).to_bits())));
    lines(
        &format!(
            "{} output neurons x {} popcounts: IEEE-754 single score (n - 2p) + bias at neuron * {} + popcount",
            out.outputs,
            n + 1,
            n + 1
        ),
        8,
        words,
    )
}

/// The images as the module's port takes them: eight pixels per 64-bit
/// word, pixel `8k + i` in bits `8i+7:8i` of word `k`.
pub fn pixels(v: &Vectors) -> String {
    let per_image = v.input_len.div_ceil(PIXELS_PER_WRITE);
    let words = (0..v.count).flat_map(|i| {
        let image = v.image(i);
        (0..per_image).map(move |k| {
            image
                .iter()
                .skip(k * PIXELS_PER_WRITE)
                .take(PIXELS_PER_WRITE)
                .enumerate()
                .fold(0u64, |w, (b, &p)| w | u64::from(p) << (8 * b))
        })
    });
    lines(
        &format!(
            "{} images x {per_image} words of 8 pixels (pixel 8k+i in bits 8i+7:8i of word k)",
            v.count
        ),
        16,
        words,
    )
}

/// Per image: the engine's class, then its f32 score bits, class by class.
pub fn expected(v: &Vectors) -> String {
    let words = (0..v.count).flat_map(|i| {
        std::iter::once(v.classes[i] as u64)
            .chain(v.scores_of(i).iter().map(|s| u64::from(s.to_bits())))
    });
    lines(
        &format!(
            "{} images x (class, then {} IEEE-754 single scores), from the engine",
            v.count, v.num_classes
        ),
        8,
        words,
    )
}
