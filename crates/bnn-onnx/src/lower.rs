//! The graph as a bnn model: each node's output is interpreted, in
//! topological order, as one of a few kinds of value, and the only values
//! the engine can hold are ever built:
//!
//! - a constant (initializers, `Constant`, and any arithmetic on them, so
//!   `Sign(W)`, `BipolarQuant(W)` or `W·s` fold into plain weights);
//! - the graph input, the raw pixel values 0..=255 as floats, with the
//!   elementwise preprocessing applied to it so far (`Div` 255, `Sub`
//!   mean, `Div` std), kept as steps so that they can be replayed in f32;
//! - a pending layer: `a_j·dot_j + b_j` per output channel, where `dot_j`
//!   is the integer dot of ±1 weights with the layer's input (bits, or the
//!   u8 pixels of a first layer); `Gemm`, `MatMul`, `Conv`, bias `Add`s,
//!   `BatchNormalization` and constant `Mul`/`Add`/`Sub`/`Div` only change
//!   `a` and `b`;
//! - bits: the output of a binarizer (`Sign`, `Where(x >= 0, 1, -1)`,
//!   `BipolarQuant`), which turns the pending layer into an engine layer
//!   with the integer threshold `a·dot + b >= 0` folds to.
//!
//! The graph output must be a pending dense layer (optionally under
//! `Softmax`/`LogSoftmax`): the score layer, whose `a_j` become the
//! model's per-class score scale where they differ by class. Every other
//! combination is refused, naming the node.
//!
//! The folds are computed in f64 on the exact real-number semantics of
//! the graph; ONNX Runtime computes in f32, so a pre-activation within
//! f32 rounding of a threshold can come out on the other side there. The
//! tests compare classes with ONNX Runtime on MNIST to show how rare that
//! is (never, in every pattern they build).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use bnn_core::conv::{Conv2d, Layer, Padding};
use bnn_core::{
    BinaryDense, BitMatrix, DecisionRule, InputEncoding, InputShape, Model, PixelDense, Threshold,
    Transform,
};

use crate::graph::{decode, describe, Const, MAX_ELEMENTS};
use crate::wire::{Attribute, Graph, Node, ValueInfo};
use crate::{quote, Error};

/// Most values in the graph input: far more than the images the engine
/// classifies, and few enough that checking the input's preprocessing at
/// each of the 256 pixel values stays quick.
pub const MAX_INPUT: usize = 1 << 16;
/// Relative difference within which two weight magnitudes (or class
/// scales) count as the same: about 8 f32 ulps.
const SAME_SCALE: f64 = 1e-6;
/// Most elementwise preprocessing steps on the input.
const MAX_STEPS: usize = 16;

/// An imported model, with what the import had to say about it.
#[derive(Debug)]
pub struct Imported {
    pub model: Model,
    /// Where the bnn model may differ from the ONNX graph: pre-activations
    /// that can be exactly 0 under `Sign` (ONNX gives 0, bnn +1).
    pub warnings: Vec<String>,
    /// What the scores are, and other facts worth printing.
    pub notes: Vec<String>,
    /// The bnn scores are the ONNX output divided by this (1 when exact).
    pub score_scale: f64,
    ties: Vec<TieSite>,
}

/// How often a possible tie happened on some images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TieCount {
    /// The binarizing node.
    pub node: String,
    /// Images with at least one tie there.
    pub images: usize,
    /// Ties in all (neurons, map positions or pixels).
    pub values: u64,
}

#[derive(Debug)]
enum TieSite {
    /// The input binarizer's preprocessing is exactly 0 at these pixel
    /// values.
    Pixels { node: String, values: Vec<u8> },
    /// Hidden layer `hidden` (the index `Model::hidden_activations` gives
    /// it) can tie; `strict` is the model with those neurons' ties sent
    /// the other way, so the bits that differ are the ties.
    Layer {
        node: String,
        hidden: usize,
        strict: Box<Model>,
    },
}

impl Imported {
    /// The description stored in the `.bnn` file: where it came from, by
    /// what (`by`: the command or call) and what was folded.
    pub fn description(&self, file_name: &str, file_bytes: Option<u64>, by: &str) -> String {
        let size = file_bytes.map_or(String::new(), |n| format!(" ({n} bytes)"));
        let scores = if self.score_scale == 1.0 {
            "scores are the ONNX logits".to_string()
        } else {
            format!("scores are the ONNX logits / {}", self.score_scale)
        };
        format!(
            "imported from {file_name}{size} by {by}: weight signs packed, scales, biases, batch norms and input preprocessing folded into integer thresholds; {scores}"
        )
    }

    /// Whether any binarizer can meet an exact 0 (see [`Imported::warnings`]).
    pub fn may_tie(&self) -> bool {
        !self.ties.is_empty()
    }

    /// Counts, on `pixels` (whole images), how often each possible tie
    /// happens: where ONNX's `Sign` would give 0 and the bnn model +1.
    pub fn count_ties(&self, pixels: &[u8]) -> Result<Vec<TieCount>, Error> {
        let n = self.model.input_len();
        if !pixels.len().is_multiple_of(n) {
            return Err(Error::new(format!(
                "{} bytes of pixels are not whole images of {n}",
                pixels.len()
            )));
        }
        let kernel = bnn_core::kernel::active();
        let mut base = None;
        let mut counts = Vec::new();
        for site in &self.ties {
            match site {
                TieSite::Pixels { node, values } => {
                    let mut count = TieCount {
                        node: node.clone(),
                        images: 0,
                        values: 0,
                    };
                    for image in pixels.chunks_exact(n) {
                        let hits = image.iter().filter(|p| values.contains(p)).count();
                        count.images += usize::from(hits > 0);
                        count.values += hits as u64;
                    }
                    counts.push(count);
                }
                TieSite::Layer {
                    node,
                    hidden,
                    strict,
                } => {
                    if base.is_none() {
                        base = Some(
                            self.model
                                .hidden_activations(kernel, pixels)
                                .map_err(|e| Error::new(e.to_string()))?,
                        );
                    }
                    let ours = &base.as_ref().expect("computed above")[*hidden];
                    let theirs = strict
                        .hidden_activations(kernel, pixels)
                        .map_err(|e| Error::new(e.to_string()))?;
                    let theirs = &theirs[*hidden];
                    let mut count = TieCount {
                        node: node.clone(),
                        images: 0,
                        values: 0,
                    };
                    for r in 0..ours.rows() {
                        let diff: u32 = ours
                            .row(r)
                            .iter()
                            .zip(theirs.row(r))
                            .map(|(a, b)| (a ^ b).count_ones())
                            .sum();
                        count.images += usize::from(diff > 0);
                        count.values += u64::from(diff);
                    }
                    counts.push(count);
                }
            }
        }
        Ok(counts)
    }
}

/// Shape of a value, batch dimension left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `(N, n)`; `chw` when it is a flattened `(N, C, H, W)` map, whose
    /// flat order is NCHW where the engine's is NHWC.
    Flat {
        n: usize,
        chw: Option<(usize, usize, usize)>,
    },
    /// `(N, C, H, W)`.
    Map { c: usize, h: usize, w: usize },
    /// `(N, H, W, C)`: a uint8 graph input, channels last as images are
    /// stored (and as bnn takes them); its flat order is the engine's, and
    /// a `Transpose` with perm `(0, 3, 1, 2)` makes it the NCHW map a
    /// `Conv` reads.
    Nhwc { h: usize, w: usize, c: usize },
}

impl Layout {
    fn len(self) -> usize {
        match self {
            Layout::Flat { n, .. } => n,
            Layout::Map { c, h, w } | Layout::Nhwc { h, w, c } => c * h * w,
        }
    }

    /// Dimensions with a batch of 1.
    fn dims(self) -> Vec<usize> {
        match self {
            Layout::Flat { n, .. } => vec![1, n],
            Layout::Map { c, h, w } => vec![1, c, h, w],
            Layout::Nhwc { h, w, c } => vec![1, h, w, c],
        }
    }

    /// Output channels a pending layer's `a` and `b` run over.
    fn channels(self) -> usize {
        match self {
            Layout::Flat { n, .. } => n,
            Layout::Map { c, .. } | Layout::Nhwc { c, .. } => c,
        }
    }

    /// Values per channel (1 for a flat vector).
    fn per_channel(self) -> usize {
        match self {
            Layout::Flat { .. } => 1,
            Layout::Map { h, w, .. } | Layout::Nhwc { h, w, .. } => h * w,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum StepOp {
    Add,
    Sub,
    /// `c − x`.
    RSub,
    Mul,
    Div,
}

/// One elementwise step of the input's preprocessing: its constant as
/// given (never expanded to the input's size, which the file only
/// declares), broadcast against `dims`, the value's shape then.
#[derive(Clone, Debug)]
struct Step {
    op: StepOp,
    c: Const,
    dims: Vec<usize>,
}

impl Step {
    fn new(op: StepOp, c: Const, layout: Layout) -> Result<Step, String> {
        let dims = layout.dims();
        if !fits(&c, &dims) {
            return Err(format!(
                "constant of shape {:?} does not fit a value of shape {dims:?}",
                c.dims
            ));
        }
        Ok(Step { op, c, dims })
    }
}

#[derive(Clone, Debug)]
struct Pixels {
    layout: Layout,
    steps: Vec<Step>,
}

impl Pixels {
    /// Element `i` for pixel value `p`, in f32 as ONNX Runtime computes it.
    fn eval_f32(&self, p: u8, i: usize) -> f32 {
        let mut x = f32::from(p);
        for s in &self.steps {
            let c = at(&s.c, &s.dims, i) as f32;
            x = match s.op {
                StepOp::Add => x + c,
                StepOp::Sub => x - c,
                StepOp::RSub => c - x,
                StepOp::Mul => x * c,
                StepOp::Div => x / c,
            };
        }
        x
    }

    /// Element `i` as `a·p + b`, in f64.
    fn affine(&self, i: usize) -> (f64, f64) {
        let (mut a, mut b) = (1.0, 0.0);
        for s in &self.steps {
            let c = at(&s.c, &s.dims, i);
            (a, b) = match s.op {
                StepOp::Add => (a, b + c),
                StepOp::Sub => (a, b - c),
                StepOp::RSub => (-a, c - b),
                StepOp::Mul => (a * c, b * c),
                StepOp::Div => (a / c, b / c),
            };
        }
        (a, b)
    }
}

#[derive(Clone, Debug)]
struct Bits {
    layout: Layout,
    /// The bits stand for ±scale.
    scale: f64,
    /// Engine layers before the one that may read these bits.
    layer: usize,
    /// Padding added by a `Pad` node with −scale or 0 (for the next
    /// `Conv`).
    pad: usize,
    /// Whether that `Pad` node padded with 0 (the engine's zero padding)
    /// rather than −scale (its same padding).
    pad_zero: bool,
    /// Whether it padded with +scale: the next `Conv` reads the map
    /// negated, padded with −1, through negated filters (see
    /// [`Lowering::complemented`]).
    pad_plus: bool,
    /// The emitted convolution these are the unpooled output of.
    conv: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    Pixels,
    Bits { layer: usize },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Dense,
    Conv {
        k: usize,
        in_c: usize,
        padding: Padding,
        pooled: bool,
    },
}

/// A pending layer: `a_j·dot_j + b_j` for output channel `j`.
#[derive(Clone, Debug)]
struct Lin {
    layout: Layout,
    source: Source,
    /// The node that made the dot (Gemm, MatMul, Conv), for messages.
    node: String,
    kind: Kind,
    /// ±1, `rows × cols`, columns in the engine's order.
    signs: Vec<i8>,
    rows: usize,
    cols: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    /// `|dot| <= bound`.
    bound: usize,
    /// For dots of ±1 values: their count, whose parity every dot has.
    parity: Option<usize>,
}

impl Lin {
    fn negate_row(&mut self, j: usize) {
        for s in &mut self.signs[j * self.cols..(j + 1) * self.cols] {
            *s = -*s;
        }
    }
}

#[derive(Clone, Debug)]
enum CondOf {
    Lin(Box<Lin>),
    Pixels(Pixels),
}

/// `x >= 0` (`x > 0` when strict), negated when `negate`.
#[derive(Clone, Debug)]
struct Cond {
    x: CondOf,
    strict: bool,
    negate: bool,
}

#[derive(Clone, Debug)]
enum Val {
    Const(Const),
    Pixels(Pixels),
    Bits(Bits),
    Lin(Box<Lin>),
    Cond(Box<Cond>),
    /// A score layer under Softmax: nothing may follow.
    Final(Box<Lin>),
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Const(_) => "a constant",
            Val::Pixels(_) => "the graph input",
            Val::Bits(_) => "a binary activation",
            Val::Lin(_) => "a float pre-activation",
            Val::Cond(_) => "a comparison",
            Val::Final(_) => "the softmaxed scores",
        }
    }
}

#[derive(Clone, Debug)]
enum Emitted {
    Conv {
        k: usize,
        in_c: usize,
        padding: Padding,
        signs: Vec<i8>,
        rows: usize,
        thresholds: Vec<Threshold>,
        ties: Vec<bool>,
        pooled: bool,
        node: String,
    },
    Dense {
        signs: Vec<i8>,
        rows: usize,
        cols: usize,
        transform: Transform,
        ties: Vec<bool>,
        node: String,
    },
}

struct Lowering<'g, 'a> {
    graph: &'g Graph<'a>,
    dir: Option<&'g Path>,
    vals: HashMap<String, Val>,
    emitted: Vec<Emitted>,
    input_layout: Layout,
    input_threshold: Option<u8>,
    u8_input: bool,
    warnings: Vec<String>,
    notes: Vec<String>,
    pixel_ties: Option<(String, Vec<u8>)>,
    /// The score layer's per-class scale, when its classes are scaled
    /// differently (see [`Lowering::finish`]).
    score_scale: Option<Vec<f32>>,
    /// Emitted hidden layers whose output bits are complemented, each
    /// threshold replaced by its complement when the model is built: the
    /// bits stand for the negated map. A `Pad` of +1 before a `Conv` is
    /// the engine's −1 padding of the negated map, read through negated
    /// filters: `Σ w·x` over the map padded with +1 equals `Σ (−w)·(−x)`
    /// over `−x` padded with −1. Complementing a pooled channel's bits
    /// flips its threshold, so the engine pools it with AND instead of OR
    /// (or OR instead of AND), which is the complement of the pooled
    /// bits: exact either way.
    complemented: Vec<usize>,
}

/// Matches the graph (nodes in `order`) onto a bnn model.
pub fn lower(graph: &Graph<'_>, order: &[usize], dir: Option<&Path>) -> Result<Imported, Error> {
    let initializer_names: HashSet<&str> =
        graph.initializers.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph
        .inputs
        .iter()
        .filter(|i| !initializer_names.contains(i.name.as_str()))
        .collect();
    let [input] = inputs[..] else {
        return Err(Error::new(format!(
            "the graph has {} inputs besides its initializers; the importer takes one (the image)",
            inputs.len()
        )));
    };
    // A float input is PyTorch's (N, C, H, W); a uint8 one holds the
    // images as stored, (N, H, W, C).
    let u8_input = match input.elem_type {
        1 => false,
        2 => true,
        other => {
            return Err(Error::new(format!(
                "graph input {} has element type {other}, not float (1) or uint8 (2)",
                quote(&input.name),
            )))
        }
    };
    let known = |d: &Option<i64>| d.and_then(|v| usize::try_from(v).ok()).filter(|&v| v > 0);
    let layout = match input.dims.as_deref() {
        Some([_, n]) => known(n).map(|n| Layout::Flat { n, chw: None }),
        Some([_, a, b, c]) => match (known(a), known(b), known(c)) {
            (Some(h), Some(w), Some(c)) if u8_input => Some(Layout::Nhwc { h, w, c }),
            (Some(c), Some(h), Some(w)) => Some(Layout::Map { c, h, w }),
            _ => None,
        },
        _ => None,
    }
    .filter(|l| l.len() <= MAX_INPUT);
    let Some(layout) = layout else {
        return Err(Error::new(format!(
            "graph input {} has shape {:?}; the importer takes (N, features), float (N, C, H, W) or uint8 (N, H, W, C) with known sizes",
            quote(&input.name),
            input.dims
        )));
    };
    let (output, rule) = scores_output(graph)?;
    let mut l = Lowering {
        graph,
        dir,
        vals: HashMap::new(),
        emitted: Vec::new(),
        input_layout: layout,
        input_threshold: None,
        u8_input: false,
        warnings: Vec::new(),
        notes: Vec::new(),
        pixel_ties: None,
        score_scale: None,
        complemented: Vec::new(),
    };
    l.vals.insert(
        input.name.clone(),
        Val::Pixels(Pixels {
            layout,
            steps: Vec::new(),
        }),
    );
    let rewritten = ste_residues(graph);
    let live = live_nodes(graph, &output.name, &rewritten);
    for &i in order {
        if !live[i] {
            continue;
        }
        let node = &graph.nodes[i];
        let val = match rewritten.get(&i) {
            Some(x) => {
                let x = l.get(i, x)?;
                l.sign(i, x)?
            }
            None => l.node(i, node)?,
        };
        if let Some(out) = node.outputs.first() {
            l.vals.insert(out.clone(), val);
        }
    }
    let Some(out) = l.vals.get(&output.name).cloned() else {
        // An initializer or the input itself as the output.
        return Err(Error::new(format!(
            "graph output {} is not computed by any node",
            quote(&output.name)
        )));
    };
    let mut imported = l.finish(out, &output.name)?;
    imported.model.set_rule(rule);
    Ok(imported)
}

/// The graph output that holds the class scores, and the decision rule:
/// one output (the scores, classes by argmax), or the scores and their
/// classes, `ArgMax` of the scores (the first maximum: bnn's `scores`
/// rule) or `ArgMax` of `scores >= 0` cast to numbers (bnn's `seed` rule),
/// as `bnn export --format onnx` writes them.
fn scores_output<'g>(graph: &'g Graph<'_>) -> Result<(&'g ValueInfo, DecisionRule), Error> {
    match &graph.outputs[..] {
        [output] => return Ok((output, DecisionRule::Scores)),
        [_, _] => {}
        other => {
            return Err(Error::new(format!(
                "the graph has {} outputs; the importer takes one (the class scores), or the scores and their ArgMax",
                other.len()
            )))
        }
    }
    let producer = |name: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == name))
    };
    let constant = |name: &str| -> Option<Vec<f64>> {
        let t = graph.initializers.iter().find(|t| t.name == name)?;
        decode(t, None, "a constant").ok().map(|c| c.data)
    };
    for (k, classes) in graph.outputs.iter().enumerate() {
        let scores = &graph.outputs[1 - k];
        let Some(argmax) = producer(&classes.name).filter(|n| n.op_type == "ArgMax") else {
            continue;
        };
        let plain = [1, -1].contains(&attr_i(argmax, "axis", 0))
            && attr_i(argmax, "keepdims", 1) == 0
            && attr_i(argmax, "select_last_index", 0) == 0;
        let Some(x) = argmax.inputs.first().filter(|_| plain) else {
            continue;
        };
        if *x == scores.name {
            return Ok((scores, DecisionRule::Scores));
        }
        // ArgMax(Cast(scores >= 0)): the first non-negative score.
        let seed = producer(x)
            .filter(|n| n.op_type == "Cast" && attr_i(n, "to", 0) == 1)
            .and_then(|n| producer(n.inputs.first()?))
            .filter(|n| n.op_type == "GreaterOrEqual" && n.inputs.len() == 2)
            .is_some_and(|n| {
                n.inputs[0] == scores.name && constant(&n.inputs[1]).is_some_and(|c| c == [0.0])
            });
        if seed {
            return Ok((scores, DecisionRule::Seed));
        }
    }
    Err(Error::new(
        "the graph has 2 outputs; the second must be the ArgMax (axis 1, keepdims 0, first index) of the scores, or of scores >= 0 (bnn's seed rule)".into(),
    ))
}

/// The STE residue `x + (Sign(x) − x)` (either operand order, or
/// `x − (x − Sign(x))`) is `Sign(x)`: the `Add`'s index → `x`.
fn ste_residues(graph: &Graph<'_>) -> HashMap<usize, String> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        for o in &n.outputs {
            producer.insert(o, i);
        }
    }
    let node_of = |name: &str| producer.get(name).map(|&i| &graph.nodes[i]);
    let is_sign_of = |name: &str, x: &str| {
        node_of(name).is_some_and(|n| n.op_type == "Sign" && n.domain.is_empty() && n.inputs == [x])
    };
    let mut found = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        if n.inputs.len() != 2 || !n.domain.is_empty() {
            continue;
        }
        let (u, v) = (n.inputs[0].as_str(), n.inputs[1].as_str());
        let sub = |name: &str| node_of(name).filter(|s| s.op_type == "Sub" && s.inputs.len() == 2);
        let x = match n.op_type.as_str() {
            // x + (s − x) and (s − x) + x.
            "Add" => [(u, v), (v, u)].into_iter().find_map(|(x, other)| {
                sub(other)
                    .filter(|s| s.inputs[1] == x && is_sign_of(&s.inputs[0], x))
                    .map(|_| x)
            }),
            // x − (x − s).
            "Sub" => sub(v)
                .filter(|s| s.inputs[0] == u && is_sign_of(&s.inputs[1], u))
                .map(|_| u),
            _ => None,
        };
        if let Some(x) = x {
            found.insert(i, x.to_string());
        }
    }
    found
}

/// Nodes the output depends on; a rewritten residue depends on `x` only.
fn live_nodes(graph: &Graph<'_>, output: &str, rewritten: &HashMap<usize, String>) -> Vec<bool> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        for o in &n.outputs {
            producer.insert(o, i);
        }
    }
    let mut live = vec![false; graph.nodes.len()];
    let mut stack = vec![output.to_string()];
    while let Some(name) = stack.pop() {
        let Some(&i) = producer.get(name.as_str()) else {
            continue;
        };
        if live[i] {
            continue;
        }
        live[i] = true;
        match rewritten.get(&i) {
            Some(x) => stack.push(x.clone()),
            None => stack.extend(
                graph.nodes[i]
                    .inputs
                    .iter()
                    .filter(|s| !s.is_empty())
                    .cloned(),
            ),
        }
    }
    live
}

fn attr<'n, 'a>(node: &'n Node<'a>, name: &str) -> Option<&'n Attribute<'a>> {
    node.attributes.iter().find(|a| a.name == name)
}

fn attr_i(node: &Node<'_>, name: &str, default: i64) -> i64 {
    attr(node, name).and_then(|a| a.i).unwrap_or(default)
}

fn attr_f(node: &Node<'_>, name: &str, default: f32) -> f32 {
    attr(node, name).and_then(|a| a.f).unwrap_or(default)
}

fn attr_ints(node: &Node<'_>, name: &str) -> Result<Option<Vec<i64>>, Error> {
    match attr(node, name) {
        Some(a) if a.ints.runs.len() > 64 || a.ints.byte_len() > 1024 => {
            Err(Error::new(format!("attribute {} is too long", quote(name))))
        }
        Some(a) => Ok(Some(a.ints.varints()?)),
        None => Ok(None),
    }
}

fn attr_s<'a>(node: &Node<'a>, name: &str) -> Option<&'a [u8]> {
    attr(node, name).and_then(|a| a.s)
}

/// Broadcasts `a` and `b` (NumPy rules) and combines them elementwise.
fn broadcast(a: &Const, b: &Const, f: impl Fn(f64, f64) -> f64) -> Result<Const, String> {
    let rank = a.dims.len().max(b.dims.len());
    let pad = |d: &[usize]| {
        let mut v = vec![1; rank - d.len()];
        v.extend_from_slice(d);
        v
    };
    let (da, db) = (pad(&a.dims), pad(&b.dims));
    let mut dims = Vec::with_capacity(rank);
    for (&x, &y) in da.iter().zip(&db) {
        dims.push(match (x, y) {
            _ if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(format!(
                    "shapes {:?} and {:?} do not broadcast",
                    a.dims, b.dims
                ))
            }
        });
    }
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let count = count
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or("the result is too large")?;
    let mut data = Vec::with_capacity(count);
    let mut index = vec![0usize; rank];
    for _ in 0..count {
        let (mut ia, mut ib) = (0, 0);
        for k in 0..rank {
            ia = ia * da[k] + if da[k] == 1 { 0 } else { index[k] };
            ib = ib * db[k] + if db[k] == 1 { 0 } else { index[k] };
        }
        data.push(f(a.data[ia], b.data[ib]));
        for k in (0..rank).rev() {
            index[k] += 1;
            if index[k] < dims[k] {
                break;
            }
            index[k] = 0;
        }
    }
    Ok(Const { dims, data })
}

/// Whether `c` broadcasts onto a value of shape `dims` without widening it.
fn fits(c: &Const, dims: &[usize]) -> bool {
    c.dims.len() <= dims.len()
        && c.dims
            .iter()
            .zip(&dims[dims.len() - c.dims.len()..])
            .all(|(&a, &b)| a == 1 || a == b)
}

/// Element `i` (row-major over `dims`) of `c` broadcast to `dims`; `c`
/// [`fits`].
fn at(c: &Const, dims: &[usize], i: usize) -> f64 {
    let skip = dims.len() - c.dims.len();
    let (mut rest, mut index, mut stride) = (i, 0, 1);
    for (k, &d) in dims.iter().enumerate().rev() {
        let pos = rest % d;
        rest /= d;
        if k >= skip {
            let cd = c.dims[k - skip];
            if cd != 1 {
                index += pos * stride;
            }
            stride *= cd;
        }
    }
    c.data[index]
}

/// One value per output channel of a pending layer from a constant that
/// broadcasts onto it and varies along the channel axis only.
fn per_channel(c: &Const, layout: Layout) -> Result<Vec<f64>, String> {
    let dims = layout.dims();
    if !fits(c, &dims) {
        return Err(format!(
            "constant of shape {:?} does not fit a value of shape {dims:?}",
            c.dims
        ));
    }
    let skip = dims.len() - c.dims.len();
    let only_channels = c
        .dims
        .iter()
        .enumerate()
        .all(|(k, &d)| d == 1 || k + skip == 1);
    if !only_channels {
        return Err(
            "the constant varies within a channel; a layer's bias and scale are per channel".into(),
        );
    }
    let per = layout.per_channel();
    Ok((0..layout.channels())
        .map(|ch| at(c, &dims, ch * per))
        .collect())
}

/// The engine's column for ONNX column `i` of a layer over `layout`: a
/// flattened NCHW map is NHWC in the engine.
fn engine_column(layout: Layout, i: usize) -> usize {
    match layout {
        Layout::Flat {
            chw: Some((c, h, w)),
            ..
        } => {
            let (ch, pos) = (i / (h * w), i % (h * w));
            pos * c + ch
        }
        _ => i,
    }
}

/// Folds "fires iff `a·d + b >= 0`" (`> 0` when `strict`) over integer
/// dots `|d| <= bound` into a threshold, with the dot at which the value
/// is exactly 0, if it is an integer.
fn fold(a: f64, b: f64, strict: bool, bound: usize) -> (Threshold, Option<i64>) {
    let r = bound as i64 + 1;
    let holds = |d: i64| {
        let v = a * d as f64 + b;
        if strict {
            v > 0.0
        } else {
            v >= 0.0
        }
    };
    let always = Threshold::at_least(-(r as i32));
    let never = Threshold::at_least(r as i32);
    if a == 0.0 {
        let tie = (!strict && b == 0.0).then_some(0);
        return (if holds(0) { always } else { never }, tie);
    }
    let t = -b / a;
    if !t.is_finite() || t.abs() > (r + 2) as f64 {
        let fires = (a > 0.0) == (t < 0.0);
        return (if fires { always } else { never }, None);
    }
    let mut c;
    let threshold = if a > 0.0 {
        c = if strict {
            t.floor() as i64 + 1
        } else {
            t.ceil() as i64
        };
        for _ in 0..4 {
            if holds(c - 1) {
                c -= 1;
            } else if !holds(c) {
                c += 1;
            }
        }
        Threshold::at_least(c.clamp(-r, r) as i32)
    } else {
        c = if strict {
            t.ceil() as i64 - 1
        } else {
            t.floor() as i64
        };
        for _ in 0..4 {
            if holds(c + 1) {
                c += 1;
            } else if !holds(c) {
                c -= 1;
            }
        }
        Threshold::at_most(c.clamp(-r, r) as i32)
    };
    let tie = (!strict && a * c as f64 + b == 0.0).then_some(c);
    (threshold, tie)
}

/// The model with threshold `t` sent the other way at its tie.
/// The threshold that fires exactly where `t` does not: not `d ≥ v` is
/// `d ≤ v − 1`, not `d ≤ v` is `d ≥ v + 1`.
fn complement(t: Threshold) -> Threshold {
    if t.flip {
        Threshold::at_least(t.value.saturating_add(1))
    } else {
        Threshold::at_most(t.value.saturating_sub(1))
    }
}

fn strict(t: Threshold) -> Threshold {
    if t.flip {
        Threshold::at_most(t.value - 1)
    } else {
        Threshold::at_least(t.value + 1)
    }
}

impl<'g, 'a> Lowering<'g, 'a> {
    fn fail(&self, i: usize, why: impl std::fmt::Display) -> Error {
        Error::new(format!("{}: {why}", describe(self.graph, i)))
    }

    fn get(&self, i: usize, name: &str) -> Result<Val, Error> {
        if let Some(v) = self.vals.get(name) {
            return Ok(v.clone());
        }
        if let Some(t) = self.graph.initializers.iter().find(|t| t.name == name) {
            let what = format!("initializer {}", quote(name));
            return decode(t, self.dir, &what).map(Val::Const);
        }
        Err(self.fail(i, format!("input {} is not available", quote(name))))
    }

    fn input(&self, i: usize, k: usize) -> Result<Option<Val>, Error> {
        match self.graph.nodes[i].inputs.get(k) {
            Some(name) if !name.is_empty() => self.get(i, name).map(Some),
            _ => Ok(None),
        }
    }

    fn need(&self, i: usize, k: usize) -> Result<Val, Error> {
        self.input(i, k)?
            .ok_or_else(|| self.fail(i, format!("input {k} is missing")))
    }

    fn constant(&self, i: usize, k: usize, what: &str) -> Result<Const, Error> {
        match self.need(i, k)? {
            Val::Const(c) => Ok(c),
            other => Err(self.fail(
                i,
                format!("its {what} must be a constant, not {}", other.kind()),
            )),
        }
    }

    fn node(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let qonnx = node.domain.contains("qonnx") || node.domain.contains("finn");
        if !node.domain.is_empty() && node.domain != "ai.onnx" && !qonnx {
            return Err(self.fail(
                i,
                format!(
                    "operators of domain {} are not supported",
                    quote(&node.domain)
                ),
            ));
        }
        match node.op_type.as_str() {
            "BipolarQuant" if qonnx => {
                let x = self.need(i, 0)?;
                let s = self.constant(i, 1, "scale")?;
                let scale = match s.data[..] {
                    [v] if v > 0.0 => v,
                    _ => return Err(self.fail(i, "its scale must be one positive number")),
                };
                match x {
                    Val::Const(c) => Ok(Val::Const(Const {
                        dims: c.dims,
                        data: c.data.iter().map(|&v| if v >= 0.0 { scale } else { -scale }).collect(),
                    })),
                    other => self.binarizer(i, other, false, false, false, scale),
                }
            }
            _ if qonnx => Err(self.fail(i, "of the QONNX/FINN operators only BipolarQuant is supported")),
            "Identity" | "Dropout" => self.need(i, 0),
            "Cast" => {
                let to = attr_i(node, "to", 0);
                match self.need(i, 0)? {
                    v @ (Val::Const(_) | Val::Pixels(_)) if to == 1 || to == 11 => Ok(v),
                    Val::Const(c) if [6, 7].contains(&to) => Ok(Val::Const(Const {
                        dims: c.dims,
                        data: c.data.iter().map(|v| v.trunc()).collect(),
                    })),
                    other => Err(self.fail(i, format!("casting {} to type {to} is not supported", other.kind()))),
                }
            }
            "Constant" => self.constant_node(i, node),
            "Sign" => {
                let x = self.need(i, 0)?;
                self.sign(i, x)
            }
            "Neg" => match self.need(i, 0)? {
                Val::Const(c) => Ok(Val::Const(Const {
                    dims: c.dims,
                    data: c.data.iter().map(|v| -v).collect(),
                })),
                Val::Lin(mut lin) => {
                    lin.a.iter_mut().chain(lin.b.iter_mut()).for_each(|v| *v = -*v);
                    Ok(Val::Lin(lin))
                }
                Val::Pixels(mut px) => {
                    let step = Step::new(StepOp::Mul, Const::scalar(-1.0), px.layout);
                    px.steps.push(step.map_err(|e| self.fail(i, e))?);
                    Ok(Val::Pixels(px))
                }
                other => Err(self.fail(i, format!("negating {} is not supported", other.kind()))),
            },
            "Add" | "Sub" | "Mul" | "Div" => self.arithmetic(i, node),
            "GreaterOrEqual" | "Greater" | "LessOrEqual" | "Less" => self.compare(i, node),
            "Where" => self.where_(i),
            "Gemm" | "MatMul" => self.dense(i, node),
            "Conv" => self.conv(i, node),
            "MaxPool" => self.max_pool(i, node),
            "Pad" => self.pad(i, node),
            "BatchNormalization" => self.batch_norm(i, node),
            "Flatten" => {
                let axis = attr_i(node, "axis", 1);
                if axis != 1 {
                    return Err(self.fail(i, format!("axis {axis}: only Flatten to (N, -1) (axis 1) is supported")));
                }
                let x = self.need(i, 0)?;
                self.flatten(i, x)
            }
            "Reshape" => self.reshape(i),
            "Transpose" => match self.need(i, 0)? {
                Val::Const(c) => {
                    let perm = attr_ints(node, "perm")?.unwrap_or_else(|| (0..c.dims.len() as i64).rev().collect());
                    self.transpose(i, &c, &perm).map(Val::Const)
                }
                // The channels-last uint8 input made NCHW for a Conv.
                Val::Pixels(mut px) => match (px.layout, attr_ints(node, "perm")?.as_deref()) {
                    (Layout::Nhwc { h, w, c }, Some([0, 3, 1, 2])) if px.steps.is_empty() => {
                        px.layout = Layout::Map { c, h, w };
                        Ok(Val::Pixels(px))
                    }
                    _ => Err(self.fail(i, "only the (N, H, W, C) uint8 input may be transposed, with perm (0, 3, 1, 2) and before any arithmetic")),
                },
                _ => Err(self.fail(i, "only constants may be transposed (weights); a transposed activation is not supported")),
            },
            "Softmax" | "LogSoftmax" => {
                let axis = attr_i(node, "axis", -1);
                match self.need(i, 0)? {
                    Val::Lin(lin) if matches!(lin.layout, Layout::Flat { .. }) && [1, -1].contains(&axis) => {
                        Ok(Val::Final(lin))
                    }
                    other => Err(self.fail(i, format!("only a final Softmax over the class scores is dropped; this one takes {} (axis {axis})", other.kind()))),
                }
            }
            "Relu" | "LeakyRelu" | "PRelu" | "Tanh" | "Sigmoid" | "HardTanh" | "HardSigmoid" | "Clip" | "Elu" | "Selu" | "Gelu" | "Softplus" | "Abs" => Err(self.fail(
                i,
                "a float activation between binary layers: the engine runs sign activations only (Sign, Where(x >= 0, 1, -1), BipolarQuant)",
            )),
            "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => Err(self.fail(i, "only 2x2 MaxPool with stride 2 is supported")),
            "Concat" => Err(self.fail(i, "concatenation (a branching network) is not supported: the engine runs a chain of layers")),
            other => Err(self.fail(i, format!("operator {} is not supported", quote(other)))),
        }
    }

    fn constant_node(&self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        if let Some(t) = attr(node, "value").and_then(|a| a.t.as_ref()) {
            let what = format!("{} value", describe(self.graph, i));
            return decode(t, self.dir, &what).map(Val::Const);
        }
        if let Some(v) = attr(node, "value_float").and_then(|a| a.f) {
            return Ok(Val::Const(Const::scalar(f64::from(v))));
        }
        if let Some(v) = attr(node, "value_int").and_then(|a| a.i) {
            return Ok(Val::Const(Const::scalar(v as f64)));
        }
        if let Some(a) = attr(node, "value_floats") {
            let data: Vec<f64> = a
                .floats
                .fixed(4)
                .ok_or_else(|| self.fail(i, "value_floats is corrupt"))?
                .into_iter()
                .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                .collect();
            return Ok(Val::Const(Const {
                dims: vec![data.len()],
                data,
            }));
        }
        if let Some(v) = attr_ints(node, "value_ints")? {
            let data: Vec<f64> = v.into_iter().map(|v| v as f64).collect();
            return Ok(Val::Const(Const {
                dims: vec![data.len()],
                data,
            }));
        }
        Err(self.fail(
            i,
            "holds no value the importer reads (value, value_float(s), value_int(s))",
        ))
    }

    fn transpose(&self, i: usize, c: &Const, perm: &[i64]) -> Result<Const, Error> {
        let rank = c.dims.len();
        let mut seen = vec![false; rank];
        let perm: Option<Vec<usize>> = perm
            .iter()
            .map(|&p| {
                let p = usize::try_from(p).ok().filter(|&p| p < rank && !seen[p])?;
                seen[p] = true;
                Some(p)
            })
            .collect();
        let Some(perm) = perm.filter(|p| p.len() == rank) else {
            return Err(self.fail(i, "perm is not a permutation of the axes"));
        };
        let dims: Vec<usize> = perm.iter().map(|&p| c.dims[p]).collect();
        let mut strides = vec![1usize; rank];
        for k in (0..rank.saturating_sub(1)).rev() {
            strides[k] = strides[k + 1] * c.dims[k + 1];
        }
        let mut data = Vec::with_capacity(c.data.len());
        let mut index = vec![0usize; rank];
        for _ in 0..c.data.len() {
            let src: usize = (0..rank).map(|k| index[k] * strides[perm[k]]).sum();
            data.push(c.data[src]);
            for k in (0..rank).rev() {
                index[k] += 1;
                if index[k] < dims[k] {
                    break;
                }
                index[k] = 0;
            }
        }
        Ok(Const { dims, data })
    }

    fn sign(&mut self, i: usize, x: Val) -> Result<Val, Error> {
        match x {
            Val::Const(c) => Ok(Val::Const(Const {
                dims: c.dims,
                data: c
                    .data
                    .iter()
                    .map(|&v| {
                        if v > 0.0 {
                            1.0
                        } else if v < 0.0 {
                            -1.0
                        } else {
                            0.0
                        }
                    })
                    .collect(),
            })),
            other => self.binarizer(i, other, false, false, true, 1.0),
        }
    }

    /// A binary activation of `x`: +scale iff `x >= 0` (`x > 0` when
    /// `strict`; the opposite when `negate`), −scale otherwise. `sign`:
    /// the node is ONNX's `Sign`, which gives 0 at 0.
    fn binarizer(
        &mut self,
        i: usize,
        x: Val,
        strict: bool,
        negate: bool,
        sign: bool,
        scale: f64,
    ) -> Result<Val, Error> {
        match x {
            Val::Lin(mut lin) => {
                let mut strict = strict;
                if negate {
                    lin.a
                        .iter_mut()
                        .chain(lin.b.iter_mut())
                        .for_each(|v| *v = -*v);
                    strict = !strict;
                }
                self.emit_hidden(i, *lin, strict, sign, scale)
            }
            Val::Pixels(px) => self.binarize_pixels(i, &px, strict, negate, sign, scale),
            other => Err(self.fail(i, format!("binarizing {} is not supported", other.kind()))),
        }
    }

    /// The chain check: a layer reads the output of the layer before it.
    fn check_chain(&self, i: usize, source: Source) -> Result<(), Error> {
        let ok = match source {
            Source::Pixels => self.emitted.is_empty() && self.input_threshold.is_none(),
            Source::Bits { layer } => layer == self.emitted.len(),
        };
        if !ok {
            return Err(self.fail(
                i,
                "its input is also read elsewhere (a branch or a skip connection): the engine runs a chain of layers",
            ));
        }
        Ok(())
    }

    fn emit_hidden(
        &mut self,
        i: usize,
        lin: Lin,
        strict: bool,
        sign: bool,
        scale: f64,
    ) -> Result<Val, Error> {
        self.check_chain(i, lin.source)?;
        let mut thresholds = Vec::with_capacity(lin.rows);
        let mut ties = Vec::with_capacity(lin.rows);
        for j in 0..lin.rows {
            let (t, tie) = fold(lin.a[j], lin.b[j], strict, lin.bound);
            let reachable = tie.is_some_and(|d| {
                d.unsigned_abs() <= lin.bound as u64
                    && lin.parity.is_none_or(|n| (d - n as i64) % 2 == 0)
            });
            thresholds.push(t);
            ties.push(sign && reachable);
        }
        let tied = ties.iter().filter(|&&t| t).count();
        let node = describe(self.graph, i);
        if tied > 0 {
            self.warnings.push(format!(
                "{node}: {tied} of {} neurons can have a pre-activation of exactly 0, where ONNX's Sign gives 0 and bnn gives +1",
                lin.rows
            ));
        }
        if lin.source == Source::Pixels {
            self.u8_input = true;
        }
        let index = self.emitted.len();
        let (conv, layout) = match lin.kind {
            Kind::Dense => {
                self.emitted.push(Emitted::Dense {
                    signs: lin.signs,
                    rows: lin.rows,
                    cols: lin.cols,
                    transform: Transform::Sign(thresholds),
                    ties,
                    node,
                });
                (None, lin.layout)
            }
            Kind::Conv {
                k,
                in_c,
                padding,
                pooled,
            } => {
                self.emitted.push(Emitted::Conv {
                    k,
                    in_c,
                    padding,
                    signs: lin.signs,
                    rows: lin.rows,
                    thresholds,
                    ties,
                    pooled,
                    node,
                });
                ((!pooled).then_some(index), lin.layout)
            }
        };
        Ok(Val::Bits(Bits {
            layout,
            scale,
            layer: self.emitted.len(),
            pad: 0,
            pad_zero: false,
            pad_plus: false,
            conv,
        }))
    }

    fn binarize_pixels(
        &mut self,
        i: usize,
        px: &Pixels,
        strict: bool,
        negate: bool,
        sign: bool,
        scale: f64,
    ) -> Result<Val, Error> {
        if self.u8_input || self.input_threshold.is_some() {
            return Err(self.fail(i, "the graph input is read by more than one layer"));
        }
        let mut threshold = None;
        let mut tie_values: Vec<u8> = Vec::new();
        for e in 0..px.layout.len() {
            let fires = |p: u8| {
                let v = px.eval_f32(p, e);
                (if strict { v > 0.0 } else { v >= 0.0 }) != negate
            };
            let t = (0..=255u8).find(|&p| fires(p));
            let monotone = t.is_some_and(|t| (t..=255).all(fires));
            let Some(t) = t.filter(|_| monotone) else {
                return Err(self.fail(
                    i,
                    "the binarized input is not `pixel >= t` for any t in 0..=255 (the engine's input threshold)",
                ));
            };
            if threshold.is_some_and(|prev| prev != t) {
                return Err(self.fail(
                    i,
                    "the input threshold differs between pixels; the engine has one",
                ));
            }
            threshold = Some(t);
            if sign {
                for p in 0..=255u8 {
                    if px.eval_f32(p, e) == 0.0 && !tie_values.contains(&p) {
                        tie_values.push(p);
                    }
                }
            }
        }
        self.input_threshold = threshold;
        let node = describe(self.graph, i);
        if !tie_values.is_empty() {
            self.warnings.push(format!(
                "{node}: the preprocessed input is exactly 0 at pixel value(s) {tie_values:?}, where ONNX's Sign gives 0 and bnn gives +1"
            ));
            self.pixel_ties = Some((node, tie_values));
        }
        Ok(Val::Bits(Bits {
            layout: px.layout,
            scale,
            layer: 0,
            pad: 0,
            pad_zero: false,
            pad_plus: false,
            conv: None,
        }))
    }

    fn arithmetic(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let op = node.op_type.as_str();
        let (x, y) = (self.need(i, 0)?, self.need(i, 1)?);
        let f = match op {
            "Add" => |a: f64, b: f64| a + b,
            "Sub" => |a: f64, b: f64| a - b,
            "Mul" => |a: f64, b: f64| a * b,
            _ => |a: f64, b: f64| a / b,
        };
        // Which side the constant is on, and the other value.
        let (value, c, const_first) = match (x, y) {
            (Val::Const(a), Val::Const(b)) => {
                return broadcast(&a, &b, f)
                    .map(Val::Const)
                    .map_err(|e| self.fail(i, e));
            }
            (Val::Const(c), v) => (v, c, true),
            (v, Val::Const(c)) => (v, c, false),
            (a, b) => {
                let why = if op == "Add" {
                    format!(
                        "a residual Add of {} and {}: the engine runs a chain of layers",
                        a.kind(),
                        b.kind()
                    )
                } else {
                    format!(
                        "{op} of two computed values ({} and {}) is not supported",
                        a.kind(),
                        b.kind()
                    )
                };
                return Err(self.fail(i, why));
            }
        };
        if op == "Div" && const_first {
            return Err(self.fail(
                i,
                "dividing a constant by a computed value is not supported",
            ));
        }
        match value {
            Val::Lin(mut lin) => {
                let per = per_channel(&c, lin.layout).map_err(|e| self.fail(i, e))?;
                if op == "Div" && per.contains(&0.0) {
                    return Err(self.fail(i, "divides by 0"));
                }
                for (j, &c) in per.iter().enumerate() {
                    let (a, b) = (lin.a[j], lin.b[j]);
                    (lin.a[j], lin.b[j]) = match (op, const_first) {
                        ("Add", _) => (a, b + c),
                        ("Sub", false) => (a, b - c),
                        ("Sub", true) => (-a, c - b),
                        ("Mul", _) => (a * c, b * c),
                        _ => (a / c, b / c),
                    };
                }
                Ok(Val::Lin(lin))
            }
            Val::Pixels(mut px) => {
                let step = match (op, const_first) {
                    ("Add", _) => StepOp::Add,
                    ("Sub", false) => StepOp::Sub,
                    ("Sub", true) => StepOp::RSub,
                    ("Mul", _) => StepOp::Mul,
                    _ => StepOp::Div,
                };
                if px.steps.len() >= MAX_STEPS {
                    return Err(self.fail(i, format!("more than {MAX_STEPS} preprocessing steps")));
                }
                let step = Step::new(step, c, px.layout).map_err(|e| self.fail(i, e))?;
                px.steps.push(step);
                Ok(Val::Pixels(px))
            }
            Val::Bits(mut bits) if op == "Mul" || (op == "Div" && !const_first) => match c.data[..]
            {
                [v] if v > 0.0 => {
                    bits.scale = if op == "Mul" {
                        bits.scale * v
                    } else {
                        bits.scale / v
                    };
                    Ok(Val::Bits(bits))
                }
                _ => Err(self.fail(
                    i,
                    "a binary activation may only be scaled by one positive number",
                )),
            },
            other => Err(self.fail(i, format!("{op} on {} is not supported", other.kind()))),
        }
    }

    fn compare(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let op = node.op_type.as_str();
        let (x, y) = (self.need(i, 0)?, self.need(i, 1)?);
        // x >= c, x > c, c <= x, c < x keep the sense; x <= c, x < c negate.
        let (value, c, flipped) = match (x, y) {
            (Val::Const(a), Val::Const(b)) => {
                let f: fn(f64, f64) -> f64 = match op {
                    "GreaterOrEqual" => |a, b| f64::from(u8::from(a >= b)),
                    "Greater" => |a, b| f64::from(u8::from(a > b)),
                    "LessOrEqual" => |a, b| f64::from(u8::from(a <= b)),
                    _ => |a, b| f64::from(u8::from(a < b)),
                };
                return broadcast(&a, &b, f)
                    .map(Val::Const)
                    .map_err(|e| self.fail(i, e));
            }
            (v, Val::Const(c)) if !matches!(v, Val::Const(_)) => (v, c, false),
            (Val::Const(c), v) if !matches!(v, Val::Const(_)) => (v, c, true),
            _ => {
                return Err(self.fail(
                    i,
                    "only a comparison of a computed value with a constant is supported",
                ))
            }
        };
        let greater = matches!(op, "GreaterOrEqual" | "Greater") != flipped;
        let or_equal = op.ends_with("OrEqual");
        // value ≥ c ⇔ value − c ≥ 0; value ≤ c ⇔ ¬(value − c > 0).
        let (strict, negate) = match (greater, or_equal) {
            (true, true) => (false, false),
            (true, false) => (true, false),
            (false, true) => (true, true),
            (false, false) => (false, true),
        };
        let x = match value {
            Val::Lin(mut lin) => {
                let per = per_channel(&c, lin.layout).map_err(|e| self.fail(i, e))?;
                for (b, c) in lin.b.iter_mut().zip(per) {
                    *b -= c;
                }
                CondOf::Lin(lin)
            }
            Val::Pixels(mut px) => {
                if px.steps.len() >= MAX_STEPS {
                    return Err(self.fail(i, format!("more than {MAX_STEPS} preprocessing steps")));
                }
                let step = Step::new(StepOp::Sub, c, px.layout).map_err(|e| self.fail(i, e))?;
                px.steps.push(step);
                CondOf::Pixels(px)
            }
            other => {
                return Err(self.fail(i, format!("comparing {} is not supported", other.kind())))
            }
        };
        Ok(Val::Cond(Box::new(Cond { x, strict, negate })))
    }

    fn where_(&mut self, i: usize) -> Result<Val, Error> {
        let cond = self.need(i, 0)?;
        if let Val::Const(c) = &cond {
            // On constants (weights binarized by where(w >= 0, 1, -1)).
            let (yes, no) = (
                self.constant(i, 1, "value if true")?,
                self.constant(i, 2, "value if false")?,
            );
            let picked = broadcast(c, &yes, |c, y| if c != 0.0 { y } else { f64::NAN })
                .and_then(|r| broadcast(&r, &no, |v, n| if v.is_nan() { n } else { v }))
                .map_err(|e| self.fail(i, e))?;
            return Ok(Val::Const(picked));
        }
        let Val::Cond(cond) = cond else {
            return Err(self.fail(
                i,
                "only Where(x >= 0, 1, -1) and its variants are supported",
            ));
        };
        let (yes, no) = (
            self.constant(i, 1, "value if true")?,
            self.constant(i, 2, "value if false")?,
        );
        let (scale, negate) = match (&yes.data[..], &no.data[..]) {
            ([p], [q]) if *p == -*q && *p > 0.0 => (*p, cond.negate),
            ([p], [q]) if *p == -*q && *p < 0.0 => (*q, !cond.negate),
            _ => {
                return Err(self.fail(
                    i,
                    "only Where(cond, s, -s) with one number s is a binary activation",
                ))
            }
        };
        let x = match cond.x {
            CondOf::Lin(lin) => Val::Lin(lin),
            CondOf::Pixels(px) => Val::Pixels(px),
        };
        self.binarizer(i, x, cond.strict, negate, false, scale)
    }

    /// The ±α check: each row's weights share one magnitude, to within
    /// [`SAME_SCALE`] (an exporter's f32 folding of `w + (sign(w) − w)`
    /// leaves ±1 off by an ulp); α is the first weight's.
    fn row_scale(&self, i: usize, row: &[f64], j: usize) -> Result<f64, Error> {
        let alpha = row.first().map_or(0.0, |v| v.abs());
        let off = |v: &&f64| v.is_nan() || (v.abs() - alpha).abs() > SAME_SCALE * alpha;
        if let Some(v) = row.iter().find(off) {
            return Err(self.fail(
                i,
                format!(
                    "weights of output {j} are not ±α (found {alpha} and {v}): not a binary layer"
                ),
            ));
        }
        Ok(alpha)
    }

    fn dense(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let gemm = node.op_type == "Gemm";
        let x = self.need(i, 0)?;
        let w = self.constant(i, 1, "weight matrix")?;
        let [r0, r1] = w.dims[..] else {
            return Err(self.fail(i, format!("weights of shape {:?} are not a matrix", w.dims)));
        };
        let (alpha, beta, trans_b) = if gemm {
            if attr_i(node, "transA", 0) != 0 {
                return Err(self.fail(i, "transA=1 is not supported"));
            }
            (
                f64::from(attr_f(node, "alpha", 1.0)),
                f64::from(attr_f(node, "beta", 1.0)),
                attr_i(node, "transB", 0) != 0,
            )
        } else {
            (1.0, 1.0, false)
        };
        let (m, n) = if trans_b { (r0, r1) } else { (r1, r0) };
        let weight = |j: usize, k: usize| {
            if trans_b {
                w.data[j * n + k]
            } else {
                w.data[k * m + j]
            }
        };
        let (layout, source) = match &x {
            Val::Bits(b) if b.pad == 0 && matches!(b.layout, Layout::Flat { .. }) => {
                (b.layout, Source::Bits { layer: b.layer })
            }
            Val::Pixels(p) if matches!(p.layout, Layout::Flat { .. }) => (p.layout, Source::Pixels),
            Val::Bits(_) | Val::Pixels(_) => {
                return Err(self.fail(
                    i,
                    "a dense layer over a map needs a Flatten (or Reshape to (N, -1)) first",
                ))
            }
            other => {
                return Err(self.fail(
                    i,
                    format!("a dense layer over {} is not a binary layer", other.kind()),
                ))
            }
        };
        if layout.len() != n {
            return Err(self.fail(
                i,
                format!(
                    "weights take {n} inputs but the layer receives {}",
                    layout.len()
                ),
            ));
        }
        let mut bias = vec![0.0; m];
        if gemm {
            if let Some(c) = self.input(i, 2)? {
                let Val::Const(c) = c else {
                    return Err(self.fail(i, "its bias C must be a constant"));
                };
                let out = Layout::Flat { n: m, chw: None };
                bias = per_channel(&c, out).map_err(|e| self.fail(i, e))?;
                bias.iter_mut().for_each(|b| *b *= beta);
            }
        }
        let mut signs = vec![0i8; m * n];
        let (mut a, mut b) = (vec![0.0; m], bias);
        match &x {
            Val::Bits(bits) => {
                for j in 0..m {
                    let row: Vec<f64> = (0..n).map(|k| weight(j, k)).collect();
                    let alpha_j = self.row_scale(i, &row, j)?;
                    for (k, &v) in row.iter().enumerate() {
                        signs[j * n + engine_column(layout, k)] = if v >= 0.0 { 1 } else { -1 };
                    }
                    a[j] = alpha * alpha_j * bits.scale;
                }
            }
            Val::Pixels(px) => {
                let affine: Vec<(f64, f64)> = (0..n).map(|k| px.affine(k)).collect();
                let big_a = affine[0].0.abs();
                if affine.iter().any(|(s, _)| s.abs() != big_a) {
                    return Err(self.fail(i, "the input's preprocessing scales pixels differently; a u8 first layer needs one scale"));
                }
                for j in 0..m {
                    let row: Vec<f64> = (0..n).map(|k| weight(j, k)).collect();
                    let alpha_j = self.row_scale(i, &row, j)?;
                    let mut offset = 0.0;
                    for (k, &v) in row.iter().enumerate() {
                        let (s, o) = affine[k];
                        let e = v * s;
                        signs[j * n + engine_column(layout, k)] = if e >= 0.0 { 1 } else { -1 };
                        offset += v * o;
                    }
                    a[j] = alpha * alpha_j * big_a;
                    b[j] += alpha * offset;
                }
            }
            _ => unreachable!("checked above"),
        }
        let pixels = source == Source::Pixels;
        if pixels && n > PixelDense::MAX_INPUTS {
            return Err(self.fail(i, "too many inputs for a u8 first layer"));
        }
        Ok(Val::Lin(Box::new(Lin {
            layout: Layout::Flat { n: m, chw: None },
            source,
            node: describe(self.graph, i),
            kind: Kind::Dense,
            signs,
            rows: m,
            cols: n,
            a,
            b,
            bound: if pixels { PixelDense::dot_bound(n) } else { n },
            parity: (!pixels).then_some(n),
        })))
    }

    fn conv(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let x = self.need(i, 0)?;
        let w = self.constant(i, 1, "weights")?;
        let [o, c, kh, kw] = w.dims[..] else {
            return Err(self.fail(i, format!("weights of shape {:?} are not OIHW", w.dims)));
        };
        if attr_i(node, "group", 1) != 1 {
            return Err(self.fail(
                i,
                format!(
                    "group={}: grouped or depthwise convolutions are not supported",
                    attr_i(node, "group", 1)
                ),
            ));
        }
        if let Some(s) = attr_ints(node, "strides")?.filter(|s| s.iter().any(|&v| v != 1)) {
            return Err(self.fail(i, format!("strides {s:?}: only stride 1 is supported")));
        }
        if let Some(d) = attr_ints(node, "dilations")?.filter(|d| d.iter().any(|&v| v != 1)) {
            return Err(self.fail(i, format!("dilations {d:?}: only dilation 1 is supported")));
        }
        let k = kh;
        if kh != kw || k % 2 == 0 || k > bnn_core::conv::MAX_KERNEL {
            return Err(self.fail(
                i,
                format!(
                    "kernel {kh}x{kw}: the engine takes square odd kernels up to {}",
                    bnn_core::conv::MAX_KERNEL
                ),
            ));
        }
        let same = (k - 1) / 2;
        let auto_pad = attr_s(node, "auto_pad").unwrap_or(b"NOTSET");
        let pads = match auto_pad {
            b"NOTSET" => attr_ints(node, "pads")?.unwrap_or(vec![0; 4]),
            b"VALID" => vec![0; 4],
            b"SAME_UPPER" | b"SAME_LOWER" => vec![same as i64; 4],
            _ => return Err(self.fail(i, "unknown auto_pad")),
        };
        let zero_pad = if pads.iter().all(|&p| p == 0) {
            0
        } else if pads.len() == 4 && pads.iter().all(|&p| p == same as i64) {
            same
        } else {
            return Err(self.fail(i, format!("pads {pads:?}: only none or symmetric ({same} each side for a {k}x{k} kernel) match the engine")));
        };
        // Set for a map padded with +1 (see `complemented`): the layer
        // that made it.
        let mut negated = None;
        let (layout, source, padding, pixels) = match &x {
            Val::Bits(b) => {
                let padding = match (b.pad, zero_pad) {
                    (0, 0) => Padding::Valid,
                    (p, 0) if p == same && b.pad_zero => Padding::Zero,
                    (p, 0) if p == same && b.pad_plus => {
                        negated = Some(b.layer - 1);
                        Padding::Same
                    }
                    (p, 0) if p == same => Padding::Same,
                    // The Conv's own pads read 0, as the engine's zero
                    // padding does: the dot sums the in-bounds cells.
                    (0, _) => Padding::Zero,
                    (p, _) => {
                        return Err(self.fail(i, format!("a Pad of {p} before a {k}x{k} convolution is not the engine's same padding ({same})")))
                    }
                };
                (b.layout, Source::Bits { layer: b.layer }, padding, None)
            }
            Val::Pixels(px) => {
                let padding = if zero_pad == 0 {
                    Padding::Valid
                } else {
                    Padding::Same
                };
                (px.layout, Source::Pixels, padding, Some(px))
            }
            other => {
                return Err(self.fail(
                    i,
                    format!("a convolution over {} is not a binary layer", other.kind()),
                ))
            }
        };
        let Layout::Map {
            c: in_c,
            h,
            w: width,
        } = layout
        else {
            return Err(self.fail(i, "a convolution needs an (N, C, H, W) input (a uint8 (N, H, W, C) input needs a Transpose with perm (0, 3, 1, 2) first)"));
        };
        if in_c != c {
            return Err(self.fail(
                i,
                format!("weights take {c} channels but the map has {in_c}"),
            ));
        }
        let (ho, wo) = match padding {
            Padding::Same | Padding::Zero => (h, width),
            Padding::Valid => match (h.checked_sub(k - 1), width.checked_sub(k - 1)) {
                (Some(a), Some(b)) if a > 0 && b > 0 => (a, b),
                _ => {
                    return Err(self.fail(
                        i,
                        format!("a {k}x{k} kernel does not fit a {h}x{width} map"),
                    ))
                }
            },
        };
        let mut bias = vec![0.0; o];
        if let Some(bv) = self.input(i, 2)? {
            let Val::Const(bv) = bv else {
                return Err(self.fail(i, "its bias must be a constant"));
            };
            if bv.data.len() != o {
                return Err(self.fail(
                    i,
                    format!("bias of {} values for {o} filters", bv.data.len()),
                ));
            }
            bias = bv.data;
        }
        let window = k * k * c;
        let mut signs = vec![0i8; o * window];
        let mut a = vec![0.0; o];
        let mut b = bias;
        // Per input channel: the pixels' a·p + b, or the bits' ±scale.
        let per_channel: Vec<(f64, f64)> = match pixels {
            Some(px) => {
                let all: Vec<(f64, f64)> = (0..layout.len()).map(|e| px.affine(e)).collect();
                let per = h * width;
                let mut out = Vec::with_capacity(c);
                for ch in all.chunks(per) {
                    if ch.iter().any(|v| *v != ch[0]) {
                        return Err(
                            self.fail(i, "the input's preprocessing varies within a channel")
                        );
                    }
                    out.push(ch[0]);
                }
                out
            }
            None => {
                let Val::Bits(bits) = &x else {
                    unreachable!("bits or pixels")
                };
                vec![(bits.scale, 0.0); c]
            }
        };
        let big_a = per_channel[0].0.abs();
        if per_channel.iter().any(|(s, _)| s.abs() != big_a) {
            return Err(self.fail(i, "the input's preprocessing scales channels differently; a u8 first layer needs one scale"));
        }
        if pixels.is_some()
            && padding == Padding::Same
            && per_channel.iter().any(|&(_, off)| off != 0.0)
        {
            return Err(self.fail(
                i,
                "zero padding after a shift of the input (Sub mean) pads with a pixel value other than 0, which the engine's u8 convolution cannot: export with padding=0 or without the shift",
            ));
        }
        for f in 0..o {
            let row = &w.data[f * window..(f + 1) * window];
            let alpha_f = self.row_scale(i, row, f)?;
            let mut offset = 0.0;
            for ch in 0..c {
                let (s, off) = per_channel[ch];
                for ky in 0..k {
                    for kx in 0..k {
                        let v = row[(ch * k + ky) * k + kx];
                        signs[f * window + (ky * k + kx) * c + ch] =
                            if v * s >= 0.0 { 1 } else { -1 };
                        offset += v * off;
                    }
                }
            }
            a[f] = alpha_f * big_a;
            b[f] += offset;
        }
        let bound = if pixels.is_some() {
            PixelDense::dot_bound(window)
        } else {
            window
        };
        if let Some(layer) = negated {
            signs.iter_mut().for_each(|s| *s = -*s);
            self.complemented.push(layer);
        }
        Ok(Val::Lin(Box::new(Lin {
            layout: Layout::Map { c: o, h: ho, w: wo },
            source,
            node: describe(self.graph, i),
            kind: Kind::Conv {
                k,
                in_c: c,
                padding,
                pooled: false,
            },
            signs,
            rows: o,
            cols: window,
            a,
            b,
            bound,
            parity: pixels.is_none().then_some(window),
        })))
    }

    fn max_pool(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let ints = |name: &str| attr_ints(node, name);
        let kernel = ints("kernel_shape")?;
        let strides = ints("strides")?;
        let pads = ints("pads")?.unwrap_or_default();
        let dilations = ints("dilations")?.unwrap_or_default();
        let auto_pad = attr_s(node, "auto_pad").unwrap_or(b"NOTSET");
        let ok = kernel.as_deref() == Some(&[2, 2])
            && strides.as_deref() == Some(&[2, 2])
            && pads.iter().all(|&p| p == 0)
            && dilations.iter().all(|&d| d == 1)
            && attr_i(node, "ceil_mode", 0) == 0
            && (auto_pad == b"NOTSET" || auto_pad == b"VALID");
        if !ok {
            return Err(self.fail(
                i,
                format!("kernel {kernel:?}, strides {strides:?}, pads {pads:?}: only 2x2 max pooling with stride 2, no padding, floor mode is supported"),
            ));
        }
        if node.outputs.len() > 1 && !node.outputs[1].is_empty() {
            return Err(self.fail(i, "its Indices output is not supported"));
        }
        let half = |layout: Layout| match layout {
            Layout::Map { c, h, w } if h >= 2 && w >= 2 => Some(Layout::Map {
                c,
                h: h / 2,
                w: w / 2,
            }),
            _ => None,
        };
        match self.need(i, 0)? {
            // Pooling before the binarizer: max(a·d + b) = a·max(d) + b
            // for a ≥ 0; a channel with a < 0 takes min(d), so its
            // filter is negated to pool max(−d).
            Val::Lin(mut lin) => {
                let Kind::Conv {
                    k,
                    in_c,
                    padding,
                    pooled: false,
                } = lin.kind
                else {
                    return Err(self.fail(i, "max pooling only directly after a convolution"));
                };
                let Some(layout) = half(lin.layout) else {
                    return Err(self.fail(i, "the map is too small to pool"));
                };
                for j in 0..lin.rows {
                    if lin.a[j] < 0.0 {
                        lin.negate_row(j);
                        lin.a[j] = -lin.a[j];
                    }
                }
                lin.kind = Kind::Conv {
                    k,
                    in_c,
                    padding,
                    pooled: true,
                };
                lin.layout = layout;
                Ok(Val::Lin(lin))
            }
            // Pooling after the binarizer: max of bits is OR, which the
            // engine does for unflipped channels; a flipped channel
            // (`dot <= v`) is the unflipped `−dot >= −v` of the negated
            // filter.
            Val::Bits(mut bits) => {
                let e = bits.conv.filter(|&e| {
                    e + 1 == self.emitted.len() && bits.layer == self.emitted.len() && bits.pad == 0
                });
                let Some(e) = e else {
                    return Err(self.fail(i, "max pooling only directly after a convolution (before or after its binarizer)"));
                };
                let Some(layout) = half(bits.layout) else {
                    return Err(self.fail(i, "the map is too small to pool"));
                };
                let Emitted::Conv {
                    signs,
                    thresholds,
                    pooled,
                    ..
                } = &mut self.emitted[e]
                else {
                    unreachable!("bits.conv names a convolution")
                };
                let window = signs.len() / thresholds.len();
                for (j, t) in thresholds.iter_mut().enumerate() {
                    if t.flip {
                        *t = Threshold::at_least(-t.value);
                        for s in &mut signs[j * window..(j + 1) * window] {
                            *s = -*s;
                        }
                    }
                }
                *pooled = true;
                bits.conv = None;
                bits.layout = layout;
                Ok(Val::Bits(bits))
            }
            other => Err(self.fail(i, format!("max pooling {} is not supported", other.kind()))),
        }
    }

    fn pad(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        let mode = attr_s(node, "mode").unwrap_or(b"constant");
        let x = self.need(i, 0)?;
        let pads = self.constant(i, 1, "pads")?;
        let value = match self.input(i, 2)? {
            None => 0.0,
            Some(Val::Const(c)) if c.data.len() == 1 => c.data[0],
            Some(_) => return Err(self.fail(i, "its constant_value must be one number")),
        };
        if self.input(i, 3)?.is_some() {
            return Err(self.fail(i, "padding chosen axes is not supported"));
        }
        let Val::Bits(mut bits) = x else {
            return Err(self.fail(i, format!("padding {} is not supported; only a binary map padded with -1 before a convolution", x.kind())));
        };
        let shape_ok = matches!(pads.data[..], [0.0, 0.0, a, b, 0.0, 0.0, c, d] if a == b && b == c && c == d && (1.0..=7.0).contains(&a));
        if mode != b"constant"
            || !shape_ok
            || bits.pad != 0
            || !matches!(bits.layout, Layout::Map { .. })
        {
            return Err(self.fail(i, format!("pads {:?} (mode {}): only the same padding on both spatial axes of a map is supported", pads.data, String::from_utf8_lossy(mode))));
        }
        if value != -bits.scale && value != 0.0 && value != bits.scale {
            return Err(self.fail(
                i,
                format!("pads a binary map with {value}: only -1 (the engine's same padding of bits), 0 (its zero padding) or +1 (the same padding of the negated map) is exact"),
            ));
        }
        if value == bits.scale && value != 0.0 && bits.layer == 0 {
            return Err(self.fail(
                i,
                format!("pads the binarized input with {value}: +1 padding negates the map before it, and the input's threshold cannot be negated; pad with -1 or 0"),
            ));
        }
        bits.pad = pads.data[2] as usize;
        bits.pad_zero = value == 0.0;
        bits.pad_plus = value == bits.scale && value != 0.0;
        Ok(Val::Bits(bits))
    }

    fn batch_norm(&mut self, i: usize, node: &Node<'a>) -> Result<Val, Error> {
        if attr_i(node, "training_mode", 0) != 0 {
            return Err(self.fail(i, "training_mode=1 is not an inference graph"));
        }
        let eps = f64::from(attr_f(node, "epsilon", 1e-5));
        let Val::Lin(mut lin) = self.need(i, 0)? else {
            return Err(self.fail(i, "a batch norm only on a layer's output (before its binarizer or as the score layer)"));
        };
        let ch = lin.layout.channels();
        let mut params = Vec::with_capacity(4);
        for (k, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "var")] {
            let c = self.constant(i, k, what)?;
            if c.data.len() != ch {
                return Err(self.fail(
                    i,
                    format!("{what} holds {} values for {ch} channels", c.data.len()),
                ));
            }
            params.push(c.data);
        }
        let [gamma, beta, mean, var] = &params[..] else {
            unreachable!("four parameters")
        };
        for j in 0..ch {
            let (g, beta, mean, var) = (gamma[j], beta[j], mean[j], var[j]);
            if var + eps <= 0.0 {
                return Err(self.fail(
                    i,
                    format!("channel {j}: variance {var} + epsilon is not positive"),
                ));
            }
            let s = g / (var + eps).sqrt();
            lin.a[j] *= s;
            lin.b[j] = (lin.b[j] - mean) * s + beta;
        }
        if lin.a.iter().chain(&lin.b).any(|v| !v.is_finite()) {
            return Err(self.fail(i, "folds to a value that is not finite"));
        }
        Ok(Val::Lin(lin))
    }

    fn flatten(&self, i: usize, x: Val) -> Result<Val, Error> {
        let flat = |layout: Layout| match layout {
            Layout::Map { c, h, w } => Layout::Flat {
                n: c * h * w,
                chw: Some((c, h, w)),
            },
            // Channels last is the engine's order already.
            Layout::Nhwc { h, w, c } => Layout::Flat {
                n: h * w * c,
                chw: None,
            },
            flat => flat,
        };
        match x {
            Val::Bits(mut b) if b.pad == 0 => {
                b.layout = flat(b.layout);
                b.conv = None;
                Ok(Val::Bits(b))
            }
            Val::Pixels(mut p) => {
                p.layout = flat(p.layout);
                Ok(Val::Pixels(p))
            }
            v @ Val::Lin(_) if matches!(&v, Val::Lin(l) if matches!(l.layout, Layout::Flat { .. })) => {
                Ok(v)
            }
            other => Err(self.fail(i, format!("flattening {} is not supported", other.kind()))),
        }
    }

    fn reshape(&mut self, i: usize) -> Result<Val, Error> {
        let x = self.need(i, 0)?;
        let shape = self.constant(i, 1, "shape")?;
        let target: Vec<i64> = shape.data.iter().map(|&v| v as i64).collect();
        if let Val::Const(c) = x {
            let total = c.data.len();
            let mut dims = Vec::with_capacity(target.len());
            let mut infer = None;
            for (k, &d) in target.iter().enumerate() {
                match d {
                    0 => dims.push(
                        *c.dims
                            .get(k)
                            .ok_or_else(|| self.fail(i, "shape 0 beyond the input's rank"))?,
                    ),
                    -1 if infer.is_none() => {
                        infer = Some(k);
                        dims.push(1);
                    }
                    d if d > 0 => dims.push(d as usize),
                    _ => return Err(self.fail(i, format!("shape {target:?} is not valid"))),
                }
            }
            let known = dims
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .unwrap_or(0);
            if let Some(k) = infer {
                if known == 0 || total % known != 0 {
                    return Err(
                        self.fail(i, format!("shape {target:?} does not fit {total} values"))
                    );
                }
                dims[k] = total / known;
            } else if known != total {
                return Err(self.fail(i, format!("shape {target:?} does not fit {total} values")));
            }
            return Ok(Val::Const(Const { dims, data: c.data }));
        }
        let len = match &x {
            Val::Bits(b) => b.layout.len(),
            Val::Pixels(p) => p.layout.len(),
            Val::Lin(l) => l.layout.len(),
            other => {
                return Err(self.fail(i, format!("reshaping {} is not supported", other.kind())))
            }
        };
        match target[..] {
            [a, b] if [-1, 0, 1].contains(&a) && (b == -1 || b == len as i64) => self.flatten(i, x),
            [-1, b] if b == len as i64 => self.flatten(i, x),
            [a, 1, h, w]
                if [-1, 0, 1].contains(&a) && h > 0 && w > 0 && (h * w) as usize == len =>
            {
                match x {
                    Val::Pixels(mut p) if matches!(p.layout, Layout::Flat { chw: None, .. }) => {
                        p.layout = Layout::Map {
                            c: 1,
                            h: h as usize,
                            w: w as usize,
                        };
                        Ok(Val::Pixels(p))
                    }
                    other => Err(self.fail(
                        i,
                        format!("reshaping {} into a map is not supported", other.kind()),
                    )),
                }
            }
            _ => Err(self.fail(
                i,
                format!("shape {target:?}: only (N, -1) flattening is supported"),
            )),
        }
    }

    /// The graph output: the score layer.
    fn finish(mut self, out: Val, name: &str) -> Result<Imported, Error> {
        let (lin, softmax) = match out {
            Val::Lin(l) => (l, false),
            Val::Final(l) => (l, true),
            other => {
                return Err(Error::new(format!(
                    "graph output {} is {}; it must be the class scores of a binary dense layer",
                    quote(name),
                    other.kind()
                )))
            }
        };
        let mut lin = *lin;
        if lin.kind != Kind::Dense {
            return Err(Error::new(format!(
                "graph output {} comes from a convolution ({}); the score layer must be dense",
                quote(name),
                lin.node
            )));
        }
        let node = lin.node.clone();
        let fail = |why: String| Error::new(format!("{node}: {why}"));
        match lin.source {
            Source::Pixels if !(self.emitted.is_empty() && self.input_threshold.is_none()) => {
                return Err(fail("its input is also read elsewhere".into()))
            }
            Source::Bits { layer } if layer != self.emitted.len() => {
                return Err(fail("its input is also read elsewhere (a branch or a skip connection): the engine runs a chain of layers".into()))
            }
            Source::Pixels => self.u8_input = true,
            Source::Bits { .. } => {}
        }
        let scale = lin.a.iter().fold(0.0f64, |m, a| m.max(a.abs()));
        let uniform = lin
            .a
            .iter()
            .all(|a| (a.abs() - scale).abs() <= 1e-9 * scale);
        // One scale for every class: the scores are the logits divided by
        // it, `dot + b/|a|`, exactly the engine's plain score layer.
        // Classes scaled differently (a batch norm or a per-row α on the
        // last layer) keep the logits, `|a_k|·dot + b_k`, through the
        // model's per-class score scale. Either way a class whose `a` is
        // negative has its weights negated, so every scale is >= 0.
        let per_class = scale == 0.0 || !uniform;
        let mut bias = Vec::with_capacity(lin.rows);
        let mut class_scale = Vec::with_capacity(lin.rows);
        for j in 0..lin.rows {
            if lin.a[j] < 0.0 {
                lin.negate_row(j);
            }
            let (k, v) = if per_class {
                (lin.a[j].abs() as f32, lin.b[j] as f32)
            } else {
                (1.0, (lin.b[j] / scale) as f32)
            };
            if !v.is_finite() {
                return Err(fail(format!("bias of class {j} is beyond f32")));
            }
            if !k.is_finite() || (k == 0.0 && lin.a[j] != 0.0) {
                return Err(fail(format!(
                    "scale {} of class {j} is beyond f32",
                    lin.a[j].abs()
                )));
            }
            bias.push(v);
            class_scale.push(k);
        }
        if per_class {
            self.score_scale = Some(class_scale);
        }
        let mut notes = std::mem::take(&mut self.notes);
        if softmax {
            notes.push("the final Softmax is dropped: scores are the logits before it (the class is the same)".into());
        }
        if per_class {
            let lo = lin.a.iter().fold(f64::INFINITY, |m, a| m.min(a.abs()));
            notes.push(format!(
                "the classes are scaled differently (|scale| from {lo} to {scale}): the model keeps a score scale per class, and its scores are the ONNX logits, dot·scale + bias in f32"
            ));
        } else if scale != 1.0 {
            notes.push(format!(
                "scores are the ONNX logits divided by {scale} (one scale for every class, so the classes are the same)"
            ));
        }
        self.emitted.push(Emitted::Dense {
            signs: lin.signs,
            rows: lin.rows,
            cols: lin.cols,
            transform: Transform::Scores(bias),
            ties: vec![false; lin.rows],
            node,
        });
        let model = self.build(&self.emitted)?;
        let mut ties = Vec::new();
        if let Some((node, values)) = self.pixel_ties.take() {
            ties.push(TieSite::Pixels { node, values });
        }
        for (e, layer) in self.emitted.iter().enumerate() {
            let (node, any) = match layer {
                Emitted::Conv { ties, node, .. } | Emitted::Dense { ties, node, .. } => {
                    (node, ties.iter().any(|&t| t))
                }
            };
            if !any {
                continue;
            }
            let mut other = self.emitted.clone();
            match &mut other[e] {
                Emitted::Conv {
                    thresholds, ties, ..
                }
                | Emitted::Dense {
                    transform: Transform::Sign(thresholds),
                    ties,
                    ..
                } => {
                    for (t, &tie) in thresholds.iter_mut().zip(ties.iter()) {
                        if tie {
                            *t = strict(*t);
                        }
                    }
                }
                Emitted::Dense { .. } => unreachable!("score layers never tie"),
            }
            ties.push(TieSite::Layer {
                node: node.clone(),
                hidden: e,
                strict: Box::new(self.build(&other)?),
            });
        }
        Ok(Imported {
            model,
            warnings: self.warnings,
            notes,
            score_scale: if per_class { 1.0 } else { scale },
            ties,
        })
    }

    fn build(&self, emitted: &[Emitted]) -> Result<Model, Error> {
        let engine = |node: &str, e: bnn_core::Error| Error::new(format!("{node}: {e}"));
        let mut layers = Vec::with_capacity(emitted.len() + 2);
        for (index, e) in emitted.iter().enumerate() {
            let flip = |t: &Threshold| match self.complemented.contains(&index) {
                true => complement(*t),
                false => *t,
            };
            match e {
                Emitted::Conv {
                    k,
                    in_c,
                    padding,
                    signs,
                    rows,
                    thresholds,
                    pooled,
                    node,
                    ..
                } => {
                    let weights = BitMatrix::from_pm1(*rows, k * k * in_c, signs)
                        .map_err(|e| engine(node, e))?;
                    let thresholds = thresholds.iter().map(flip).collect();
                    let conv = Conv2d::new(*k, *in_c, *padding, weights, thresholds)
                        .map_err(|e| engine(node, e))?;
                    layers.push(Layer::Conv(conv));
                    if *pooled {
                        layers.push(Layer::MaxPool);
                    }
                }
                Emitted::Dense {
                    signs,
                    rows,
                    cols,
                    transform,
                    node,
                    ..
                } => {
                    let weights =
                        BitMatrix::from_pm1(*rows, *cols, signs).map_err(|e| engine(node, e))?;
                    let transform = match transform {
                        Transform::Sign(t) => Transform::Sign(t.iter().map(flip).collect()),
                        scores => scores.clone(),
                    };
                    let dense =
                        BinaryDense::new(weights, transform).map_err(|e| engine(node, e))?;
                    layers.push(Layer::Dense(dense));
                }
            }
        }
        let shape = match self.input_layout {
            Layout::Flat { n, .. } => InputShape::flat(n as u32),
            Layout::Map { c, h, w } | Layout::Nhwc { h, w, c } => {
                InputShape::new(h as u32, w as u32, c as u32)
            }
        };
        let encoding = match (self.u8_input, self.input_threshold) {
            (true, _) => InputEncoding::U8,
            (false, Some(threshold)) => InputEncoding::Binary { threshold },
            (false, None) => return Err(Error::new("the graph input reaches no layer".into())),
        };
        let model = Model::from_layers(shape, encoding, layers, DecisionRule::Scores)
            .map_err(|e| Error::new(format!("the matched layers do not make a bnn model: {e}")))?;
        match &self.score_scale {
            Some(scale) => model
                .with_score_scale(scale.clone())
                .map_err(|e| Error::new(format!("the score layer's scale: {e}"))),
            None => Ok(model),
        }
    }
}
