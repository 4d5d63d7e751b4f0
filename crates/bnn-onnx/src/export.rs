//! A bnn model as a standard ONNX graph (opset 13) that ONNX Runtime runs
//! with the same classes and the same f32 scores as the engine.
//!
//! It lives beside the importer, not in `bnn-export` (which generates code
//! directories): the graph is written in exactly the patterns
//! [`crate::lower`] reads, so `bnn import` of an export gives the model
//! back, and the round trip is tested in this crate.
//!
//! Every value on the way is an integer held exactly in f32: pixels
//! 0..=255, ±1 activations, and dot products of ±1 weights, whose size
//! is bounded by the layer's inputs (`255·n` for a u8 first layer, refused
//! beyond 2^24). So `MatMul` and `Conv` compute the engine's dots exactly,
//! in any summation order, and the scores `dot + bias` round once, as the
//! engine's do. The graph:
//!
//! - input `pixels`, uint8 `(N, H, W, C)` (`(N, D)` for a flat input
//!   shape), cast to float; a model with a stored feature encoding takes
//!   `features`, float `(N, D)`, and encodes it in the graph in the
//!   engine's f32 order;
//! - a binary input: `Where(x >= t, 1, -1)`;
//! - a convolution: `Conv` (OIHW ±1 weights) on the NCHW map (a `Transpose`
//!   of the channels-last input); "same" padding is `Conv` padding (0) on
//!   pixels and `Pad` with −1 on a binary map, as the engine pads;
//! - 2×2 pooling: `MaxPool` of the dot before the threshold, which is what
//!   the engine's OR (unflipped) and AND (flipped) pooling of bits equals;
//! - a threshold: `Where(dot >= v, 1, -1)`, or with flipped neurons
//!   `Where(s·dot >= s·v, 1, -1)`, `s = −1` where the neuron fires at
//!   `dot <= v`: exact at the threshold, where `Sign` would give 0;
//! - a dense layer after a convolution: `Flatten` of the NCHW map, with the
//!   weight columns permuted so that the layer reads the engine's NHWC
//!   order (the same result as a `Transpose` back to NHWC, one op fewer);
//! - outputs `scores` (float `(N, classes)`: `MatMul` + `Add` bias, with
//!   a `Mul` by the per-class score scale between them when the model has
//!   one, rounding as the engine's `dot·scale + bias` does) and
//!   `classes` (int64 `(N,)`: `ArgMax`, which takes the first maximum as
//!   the engine does; the seed rule is `ArgMax` of `scores >= 0`).

use bnn_core::conv::Padding;
use bnn_core::{DecisionRule, FeatureEncoding, Model, PixelDense, Threshold, Transform};

use crate::encode::{self, Msg};
use crate::Error;

/// The opset the graph imports: `GreaterOrEqual` needs 12, and 13 takes
/// `Pad`'s, `Clip`'s and `Unsqueeze`'s arguments as inputs.
pub const OPSET: i64 = 13;
/// The IR version of opset 13.
const IR_VERSION: i64 = 7;
/// Largest dot held exactly in f32.
const EXACT: usize = 1 << 24;

/// What [`export`] wrote, for the summary.
#[derive(Debug)]
pub struct Exported {
    pub bytes: Vec<u8>,
    pub nodes: usize,
    /// The graph input, described: `pixels: uint8 (N, 28, 28, 1)`.
    pub input: String,
}

/// Node and initializer lists being built; every name is fresh.
#[derive(Default)]
struct Builder {
    nodes: Vec<Msg>,
    inits: Vec<Msg>,
    count: usize,
}

impl Builder {
    fn fresh(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}_{}", self.count)
    }

    /// Adds a node of one output, named after `base`; returns the output.
    fn op(&mut self, op: &str, base: &str, inputs: &[&str], attrs: &[Msg]) -> String {
        let out = self.fresh(base);
        self.op_into(op, inputs, &out, attrs);
        out
    }

    fn op_into(&mut self, op: &str, inputs: &[&str], out: &str, attrs: &[Msg]) {
        let name = format!("{op}_{}", self.nodes.len());
        self.nodes
            .push(encode::node(op, &name, inputs, &[out], attrs));
    }

    fn floats(&mut self, base: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(base);
        self.inits.push(encode::tensor(&name, dims, values));
        name
    }

    fn scalar(&mut self, base: &str, v: f32) -> String {
        self.floats(base, &[], &[v])
    }

    fn ints(&mut self, base: &str, values: &[i64]) -> String {
        let name = self.fresh(base);
        self.inits
            .push(encode::int_tensor(&name, &[values.len() as i64], values));
        name
    }

    /// `Where(x >= v, 1, -1)` per channel of a value whose channels lie on
    /// axis 1 (`rank` 2 or 4); `s·x >= s·v` for flipped neurons.
    fn threshold(
        &mut self,
        x: &str,
        thresholds: &[Threshold],
        bound: usize,
        rank: usize,
    ) -> String {
        let r = bound as i64 + 1;
        let value = |t: &Threshold| i64::from(t.value).clamp(-r, r) as f32;
        let n = thresholds.len() as i64;
        let dims: Vec<i64> = if rank == 4 {
            vec![1, n, 1, 1]
        } else {
            vec![1, n]
        };
        let cond = if thresholds.iter().any(|t| t.flip) {
            let s: Vec<f32> = thresholds
                .iter()
                .map(|t| if t.flip { -1.0 } else { 1.0 })
                .collect();
            let v: Vec<f32> = thresholds
                .iter()
                .zip(&s)
                .map(|(t, s)| value(t) * s)
                .collect();
            let s = self.floats("flip", &dims, &s);
            let v = self.floats("threshold", &dims, &v);
            let signed = self.op("Mul", "signed", &[x, &s], &[]);
            self.op("GreaterOrEqual", "fires", &[&signed, &v], &[])
        } else {
            let v: Vec<f32> = thresholds.iter().map(value).collect();
            let v = self.floats("threshold", &dims, &v);
            self.op("GreaterOrEqual", "fires", &[x, &v], &[])
        };
        let (one, minus) = (self.scalar("one", 1.0), self.scalar("minus_one", -1.0));
        self.op("Where", "bits", &[&cond, &one, &minus], &[])
    }

    /// `x · Wᵀ` for a layer of `rows` neurons over `cols` inputs, the
    /// weights `signs` row-major; `column(i)` is the engine's column that
    /// ONNX input column `i` holds.
    fn matmul(
        &mut self,
        x: &str,
        signs: &[i8],
        rows: usize,
        cols: usize,
        column: impl Fn(usize) -> usize,
    ) -> String {
        let mut w = vec![0f32; rows * cols];
        for i in 0..cols {
            let c = column(i);
            for j in 0..rows {
                w[i * rows + j] = f32::from(signs[j * cols + c]);
            }
        }
        let w = self.floats("weight", &[cols as i64, rows as i64], &w);
        self.op("MatMul", "dot", &[x, &w], &[])
    }
}

/// Refuses a layer whose dots f32 would not hold exactly.
fn check_exact(bound: usize, what: &str) -> Result<(), Error> {
    if bound >= EXACT {
        return Err(Error::new(format!(
            "{what}: its dot products reach {bound}, beyond the 2^24 that float32 holds exactly"
        )));
    }
    Ok(())
}

/// The model as an ONNX file: `name` is the graph's name, `doc` its doc
/// string (the model's description).
pub fn export(model: &Model, name: &str, doc: &str) -> Result<Exported, Error> {
    let mut b = Builder::default();
    let shape = model.input_shape();
    let (h, w, c) = (
        i64::from(shape.height),
        i64::from(shape.width),
        i64::from(shape.channels),
    );
    let len = model.input_len() as i64;
    let convs = model.convs();
    // The input as floats 0..=255, flat (N, len) or (N, H, W, C).
    let (input, mut x, flat) = match model.feature_encoding() {
        Some(encoding) => {
            let d = encoding.features() as i64;
            let info = encode::typed_value_info("features", 1, &[None, Some(d)]);
            let x = encode_features(&mut b, "features", encoding);
            (info, x, true)
        }
        None => {
            let dims: Vec<Option<i64>> = if shape.is_flat() {
                vec![None, Some(len)]
            } else {
                vec![None, Some(h), Some(w), Some(c)]
            };
            let info = encode::typed_value_info("pixels", 2, &dims);
            let to = encode::attr_int("to", 1);
            let x = b.op("Cast", "values", &["pixels"], &[to]);
            (info, x, shape.is_flat())
        }
    };
    let input_text = match model.feature_encoding() {
        Some(e) => format!("features: float (N, {})", e.features()),
        None if shape.is_flat() => format!("pixels: uint8 (N, {len})"),
        None => format!("pixels: uint8 (N, {h}, {w}, {c})"),
    };
    if convs.is_empty() {
        if !flat {
            x = b.op("Flatten", "flat", &[&x], &[encode::attr_int("axis", 1)]);
        }
    } else {
        if flat {
            let dims = b.ints("shape", &[-1, h, w, c]);
            x = b.op("Reshape", "nhwc", &[&x, &dims], &[]);
        }
        let perm = encode::attr_ints("perm", &[0, 3, 1, 2]);
        x = b.op("Transpose", "nchw", &[&x], &[perm]);
    }
    if let bnn_core::InputEncoding::Binary { threshold } = model.input_encoding() {
        let cond = b.scalar("input_threshold", f32::from(threshold));
        let fires = b.op("GreaterOrEqual", "lit", &[&x, &cond], &[]);
        let (one, minus) = (b.scalar("one", 1.0), b.scalar("minus_one", -1.0));
        x = b.op("Where", "input_bits", &[&fires, &one, &minus], &[]);
    }
    let mut layer = 0;
    for stage in convs {
        layer += 1;
        let conv = stage.conv();
        let (k, in_c, filters) = (conv.k(), conv.in_channels(), conv.out_channels());
        let window = conv.window();
        let bound = if stage.takes_pixels() {
            PixelDense::dot_bound(window)
        } else {
            window
        };
        check_exact(bound, &format!("layer {layer}"))?;
        let pad = conv.padding().before(k) as i64;
        let mut pads = vec![0i64; 4];
        match conv.padding() {
            // A 1×1 kernel pads nothing.
            Padding::Same | Padding::Zero if pad == 0 => {}
            Padding::Valid => {}
            // The engine reads a position outside the image as pixel 0 on
            // a u8 first convolution, and as −1 on a binary map; zero
            // padding reads 0 on both, as ONNX's Conv pads.
            Padding::Same if stage.takes_pixels() => pads = vec![pad; 4],
            Padding::Zero => pads = vec![pad; 4],
            Padding::Same => {
                let p = b.ints("pads", &[0, 0, pad, pad, 0, 0, pad, pad]);
                let v = b.scalar("pad_value", -1.0);
                x = b.op("Pad", "padded", &[&x, &p, &v], &[]);
            }
        }
        let signs = conv.weights().to_pm1();
        // The engine's window is (ky, kx, c); ONNX's filter is (c, ky, kx).
        let mut oihw = vec![0f32; filters * window];
        for f in 0..filters {
            for ky in 0..k {
                for kx in 0..k {
                    for ch in 0..in_c {
                        oihw[((f * in_c + ch) * k + ky) * k + kx] =
                            f32::from(signs[f * window + (ky * k + kx) * in_c + ch]);
                    }
                }
            }
        }
        let dims = [filters as i64, in_c as i64, k as i64, k as i64];
        let wname = b.floats("filters", &dims, &oihw);
        let attrs = [
            encode::attr_ints("kernel_shape", &[k as i64, k as i64]),
            encode::attr_ints("pads", &pads),
        ];
        let mut dot = b.op("Conv", "conv", &[&x, &wname], &attrs);
        if stage.pooled() {
            layer += 1;
            let attrs = [
                encode::attr_ints("kernel_shape", &[2, 2]),
                encode::attr_ints("strides", &[2, 2]),
            ];
            dot = b.op("MaxPool", "pooled", &[&dot], &attrs);
        }
        x = b.threshold(&dot, conv.thresholds(), bound, 4);
    }
    // Columns of the first dense layer: a flattened NCHW map holds
    // (c, y, x) at column i, the engine (y, x, c).
    let map = convs.last().map(|s| s.output_shape());
    if map.is_some() {
        x = b.op("Flatten", "flat", &[&x], &[encode::attr_int("axis", 1)]);
    }
    let column = move |i: usize| match map {
        Some(m) => {
            let (mc, hw) = (m.channels as usize, (m.height * m.width) as usize);
            (i % hw) * mc + i / hw
        }
        None => i,
    };
    let mut dense: Vec<(Vec<i8>, usize, usize, Transform, usize)> = Vec::new();
    if let Some(first) = model.pixel_layer() {
        let bound = PixelDense::dot_bound(first.inputs());
        check_exact(bound, "layer 1")?;
        dense.push((
            first.weights().to_pm1(),
            first.outputs(),
            first.inputs(),
            first.transform().clone(),
            bound,
        ));
    }
    for l in model.layers() {
        dense.push((
            l.weights().to_pm1(),
            l.outputs(),
            l.inputs(),
            l.transform().clone(),
            l.inputs(),
        ));
    }
    let mut scores = None;
    for (d, (signs, rows, cols, transform, bound)) in dense.iter().enumerate() {
        let dot = if d == 0 {
            b.matmul(&x, signs, *rows, *cols, column)
        } else {
            b.matmul(&x, signs, *rows, *cols, |i| i)
        };
        match transform {
            Transform::Sign(thresholds) => x = b.threshold(&dot, thresholds, *bound, 2),
            Transform::Scores(bias) => {
                // A per-class scale multiplies the exact dot (one f32
                // rounding) before the bias is added (another), the
                // engine's order.
                let dot = match model.score_scale() {
                    Some(scale) => {
                        let scale = b.floats("score_scale", &[*rows as i64], scale);
                        b.op("Mul", "scaled", &[&dot, &scale], &[])
                    }
                    None => dot,
                };
                let bias = b.floats("bias", &[*rows as i64], bias);
                b.op_into("Add", &[&dot, &bias], "scores", &[]);
                scores = Some(*rows);
            }
        }
    }
    let Some(classes) = scores else {
        return Err(Error::new("the model has no score layer".into()));
    };
    let argmax = [
        encode::attr_int("axis", 1),
        encode::attr_int("keepdims", 0),
        encode::attr_int("select_last_index", 0),
    ];
    match model.rule() {
        DecisionRule::Scores => b.op_into("ArgMax", &["scores"], "classes", &argmax),
        DecisionRule::Seed => {
            // The first class whose score is >= 0, else class 0: the first
            // maximum of the 0/1 test.
            let zero = b.scalar("zero", 0.0);
            let up = b.op("GreaterOrEqual", "non_negative", &["scores", &zero], &[]);
            let up = b.op("Cast", "signs", &[&up], &[encode::attr_int("to", 1)]);
            b.op_into("ArgMax", &[&up], "classes", &argmax);
        }
    }
    let outputs = [
        encode::typed_value_info("scores", 1, &[None, Some(classes as i64)]),
        encode::typed_value_info("classes", 7, &[None]),
    ];
    let nodes = b.nodes.len();
    let graph = encode::named_graph(name, doc, &b.nodes, &b.inits, &[input], &outputs);
    let bytes = encode::produced_model(IR_VERSION, OPSET, "bnn", env!("CARGO_PKG_VERSION"), &graph);
    Ok(Exported {
        bytes,
        nodes,
        input: input_text,
    })
}

/// The stored feature encoding as graph nodes, in the engine's f32 order
/// ([`FeatureEncoding`]): the encoded row, flat, as floats 0..=255.
fn encode_features(b: &mut Builder, x: &str, encoding: &FeatureEncoding) -> String {
    match encoding {
        FeatureEncoding::MinMax { min, max } => {
            // q = (x − min)·255 / (max − min); 0 where max == min. A
            // range beyond f32 (max − min = inf) encodes to 0 as well:
            // finite/inf is 0 and inf/inf is NaN, which the engine's
            // comparisons send to 0. Such a feature divides by 1 and is
            // zeroed after the clip, so no inf or NaN reaches the output.
            let d = min.len() as i64;
            let dead = |lo: &f32, hi: &f32| hi == lo || !(hi - lo).is_finite();
            let range: Vec<f32> = min
                .iter()
                .zip(max)
                .map(|(lo, hi)| if dead(lo, hi) { 1.0 } else { hi - lo })
                .collect();
            let lo = b.floats("min", &[d], min);
            let range = b.floats("range", &[d], &range);
            let k255 = b.scalar("k255", 255.0);
            let half = b.scalar("half", 0.5);
            let zero = b.scalar("zero", 0.0);
            let shifted = b.op("Sub", "shifted", &[x, &lo], &[]);
            let scaled = b.op("Mul", "scaled", &[&shifted, &k255], &[]);
            let q = b.op("Div", "q", &[&scaled, &range], &[]);
            // 0 < q < 255: floor(q + 0.5); q <= 0 → 0 and q >= 255 → 255,
            // which the clip gives, since floor(q + 0.5) is <= 0 or >= 255
            // there.
            let rounded = b.op("Add", "q_half", &[&q, &half], &[]);
            let rounded = b.op("Floor", "rounded", &[&rounded], &[]);
            let mut out = b.op("Clip", "encoded", &[&rounded, &zero, &k255], &[]);
            if min.iter().zip(max).any(|(lo, hi)| dead(lo, hi)) {
                let mask: Vec<f32> = min
                    .iter()
                    .zip(max)
                    .map(|(lo, hi)| if dead(lo, hi) { 0.0 } else { 1.0 })
                    .collect();
                let mask = b.floats("live", &[d], &mask);
                out = b.op("Mul", "encoded", &[&out, &mask], &[]);
            }
            out
        }
        FeatureEncoding::Thermometer { levels, cuts } => {
            // Value (d, k) is 255 when x_d >= cut (d, k), else 0; the row
            // is the D×K values in that order.
            let d = (cuts.len() / levels) as i64;
            let k = *levels as i64;
            let axes = b.ints("axes", &[2]);
            let column = b.op("Unsqueeze", "column", &[x, &axes], &[]);
            let cuts = b.floats("cuts", &[d, k], cuts);
            let over = b.op("GreaterOrEqual", "over", &[&column, &cuts], &[]);
            let (on, off) = (b.scalar("k255", 255.0), b.scalar("zero", 0.0));
            let code = b.op("Where", "code", &[&over, &on, &off], &[]);
            let dims = b.ints("shape", &[-1, d * k]);
            b.op("Reshape", "encoded", &[&code, &dims], &[])
        }
    }
}
