//! The arithmetic an export carries out, fixed once for both back ends: the
//! weights re-packed into the target's word size, every hidden threshold as
//! a popcount limit, and the output layer's float biases.
//!
//! Hidden thresholds become popcount limits through the engine's own
//! [`Threshold::popcount_limit`], so exported code and the engine cannot
//! disagree on a neuron.

use bnn_core::{ConvStage, DecisionRule, Model, Padding, PixelDense, Threshold, Transform};

use crate::error::{ExportError, Result};

/// The storage word of an export: 64-bit words halve the XOR/popcount steps
/// on 64-bit CPUs; 32-bit ones suit MCUs whose widest native integer is 32
/// bits. Bit `i` of a row is bit `i % W` of word `i / W` either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WordBits {
    /// `uint32_t` words.
    W32,
    /// `uint64_t` words.
    #[default]
    W64,
}

impl WordBits {
    /// Bits per word: 32 or 64.
    pub fn bits(self) -> usize {
        match self {
            WordBits::W32 => 32,
            WordBits::W64 => 64,
        }
    }

    /// Bytes per word: 4 or 8.
    pub fn bytes(self) -> usize {
        self.bits() / 8
    }

    /// Words of this size that hold `n` bits.
    pub fn words_for(self, n: usize) -> usize {
        n.div_ceil(self.bits())
    }
}

impl std::str::FromStr for WordBits {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "32" => Ok(WordBits::W32),
            "64" => Ok(WordBits::W64),
            other => Err(ExportError::Option(format!(
                "unknown word size '{other}' (known: 32, 64)"
            ))),
        }
    }
}

/// When a hidden neuron fires: `(popcount <= limit) != flip`, with `limit`
/// in `[-1, n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The largest popcount (of differing bits) at which the neuron fires,
    /// before `flip`; −1 never fires, `n` always does.
    pub limit: i64,
    /// Inverts the comparison (a negative batch-norm scale).
    pub flip: bool,
}

impl Limit {
    /// The popcount form of an engine threshold over `n` inputs.
    pub fn from_threshold(t: Threshold, n: usize) -> Self {
        Limit {
            limit: t.popcount_limit(n),
            flip: t.flip,
        }
    }

    /// Whether a neuron with this `popcount` of XOR bits fires.
    pub fn fires(self, popcount: u32) -> bool {
        (i64::from(popcount) <= self.limit) != self.flip
    }
}

/// What a layer does with its popcounts.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// One limit per neuron: the layer emits bits.
    Hidden(Vec<Limit>),
    /// `score = (n − 2·popcount) as f32 + bias`, exactly as the engine.
    Output(Vec<f32>),
}

/// One layer in the target's word size.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanLayer {
    /// Input bits per neuron.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// Words of one weight row: `inputs` rounded up to whole words.
    pub words_per_row: usize,
    /// `outputs × words_per_row` words, each below `2^word_bits`, zero tail
    /// bits.
    pub weights: Vec<u64>,
    /// Limits for a hidden layer, biases for the output layer.
    pub kind: Kind,
}

impl PlanLayer {
    /// Whether the layer emits bits rather than scores.
    pub fn is_hidden(&self) -> bool {
        matches!(self.kind, Kind::Hidden(_))
    }

    /// The weight words of neuron `j`.
    ///
    /// # Panics
    /// If `j >= outputs`.
    pub fn row(&self, j: usize) -> &[u64] {
        &self.weights[j * self.words_per_row..(j + 1) * self.words_per_row]
    }

    /// The engine's score for popcount `p` of output neuron `j` of a model
    /// without a score scale.
    pub fn score(&self, j: usize, p: u32) -> f32 {
        match &self.kind {
            Kind::Output(bias) => (self.inputs as i32 - 2 * p as i32) as f32 + bias[j],
            Kind::Hidden(_) => panic!("hidden layers have no scores"),
        }
    }
}

/// What a u8-input model's first layer does with `dot = Σ p·w`.
#[derive(Clone, Debug, PartialEq)]
pub enum PixelKind {
    /// Neuron `j` fires iff `(dot >= cut[j]) != flip[j]`: `dot >= v` is
    /// `cut = v`; the flipped `dot <= v` is `¬(dot >= v + 1)`. Cuts are
    /// clamped to `±(255·n + 1)`, so they fit an `int32_t`.
    Hidden(Vec<(i32, bool)>),
    /// `score = (float)dot + bias`, exactly as the engine (a one-layer model).
    Output(Vec<f32>),
}

/// A u8-input model's first layer: ±1 weight rows in the target's word
/// size (bit 1 = +1) over the pixel values 0..=255.
#[derive(Clone, Debug, PartialEq)]
pub struct PixelPlan {
    /// Pixels per image.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// Words of one weight row: `inputs` rounded up to whole words.
    pub words_per_row: usize,
    /// `outputs × words_per_row` words, zero tail bits.
    pub weights: Vec<u64>,
    /// Cuts for a hidden layer, biases when it is the only layer.
    pub kind: PixelKind,
}

impl PixelPlan {
    /// Whether the layer emits bits rather than scores.
    pub fn is_hidden(&self) -> bool {
        matches!(self.kind, PixelKind::Hidden(_))
    }
}

/// A model in export form.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The word every table and loop uses.
    pub word: WordBits,
    /// Bytes (pixels) of one input image.
    pub input_len: usize,
    /// Pixels `p >= input_threshold` are +1 on a binary-input model; 0
    /// for a u8-input model.
    pub input_threshold: u8,
    /// How `predict` picks the class from the scores.
    pub rule: DecisionRule,
    /// The u8 first layer of a u8-input model; `layers` follow it (none
    /// when it emits the scores itself).
    pub pixel: Option<PixelPlan>,
    /// The convolutions of a CNN, in order; `layers` are the dense layers
    /// after them.
    pub convs: Vec<ConvPlan>,
    /// The binary dense layers, the output layer last (empty when the
    /// pixel layer emits the scores).
    pub layers: Vec<PlanLayer>,
    /// The model's stored feature encoding: the C export adds an encode
    /// function with its constants.
    pub encoding: Option<bnn_core::FeatureEncoding>,
    /// The model's class names: the C export adds a string table.
    pub class_names: Option<Vec<String>>,
    /// The model's per-class score scale (see [`Model::score_scale`]):
    /// class `k` scores `(dot as f32) * scale[k] + bias[k]`, the product
    /// rounded to f32 before the addition. The C export carries it; the
    /// Verilog export refuses a model with one.
    pub score_scale: Option<Vec<f32>>,
}

/// Rows of ±1 bits, re-packed into the target's word size.
fn repack(src: &bnn_core::BitMatrix, word: WordBits) -> (usize, Vec<u64>) {
    let wpr = word.words_for(src.cols());
    let mut weights = Vec::with_capacity(src.rows() * wpr);
    for j in 0..src.rows() {
        let row = src.row(j);
        match word {
            WordBits::W64 => weights.extend_from_slice(row),
            WordBits::W32 => weights.extend(
                row.iter()
                    .flat_map(|&w| [w & 0xffff_ffff, w >> 32])
                    .take(wpr),
            ),
        }
    }
    (wpr, weights)
}

/// A u8 layer's thresholds as `(cut, flip)` (see [`PixelKind::Hidden`]) for
/// dots over `inputs` pixels.
fn pixel_cuts(thresholds: &[Threshold], inputs: usize) -> Vec<(i32, bool)> {
    // At most 255·8,421,504 + 1 (`PixelDense::MAX_INPUTS`): an i32.
    let bound = PixelDense::dot_bound(inputs) as i64 + 1;
    thresholds
        .iter()
        .map(|t| {
            let cut = i64::from(t.value) + i64::from(t.flip);
            (cut.clamp(-bound, bound) as i32, t.flip)
        })
        .collect()
}

/// What a convolution does with each window's dot.
#[derive(Clone, Debug, PartialEq)]
pub enum ConvKind {
    /// On a bit map: popcount limits over the window's `k·k·C` bits, padded
    /// positions being −1 (bit 0), as in the engine.
    Bits(Vec<Limit>),
    /// The first convolution of a u8 model, on pixel values: `(cut, flip)`
    /// as [`PixelKind::Hidden`], padded pixels adding 0 to the dot.
    Pixels(Vec<(i32, bool)>),
}

/// A convolution (stride 1) with its optional 2×2 max pool, in the
/// target's word size. Maps are NHWC bit streams as in the engine: value
/// `(y, x, c)` is bit `(y·W + x)·C + c`, so the last map is already the
/// flattened input of the first dense layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvPlan {
    /// Input map `(H, W, C)`.
    pub input: (usize, usize, usize),
    /// The kernel side (odd).
    pub k: usize,
    /// Positions padded before the first row and column.
    pub pad: usize,
    /// 2 when a 2×2 max pool follows, else 1.
    pub pool: usize,
    /// Output map `(H, W, N)`, after pooling.
    pub output: (usize, usize, usize),
    /// `k·k·C`: weights per filter, in `(ky, kx, c)` order.
    pub window: usize,
    /// Words of one filter: `window` rounded up to whole words.
    pub words_per_row: usize,
    /// `N × words_per_row` words, zero tail bits.
    pub weights: Vec<u64>,
    /// Bit or pixel input, with the filters' limits or cuts.
    pub kind: ConvKind,
}

impl ConvPlan {
    fn new(stage: &ConvStage, word: WordBits) -> Self {
        let conv = stage.conv();
        let dims =
            |s: bnn_core::InputShape| (s.height as usize, s.width as usize, s.channels as usize);
        let (wpr, weights) = repack(&conv.weights(), word);
        let kind = if stage.takes_pixels() {
            ConvKind::Pixels(pixel_cuts(conv.thresholds(), conv.window()))
        } else {
            ConvKind::Bits(
                conv.thresholds()
                    .iter()
                    .map(|&t| Limit::from_threshold(t, conv.window()))
                    .collect(),
            )
        };
        ConvPlan {
            input: dims(stage.input_shape()),
            k: conv.k(),
            pad: conv.padding().before(conv.k()),
            pool: if stage.pooled() { 2 } else { 1 },
            output: dims(stage.output_shape()),
            window: conv.window(),
            words_per_row: wpr,
            weights,
            kind,
        }
    }

    /// Values in the output map.
    pub fn output_len(&self) -> usize {
        self.output.0 * self.output.1 * self.output.2
    }

    /// Each filter's flip bit: flipped channels pool with AND, the others
    /// with OR.
    pub fn flips(&self) -> Vec<bool> {
        match &self.kind {
            ConvKind::Bits(limits) => limits.iter().map(|l| l.flip).collect(),
            ConvKind::Pixels(cuts) => cuts.iter().map(|&(_, f)| f).collect(),
        }
    }
}

/// Largest class count: the C function returns the class as an `int`, which
/// C guarantees only up to 32767.
pub const MAX_CLASSES: usize = 32767;

impl Plan {
    /// The export form of `model` in `word`-bit words; refuses a model
    /// outside the exporter's limits (e.g. more than [`MAX_CLASSES`]
    /// classes).
    pub fn new(model: &Model, word: WordBits) -> Result<Self> {
        if model.num_classes() > MAX_CLASSES {
            return Err(ExportError::Unsupported(format!(
                "{} classes; at most {MAX_CLASSES} fit the int that `predict` returns",
                model.num_classes()
            )));
        }
        let layers = model
            .layers()
            .iter()
            .map(|layer| {
                let (n, m) = (layer.inputs(), layer.outputs());
                let (wpr, weights) = repack(&layer.weights(), word);
                let kind = match layer.transform() {
                    Transform::Sign(t) => {
                        Kind::Hidden(t.iter().map(|&t| Limit::from_threshold(t, n)).collect())
                    }
                    Transform::Scores(b) => Kind::Output(b.clone()),
                };
                PlanLayer {
                    inputs: n,
                    outputs: m,
                    words_per_row: wpr,
                    weights,
                    kind,
                }
            })
            .collect();
        // Zero padding of a bit map needs each border position's own dot,
        // which the generated code's limits over the whole window do not
        // give; on u8 pixels it is same padding.
        let mut n = 0;
        for stage in model.convs() {
            n += 1;
            if stage.conv().padding() == Padding::Zero && !stage.takes_pixels() {
                return Err(ExportError::Unsupported(format!(
                    "layer {n} pads its binary map with zeros (an imported model), which the export does not support yet; pad with -1 (same) or use valid padding"
                )));
            }
            n += usize::from(stage.pooled());
        }
        let pixel = model.pixel_layer().map(|layer| {
            let (wpr, weights) = repack(&layer.weights(), word);
            let kind = match layer.transform() {
                Transform::Sign(t) => PixelKind::Hidden(pixel_cuts(t, layer.inputs())),
                Transform::Scores(b) => PixelKind::Output(b.clone()),
            };
            PixelPlan {
                inputs: layer.inputs(),
                outputs: layer.outputs(),
                words_per_row: wpr,
                weights,
                kind,
            }
        });
        Ok(Plan {
            word,
            input_len: model.input_len(),
            input_threshold: model.input_threshold(),
            rule: model.rule(),
            pixel,
            convs: model
                .convs()
                .iter()
                .map(|c| ConvPlan::new(c, word))
                .collect(),
            layers,
            encoding: model.feature_encoding().cloned(),
            class_names: model.class_names().map(<[String]>::to_vec),
            score_scale: model.score_scale().map(<[f32]>::to_vec),
        })
    }

    /// The last binary layer. A one-layer u8 model has none: its pixel
    /// layer emits the scores.
    pub fn output(&self) -> &PlanLayer {
        &self.layers[self.layers.len() - 1]
    }

    /// The binary hidden layers.
    pub fn hidden(&self) -> &[PlanLayer] {
        &self.layers[..self.layers.len().saturating_sub(1)]
    }

    /// Outputs of the last layer: one score per class.
    pub fn num_classes(&self) -> usize {
        match (self.layers.last(), &self.pixel) {
            (Some(last), _) => last.outputs,
            (None, Some(first)) => first.outputs,
            (None, None) => unreachable!("a plan has at least one layer"),
        }
    }

    /// Widths, input first.
    pub fn shape(&self) -> Vec<usize> {
        std::iter::once(self.input_len)
            .chain(self.pixel.iter().map(|l| l.outputs))
            .chain(self.convs.iter().map(|c| c.output_len()))
            .chain(self.layers.iter().map(|l| l.outputs))
            .collect()
    }

    /// Widest activation vector in words: the packed input (binary input)
    /// or any hidden output, the pixel layer's included.
    pub fn max_activation_words(&self) -> usize {
        let input = match &self.pixel {
            None => self.word.words_for(self.input_len),
            Some(p) if p.is_hidden() => self.word.words_for(p.outputs),
            Some(_) => 0,
        };
        self.hidden()
            .iter()
            .map(|l| self.word.words_for(l.outputs))
            .chain([input])
            .max()
            .unwrap_or(0)
    }

    /// Total weight words over all layers.
    pub fn weight_words(&self) -> usize {
        self.pixel.as_ref().map_or(0, |l| l.weights.len())
            + self.convs.iter().map(|c| c.weights.len()).sum::<usize>()
            + self.layers.iter().map(|l| l.weights.len()).sum::<usize>()
    }

    /// Widest layer input, binary convolution windows included: bounds
    /// every popcount.
    pub fn max_inputs(&self) -> usize {
        let windows = self.convs.iter().filter_map(|c| match c.kind {
            ConvKind::Bits(_) => Some(c.window),
            ConvKind::Pixels(_) => None,
        });
        self.layers
            .iter()
            .map(|l| l.inputs)
            .chain(windows)
            .max()
            .unwrap_or(0)
    }

    /// Whether the first layer takes the u8 pixel values (a u8 MLP's pixel
    /// layer or a u8 CNN's first convolution) rather than input bits.
    pub fn takes_pixels(&self) -> bool {
        self.pixel.is_some()
            || self
                .convs
                .first()
                .is_some_and(|c| matches!(c.kind, ConvKind::Pixels(_)))
    }

    /// `"784-512-10"`; a CNN as its input shape and layer list, e.g.
    /// `"28x28x1 c3x32,p2,c3x64,p2,d256,d10"`.
    pub fn shape_text(&self) -> String {
        if let Some(first) = self.convs.first() {
            let (h, w, c) = first.input;
            let layers: Vec<String> = self
                .convs
                .iter()
                .flat_map(|c| {
                    let conv = format!("c{}x{}", c.k, c.output.2);
                    std::iter::once(conv).chain((c.pool == 2).then(|| "p2".to_string()))
                })
                .chain(self.layers.iter().map(|l| format!("d{}", l.outputs)))
                .collect();
            return format!("{h}x{w}x{c} {}", layers.join(","));
        }
        self.shape()
            .iter()
            .map(|w| w.to_string())
            .collect::<Vec<_>>()
            .join("-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_core::{BinaryDense, BitMatrix};

    /// A plan's hidden limits fire exactly when the model's thresholds do,
    /// each over its own layer's input count (not the model's input length).
    #[test]
    fn hidden_limits_fire_like_the_model() {
        let (inputs, hidden) = (70usize, 5usize);
        let thresholds: Vec<Threshold> = (-3..=3)
            .flat_map(|v| [Threshold::at_least(v), Threshold::at_most(v)])
            .chain([Threshold::at_most(i32::MIN), Threshold::at_least(i32::MAX)])
            .collect();
        let first = BinaryDense::hidden(
            BitMatrix::new(hidden, inputs),
            vec![Threshold::at_least(0); hidden],
        )
        .unwrap();
        let second =
            BinaryDense::hidden(BitMatrix::new(thresholds.len(), hidden), thresholds.clone())
                .unwrap();
        let out = BinaryDense::output(BitMatrix::new(2, thresholds.len()), vec![0.0; 2]).unwrap();
        let model =
            Model::new(inputs, 128, vec![first, second, out], DecisionRule::Scores).unwrap();
        let plan = Plan::new(&model, WordBits::W32).unwrap();
        let Kind::Hidden(limits) = &plan.layers[1].kind else {
            panic!("layer 1 is hidden");
        };
        assert_eq!(limits.len(), thresholds.len());
        for (l, t) in limits.iter().zip(&thresholds) {
            assert!((-1..=hidden as i64).contains(&l.limit), "{t:?}: {l:?}");
            for p in 0..=hidden as u32 {
                let dot = hidden as i32 - 2 * p as i32;
                assert_eq!(l.fires(p), t.fires(dot), "{t:?} p {p}");
            }
        }
    }

    /// A convolution's limits fire like its thresholds over the whole
    /// `k·k·C` window (padding included), and its geometry is the engine's.
    #[test]
    fn conv_plans_keep_the_engines_geometry_and_thresholds() {
        use bnn_core::{Conv2d, InputEncoding, InputShape, Layer, Padding};
        let thresholds: Vec<Threshold> = (-4..=4)
            .flat_map(|v| [Threshold::at_least(v), Threshold::at_most(v)])
            .collect();
        let n = thresholds.len();
        let (k, c) = (3, 2);
        let window = k * k * c;
        let first = Conv2d::new(
            1,
            1,
            Padding::Valid,
            BitMatrix::new(c, 1),
            vec![Threshold::at_least(0); c],
        )
        .unwrap();
        let second = Conv2d::new(
            k,
            c,
            Padding::Same,
            BitMatrix::new(n, window),
            thresholds.clone(),
        )
        .unwrap();
        let dense = BinaryDense::output(BitMatrix::new(2, 2 * 3 * n), vec![0.0; 2]).unwrap();
        let model = Model::from_layers(
            InputShape::new(5, 7, 1),
            InputEncoding::U8,
            vec![
                Layer::Conv(first),
                Layer::Conv(second),
                Layer::MaxPool,
                Layer::Dense(dense),
            ],
            DecisionRule::Scores,
        )
        .unwrap();
        let plan = Plan::new(&model, WordBits::W32).unwrap();
        assert!(plan.takes_pixels());
        assert!(matches!(plan.convs[0].kind, ConvKind::Pixels(_)));
        let conv = &plan.convs[1];
        assert_eq!(conv.input, (5, 7, c));
        assert_eq!((conv.k, conv.pad, conv.pool), (3, 1, 2));
        assert_eq!(conv.output, (2, 3, n));
        assert_eq!((conv.window, conv.words_per_row), (window, 1));
        assert_eq!(plan.layers[0].inputs, conv.output_len());
        assert_eq!(plan.shape_text(), format!("5x7x1 c1x2,c3x{n},p2,d2"));
        let ConvKind::Bits(limits) = &conv.kind else {
            panic!("the second convolution takes bits");
        };
        assert_eq!(limits.len(), thresholds.len());
        for (l, t) in limits.iter().zip(&thresholds) {
            for p in 0..=window as u32 {
                let dot = window as i32 - 2 * p as i32;
                assert_eq!(l.fires(p), t.fires(dot), "{t:?} p {p}");
            }
        }
        assert_eq!(
            conv.flips(),
            thresholds.iter().map(|t| t.flip).collect::<Vec<_>>()
        );
    }

    /// Zero padding of a bit map is refused, naming the layer; on the u8
    /// pixels of a first convolution it is same padding and exports.
    #[test]
    fn zero_padding_of_bits_is_refused() {
        use bnn_core::{Conv2d, InputEncoding, InputShape, Layer};
        let conv = |c: usize| {
            let t = vec![Threshold::at_least(0); 2];
            Conv2d::new(3, c, Padding::Zero, BitMatrix::new(2, 9 * c), t).unwrap()
        };
        let dense = BinaryDense::output(BitMatrix::new(2, 4 * 4 * 2), vec![0.0; 2]).unwrap();
        let model = |encoding| {
            let layers = vec![
                Layer::Conv(conv(1)),
                Layer::MaxPool,
                Layer::Conv(conv(2)),
                Layer::Dense(dense.clone()),
            ];
            let input = InputShape::new(8, 8, 1);
            Model::from_layers(input, encoding, layers, DecisionRule::Scores).unwrap()
        };
        let err = Plan::new(&model(InputEncoding::U8), WordBits::W32).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot export this model: layer 3 pads its binary map with zeros (an imported model), which the export does not support yet; pad with -1 (same) or use valid padding"
        );
        let binary = model(InputEncoding::Binary { threshold: 128 });
        let err = Plan::new(&binary, WordBits::W32).unwrap_err().to_string();
        assert!(
            err.contains(": layer 1 pads its binary map with zeros"),
            "{err}"
        );
    }

    /// A per-class score scale is carried into the plan as it is; a model
    /// without one has none.
    #[test]
    fn a_per_class_score_scale_is_carried() {
        let layer = BinaryDense::output(BitMatrix::new(3, 10), vec![0.0; 3]).unwrap();
        let model = Model::new(10, 128, vec![layer], DecisionRule::Scores).unwrap();
        assert_eq!(Plan::new(&model, WordBits::W32).unwrap().score_scale, None);
        let scale = vec![1.0, 0.5, 0.0];
        let scaled = model.with_score_scale(scale.clone()).unwrap();
        let plan = Plan::new(&scaled, WordBits::W64).unwrap();
        assert_eq!(plan.score_scale.as_deref(), Some(&scale[..]));
    }

    #[test]
    fn repacks_into_32_bit_words_lsb_first() {
        let n = 70;
        let mut w = BitMatrix::new(2, n);
        for c in [0, 31, 32, 63, 64, 69] {
            w.set(1, c, true);
        }
        let layer = BinaryDense::output(w, vec![0.5, -0.5]).unwrap();
        let model = Model::new(n, 128, vec![layer], DecisionRule::Scores).unwrap();
        let p = Plan::new(&model, WordBits::W32).unwrap();
        let l = &p.layers[0];
        assert_eq!(l.words_per_row, 3);
        assert_eq!(l.row(0), &[0, 0, 0]);
        assert_eq!(l.row(1), &[1 | 1 << 31, 1 | 1 << 31, 1 | 1 << 5]);
        let p = Plan::new(&model, WordBits::W64).unwrap();
        assert_eq!(p.layers[0].row(1), model.layers()[0].weights().row(1));
        assert_eq!(p.layers[0].score(1, 3), 63.5);
    }
}
