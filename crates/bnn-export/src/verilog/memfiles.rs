//! The `$readmemh` files: one memory word per line, most significant digit
//! first, after one `//` comment line saying what the words are.

use std::fmt::Write;

use super::Geometry;
use crate::plan::{Kind, Plan};
use crate::vectors::Vectors;

fn lines(comment: &str, digits: usize, words: impl IntoIterator<Item = u64>) -> String {
    let mut s = format!("// {comment}\n");
    for w in words {
        let _ = writeln!(s, "{w:0digits$x}");
    }
    s
}

/// A memory word wider than 64 bits, from its fields, least significant
/// first: `(value, width)`.
fn wide(fields: impl IntoIterator<Item = (u64, usize)>, bits: usize) -> String {
    let mut nibbles = vec![0u8; bits.div_ceil(4)];
    let mut at = 0;
    for (value, width) in fields {
        for b in 0..width {
            if value >> b & 1 == 1 {
                nibbles[(at + b) / 4] |= 1 << ((at + b) % 4);
            }
        }
        at += width;
    }
    debug_assert!(at <= bits);
    nibbles
        .iter()
        .rev()
        .map(|&n| char::from_digit(u32::from(n), 16).expect("a nibble"))
        .collect()
}

fn wide_lines(comment: &str, rows: impl IntoIterator<Item = String>) -> String {
    let mut s = format!("// {comment}\n");
    for r in rows {
        s.push_str(&r);
        s.push('\n');
    }
    s
}

/// One row per cycle of work, layer by layer, neuron group by group, chunk
/// by chunk: the order the module reads them in, so its address simply
/// counts up. Lane `pe * SIMD + s` holds word `chunk * SIMD + s` of neuron
/// `group * PE + pe`, or 0 past the row or the layer.
pub fn weights(plan: &Plan, g: &Geometry) -> String {
    let w = g.word;
    let mut rows = Vec::with_capacity(g.rows());
    for (layer, fold) in plan.layers.iter().zip(&g.layers) {
        for group in 0..fold.groups {
            for chunk in 0..fold.chunks {
                let lanes = (0..g.pe).flat_map(|pe| {
                    let j = group * g.pe + pe;
                    (0..g.simd).map(move |s| {
                        let k = chunk * g.simd + s;
                        let word = if j < layer.outputs && k < layer.words_per_row {
                            layer.row(j)[k]
                        } else {
                            0
                        };
                        (word, w)
                    })
                });
                rows.push(wide(lanes, g.lanes() * w));
            }
        }
    }
    wide_lines(
        &format!(
            "{} rows of {} lanes x {w} bits (SIMD {} x PE {}): layer, neuron group, chunk; lane pe*{}+s = word chunk*{}+s of neuron group*{}+pe; bit i of a row is bit i % {w} of word i / {w}, 1 = +1",
            g.rows(),
            g.lanes(),
            g.simd,
            g.pe,
            g.simd,
            g.simd,
            g.pe
        ),
        rows,
    )
}

/// One row per hidden neuron group: PE entries `{flip, limit}`, the limit
/// in two's complement, entry `pe` for neuron `group * PE + pe` (all 0 past
/// the layer).
pub fn limits(plan: &Plan, g: &Geometry) -> String {
    let w = g.limit_width;
    let mask = (1u64 << w) - 1;
    let mut rows = Vec::with_capacity(g.hidden_groups());
    for (layer, fold) in plan.layers.iter().zip(&g.layers) {
        let Kind::Hidden(limits) = &layer.kind else {
            continue;
        };
        for group in 0..fold.groups {
            let entries = (0..g.pe).map(|pe| {
                let t = limits.get(group * g.pe + pe);
                let v = t.map_or(0, |t| u64::from(t.flip) << w | (t.limit as u64 & mask));
                (v, w + 1)
            });
            rows.push(wide(entries, g.pe * (w + 1)));
        }
    }
    wide_lines(
        &format!(
            "{} hidden neuron groups x {} entries of {} bits: bit {w} = flip, bits {}:0 = signed popcount limit; fires iff (popcount <= limit) != flip",
            g.hidden_groups(),
            g.pe,
            w + 1,
            w - 1
        ),
        rows,
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

/// The images as the module's port takes them: `N` pixels per write
/// (`N` = the geometry's pixels per write), pixel `N·k + i` in bits
/// `8i+7:8i` of write `k`.
pub fn pixels(v: &Vectors, g: &Geometry) -> String {
    let n = g.pixels_per_write;
    let per_image = v.input_len.div_ceil(n);
    let rows = (0..v.count).flat_map(|i| {
        let image = v.image(i);
        (0..per_image).map(move |k| {
            let px = image.iter().skip(k * n).take(n).map(|&p| (u64::from(p), 8));
            wide(px, 8 * n)
        })
    });
    wide_lines(
        &format!(
            "{} images x {per_image} writes of {n} pixels (pixel {n}k+i in bits 8i+7:8i of write k)",
            v.count
        ),
        rows,
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
