//! The network: an input binarizer or a u8 pixel layer, binary
//! convolutions with optional 2×2 max pooling (see [`crate::conv`]), binary
//! dense layers, and a decision rule.
//!
//! The batch path packs a chunk of images, runs each layer over the whole
//! chunk (so a tile of weights is reused across many images while it sits in
//! L1) and hands chunks to rayon. Results depend only on each image, never
//! on how the work was split, so any thread count gives the same answer;
//! without the `parallel` feature the same chunks run in order on the
//! calling thread.

use std::cell::RefCell;
use std::sync::OnceLock;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

use crate::bits::{words_for, BitMatrix};
use crate::blank;
use crate::conv::{ConvScratch, ConvStage, Layer, Shapes};
use crate::encoding::FeatureEncoding;
use crate::error::{Error, Result};
use crate::input::{InputEncoding, InputShape};
use crate::kernel::{self, Kernel, OutputArgs};
use crate::layer::{BinaryDense, Transform};
use crate::pixel::{PixelDense, PixelScratch};
pub use crate::rule::DecisionRule;
use crate::threads::with_threads;

/// Which kernel and how many threads a batch uses; `None` means the process
/// default ([`kernel::active`], rayon's global pool).
///
/// `threads: Some(n)` builds a pool of `n` threads for the call, which
/// costs as much as classifying a few thousand images: a caller that runs
/// many batches builds a [`crate::Threads`] once and runs them inside its
/// [`install`](crate::Threads::install) with `threads: None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// The kernel to run; `None` for [`kernel::active`].
    pub kernel: Option<Kernel>,
    /// Threads for this call; `None` for the current rayon pool.
    pub threads: Option<usize>,
}

/// Classes and scores of a batch: `scores[i·classes + c]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    /// The chosen class of each image, by the model's decision rule.
    pub classes: Vec<usize>,
    /// `num_classes` scores per image, image after image.
    pub scores: Vec<f32>,
    /// Scores per image: the model's output width.
    pub num_classes: usize,
}

impl Predictions {
    /// The scores of image `i`.
    ///
    /// # Panics
    /// If `i` is past the last image.
    pub fn scores_of(&self, i: usize) -> &[f32] {
        &self.scores[i * self.num_classes..(i + 1) * self.num_classes]
    }
}

/// A slice's chunks of a batch: rayon's parallel chunks with the
/// `parallel` feature, the standard library's in order without; both zip
/// and run `for_each` alike, over the same chunks.
#[cfg(feature = "parallel")]
macro_rules! batch_chunks {
    ($slice:expr, $n:expr) => {
        $slice.par_chunks($n)
    };
    (mut $slice:expr, $n:expr) => {
        $slice.par_chunks_mut($n)
    };
}
#[cfg(not(feature = "parallel"))]
macro_rules! batch_chunks {
    ($slice:expr, $n:expr) => {
        $slice.chunks($n)
    };
    (mut $slice:expr, $n:expr) => {
        $slice.chunks_mut($n)
    };
}

/// Images per unit of batch work: large enough to amortise a weight tile
/// over many images, small enough that every core gets many units.
const CHUNK: usize = 64;

/// A binary network, ready to run: binary input (pixels thresholded to
/// bits) or u8 input (pixel values into the first layer), then optional
/// convolutions ([`ConvStage`]), then XNOR dense layers, the last emitting
/// scores. A u8 MLP's first layer is a [`PixelDense`]; a u8 CNN's first
/// convolution takes the pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    input_len: usize,
    /// Meaningful for binary input only; 0 for a u8-input model.
    input_threshold: u8,
    input_shape: Option<InputShape>,
    pixel: Option<PixelDense>,
    convs: Vec<ConvStage>,
    layers: Vec<BinaryDense>,
    rule: DecisionRule,
    blanks: Blanks,
    /// The score layer's per-class scale: class `k` scores
    /// `(dot_k as f32) * scale_k + bias_k` (see [`Model::with_score_scale`]);
    /// `None` for `(dot_k as f32) + bias_k`, one scale for every class.
    score_scale: Option<Vec<f32>>,
    meta: Metadata,
}

/// What a model says about itself beyond the network: never read by the
/// kernels, so it changes no bit the model computes. Saved as sections of
/// a version-3 file (see [`crate::format`]).
#[derive(Clone, Debug, Default, PartialEq)]
struct Metadata {
    class_names: Option<Vec<String>>,
    encoding: Option<FeatureEncoding>,
    /// Optional sections of a newer writer that this build does not read,
    /// kept whole so that saving the model loses nothing of its file.
    unknown: Vec<RawSection>,
}

/// A file section this build does not read: its tag, flags and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSection {
    /// Four ASCII bytes naming the section.
    pub tag: [u8; 4],
    /// The section's flag bits as read (bit 0: required).
    pub flags: u16,
    /// The section's bytes after its header, unparsed.
    pub payload: Vec<u8>,
}

impl RawSection {
    /// The tag as text (tags are checked ASCII).
    pub fn tag_text(&self) -> String {
        String::from_utf8_lossy(&self.tag).into_owned()
    }
}

/// The longest class name, in UTF-8 bytes.
pub const MAX_CLASS_NAME: usize = 256;

/// Each convolution's output bits (before pooling) for the blank image,
/// whose pixels are all zero (see `crate::blank`), computed on first use
/// with each kernel, so that a run with one kernel never carries bits
/// another computed: a model that is only loaded and inspected never runs
/// it, however large. Empty where skipping does not apply
/// ([`blank::applies`]). They follow from the weights, so they never make
/// two models differ.
#[derive(Clone, Default)]
struct Blanks([OnceLock<Vec<Vec<u64>>>; Kernel::ALL.len()]);

impl Blanks {
    fn get(&self, kernel: Kernel, make: impl FnOnce() -> Vec<Vec<u64>>) -> &[Vec<u64>] {
        self.0[kernel as usize].get_or_init(make)
    }
}

impl PartialEq for Blanks {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The maps' sizes, not their bits (megabytes for a large model).
impl std::fmt::Debug for Blanks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words = |c: &OnceLock<Vec<Vec<u64>>>| {
            c.get().map(|maps| maps.iter().map(Vec::len).sum::<usize>())
        };
        f.debug_tuple("Blanks")
            .field(&self.0.iter().map(words).collect::<Vec<_>>())
            .finish()
    }
}

/// Reusable buffers for one chunk of images.
#[derive(Default)]
struct Scratch {
    a: Vec<u64>,
    b: Vec<u64>,
    pops: Vec<u32>,
    pixel: PixelScratch,
    conv: ConvScratch,
    /// One image's maps between convolutions.
    map_in: Vec<u64>,
    map_out: Vec<u64>,
    /// A chunk's scores when the caller wants only classes.
    scores: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `body` on this thread's buffers, or on fresh ones if they are in
/// use further up the stack.
fn with_scratch<R>(body: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => body(&mut s),
        Err(_) => body(&mut Scratch::default()),
    })
}

impl Model {
    /// Checks that the layers chain: every layer but the last is hidden, the
    /// last emits scores, and each layer's inputs match the previous outputs.
    pub fn new(
        input_len: usize,
        input_threshold: u8,
        layers: Vec<BinaryDense>,
        rule: DecisionRule,
    ) -> Result<Self> {
        let Some(last) = layers.last() else {
            return Err(Error::InvalidModel(
                "a model needs at least one layer".into(),
            ));
        };
        if last.is_hidden() {
            return Err(Error::InvalidModel(
                "the last layer must emit scores".into(),
            ));
        }
        let mut width = input_len;
        for (i, layer) in layers.iter().enumerate() {
            if layer.inputs() != width {
                return Err(Error::InvalidModel(format!(
                    "layer {} takes {} inputs but receives {width}",
                    i + 1,
                    layer.inputs()
                )));
            }
            if i + 1 < layers.len() && !layer.is_hidden() {
                return Err(Error::InvalidModel(format!(
                    "layer {} emits scores but is not the last layer",
                    i + 1
                )));
            }
            width = layer.outputs();
        }
        Ok(Model {
            input_len,
            input_threshold,
            input_shape: None,
            pixel: None,
            convs: Vec::new(),
            layers,
            rule,
            blanks: Blanks::default(),
            score_scale: None,
            meta: Metadata::default(),
        })
    }

    /// Any network from its layer list: convolutions (each optionally
    /// followed by [`Layer::MaxPool`]), then dense layers, the last of which
    /// emits scores. `input` is the image's `H×W×C` (NHWC); `encoding` says
    /// whether the first layer takes u8 pixel values or bits. Shapes must
    /// chain; the first dense layer after a convolution takes its map
    /// flattened in NHWC order. Errors name the layer, counted from 1.
    ///
    /// ```
    /// use bnn_core::conv::{Conv2d, Layer, Padding};
    /// use bnn_core::{
    ///     BinaryDense, BitMatrix, DecisionRule, InputEncoding, InputShape, Model, Threshold,
    /// };
    ///
    /// // c3x4,p2,d2 on 6×6×1 u8 images, "same" padding.
    /// let filters = BitMatrix::from_pm1(4, 3 * 3 * 1, &[1i8; 4 * 9]).unwrap();
    /// let conv = Conv2d::new(3, 1, Padding::Same, filters, vec![Threshold::at_least(0); 4])
    ///     .unwrap();
    /// let out = BitMatrix::from_pm1(2, 3 * 3 * 4, &[-1i8; 2 * 36]).unwrap();
    /// let dense = BinaryDense::output(out, vec![0.5, -0.5]).unwrap();
    /// let model = Model::from_layers(
    ///     InputShape::new(6, 6, 1),
    ///     InputEncoding::U8,
    ///     vec![Layer::Conv(conv), Layer::MaxPool, Layer::Dense(dense)],
    ///     DecisionRule::Scores,
    /// )
    /// .unwrap();
    /// assert_eq!(model.shape(), vec![36, 36, 2]);
    /// assert_eq!(model.predict(&[0u8; 36]).unwrap(), 0);
    /// ```
    pub fn from_layers(
        input: InputShape,
        encoding: InputEncoding,
        layers: Vec<Layer>,
        rule: DecisionRule,
    ) -> Result<Self> {
        let input_len = input
            .len()
            .filter(|&n| n > 0 && n <= crate::conv::MAX_MAP)
            .ok_or_else(|| Error::InvalidModel(format!("input shape {input} is out of range")))?;
        let threshold = match encoding {
            InputEncoding::Binary { threshold } => threshold,
            InputEncoding::U8 => 0,
        };
        let mut shapes = Shapes::new(input);
        let mut convs: Vec<ConvStage> = Vec::new();
        let mut dense = Vec::new();
        let count = layers.len();
        let mut layers = layers.into_iter().enumerate().peekable();
        while let Some((i, layer)) = layers.next() {
            let n = i + 1;
            match layer {
                Layer::Conv(conv) => {
                    let (map, _) = shapes
                        .conv(conv.k(), conv.padding(), conv.out_channels())
                        .map_err(Error::InvalidModel)?;
                    if map.channels as usize != conv.in_channels() {
                        return Err(Error::InvalidModel(format!(
                            "layer {n}: convolution over {} channels receives a {map} map",
                            conv.in_channels()
                        )));
                    }
                    let crate::conv::Flow::Map(conv_shape) = shapes.flow() else {
                        unreachable!("a convolution outputs a map")
                    };
                    let pooled = matches!(layers.peek(), Some((_, Layer::MaxPool)));
                    if pooled {
                        layers.next();
                        shapes.pool().map_err(Error::InvalidModel)?;
                    }
                    let pixels = convs.is_empty() && encoding.is_u8();
                    let stage = ConvStage::new(conv, pixels, pooled, map, conv_shape)
                        .map_err(|e| Error::InvalidModel(format!("layer {n}: {e}")))?;
                    convs.push(stage);
                }
                Layer::MaxPool => shapes.pool().map_err(Error::InvalidModel)?,
                Layer::Dense(layer) => {
                    let inputs = shapes.dense(layer.outputs()).map_err(Error::InvalidModel)?;
                    if layer.inputs() != inputs {
                        return Err(Error::InvalidModel(format!(
                            "layer {n} takes {} inputs but receives {inputs}",
                            layer.inputs()
                        )));
                    }
                    if n < count && !layer.is_hidden() {
                        return Err(Error::InvalidModel(format!(
                            "layer {n} emits scores but is not the last layer"
                        )));
                    }
                    dense.push(layer);
                }
            }
        }
        if dense.last().is_none_or(|l| l.is_hidden()) {
            return Err(Error::InvalidModel(
                "the last layer must be a dense layer that emits scores".into(),
            ));
        }
        let mut model = if !convs.is_empty() {
            Model {
                input_len,
                input_threshold: threshold,
                input_shape: None,
                pixel: None,
                convs,
                layers: dense,
                rule,
                blanks: Blanks::default(),
                score_scale: None,
                meta: Metadata::default(),
            }
        } else if encoding.is_u8() {
            let first = dense.remove(0);
            let first = PixelDense::new(first.weights(), first.transform().clone())
                .map_err(|e| Error::InvalidModel(format!("layer 1: {e}")))?;
            Model::with_pixel_layer(first, dense, rule)?
        } else {
            Model::new(input_len, threshold, dense, rule)?
        };
        model.set_input_shape(input)?;
        Ok(model)
    }

    /// A u8-input model: `first` takes the pixel values, and `layers` (none
    /// for a one-layer model, whose `first` then emits the scores) follow
    /// it with the same rules as [`Model::new`].
    pub fn with_pixel_layer(
        first: PixelDense,
        layers: Vec<BinaryDense>,
        rule: DecisionRule,
    ) -> Result<Self> {
        let input_len = first.inputs();
        if layers.is_empty() {
            if first.is_hidden() {
                return Err(Error::InvalidModel(
                    "the last layer must emit scores".into(),
                ));
            }
            return Ok(Model {
                input_len,
                input_threshold: 0,
                input_shape: None,
                pixel: Some(first),
                convs: Vec::new(),
                layers,
                rule,
                blanks: Blanks::default(),
                score_scale: None,
                meta: Metadata::default(),
            });
        }
        if !first.is_hidden() {
            return Err(Error::InvalidModel(
                "layer 1 emits scores but is not the last layer".into(),
            ));
        }
        let mut model = Model::new(first.outputs(), 0, layers, rule).map_err(|e| match e {
            // Number the layers from the pixel layer, as files and reports do.
            Error::InvalidModel(m) => Error::InvalidModel(renumber(&m)),
            other => other,
        })?;
        model.input_len = input_len;
        model.pixel = Some(first);
        Ok(model)
    }

    /// Bytes (pixels or encoded values) of one input.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Pixels `p >= input_threshold` are +1 (binary-input models; 0 for a
    /// u8-input model, see [`Model::input_encoding`]).
    pub fn input_threshold(&self) -> u8 {
        self.input_threshold
    }

    /// How pixels enter the first layer.
    pub fn input_encoding(&self) -> InputEncoding {
        let u8_conv = self.convs.first().is_some_and(|c| c.takes_pixels());
        if self.pixel.is_some() || u8_conv {
            InputEncoding::U8
        } else {
            InputEncoding::Binary {
                threshold: self.input_threshold,
            }
        }
    }

    /// The convolutions, in order, each with its pooling and shapes; empty
    /// for an MLP. [`Model::layers`] holds the dense layers after them.
    pub fn convs(&self) -> &[ConvStage] {
        &self.convs
    }

    /// Whether the model starts with convolutions.
    pub fn is_convolutional(&self) -> bool {
        !self.convs.is_empty()
    }

    /// The u8 first layer of a u8-input model.
    pub fn pixel_layer(&self) -> Option<&PixelDense> {
        self.pixel.as_ref()
    }

    /// Height × width × channels of an input: `1×1×input_len` (a flat
    /// vector) unless a shape was recorded.
    pub fn input_shape(&self) -> InputShape {
        self.input_shape
            .unwrap_or(InputShape::flat(self.input_len as u32))
    }

    /// Records the input's shape; it must hold exactly `input_len` values.
    /// A flat shape is the same as none, so models compare equal whichever
    /// way they were built. A convolutional model's shape is fixed by its
    /// convolutions: only that same shape is accepted.
    pub fn set_input_shape(&mut self, shape: InputShape) -> Result<()> {
        shape.check(self.input_len)?;
        if let Some(first) = self.convs.first() {
            if first.input_shape() != shape {
                return Err(Error::InvalidModel(format!(
                    "input shape {shape} differs from the {} the convolutions take",
                    first.input_shape()
                )));
            }
        }
        self.input_shape = (!shape.is_flat()).then_some(shape);
        Ok(())
    }

    /// The XNOR dense layers: every layer of a binary-input MLP; every
    /// layer after [`Model::pixel_layer`] of a u8-input MLP; every layer
    /// after the convolutions of a CNN.
    pub fn layers(&self) -> &[BinaryDense] {
        &self.layers
    }

    /// All layers, the pixel layer, convolutions and pools included: what
    /// files and reports count.
    pub fn layer_count(&self) -> usize {
        let convs: usize = self.convs.iter().map(|c| 1 + usize::from(c.pooled())).sum();
        self.layers.len() + usize::from(self.pixel.is_some()) + convs
    }

    /// How a class is chosen from the output scores.
    pub fn rule(&self) -> DecisionRule {
        self.rule
    }

    /// Replaces the decision rule (a run's `--rule`): the weights do not
    /// depend on it.
    pub fn set_rule(&mut self, rule: DecisionRule) {
        self.rule = rule;
    }

    /// Outputs of the last layer: one score per class.
    pub fn num_classes(&self) -> usize {
        match (self.layers.last(), &self.pixel) {
            (Some(last), _) => last.outputs(),
            (None, Some(first)) => first.outputs(),
            (None, None) => unreachable!("a model has at least one layer"),
        }
    }

    /// Layer widths, input first: e.g. `[784, 512, 10]`; a convolution
    /// (with its pool) counts as the size of the map it hands on.
    pub fn shape(&self) -> Vec<usize> {
        std::iter::once(self.input_len)
            .chain(self.pixel.iter().map(|l| l.outputs()))
            .chain(self.convs.iter().map(|c| c.output_len()))
            .chain(self.layers.iter().map(|l| l.outputs()))
            .collect()
    }

    /// The layer list in the architecture grammar of `bnn train --arch`:
    /// `cKxN` a convolution, `p2` a 2×2 max pool, `dN` a dense layer, e.g.
    /// `c3x32,p2,c3x64,p2,d256,d10` (the padding is not part of it).
    pub fn arch(&self) -> String {
        let mut parts = Vec::new();
        if let Some(first) = &self.pixel {
            parts.push(format!("d{}", first.outputs()));
        }
        for stage in &self.convs {
            let conv = stage.conv();
            parts.push(format!("c{}x{}", conv.k(), conv.out_channels()));
            if stage.pooled() {
                parts.push("p2".to_string());
            }
        }
        parts.extend(self.layers.iter().map(|l| format!("d{}", l.outputs())));
        parts.join(",")
    }

    /// Bytes the layers hold in memory (see [`BinaryDense::memory_bytes`]
    /// and [`PixelDense::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        self.pixel.as_ref().map_or(0, |l| l.memory_bytes())
            + self.convs.iter().map(|c| c.memory_bytes()).sum::<usize>()
            + self.layers.iter().map(|l| l.memory_bytes()).sum::<usize>()
    }

    /// Total weight bits.
    pub fn weight_bits(&self) -> usize {
        self.pixel.as_ref().map_or(0, |l| l.inputs() * l.outputs())
            + self
                .convs
                .iter()
                .map(|c| c.conv().window() * c.conv().out_channels())
                .sum::<usize>()
            + self
                .layers
                .iter()
                .map(|l| l.inputs() * l.outputs())
                .sum::<usize>()
    }

    /// The class names stored with the model, one per output, if any.
    pub fn class_names(&self) -> Option<&[String]> {
        self.meta.class_names.as_deref()
    }

    /// Class `class` as reports show it: its name, or its index when the
    /// model has no names.
    pub fn class_label(&self, class: usize) -> String {
        match self.class_names().and_then(|names| names.get(class)) {
            Some(name) => name.clone(),
            None => class.to_string(),
        }
    }

    /// The model with its classes named: one name per output, each
    /// non-empty, at most [`MAX_CLASS_NAME`] bytes of UTF-8 without control
    /// characters, no two alike (reports name a class by it).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Model> {
        check_class_names(&names, self.num_classes()).map_err(Error::InvalidModel)?;
        self.meta.class_names = Some(names);
        Ok(self)
    }

    /// The score layer's per-class scale, if the model has one: class `k`
    /// scores `(dot_k as f32) * scale_k + bias_k`, two f32 operations in
    /// that order (never fused), where a model without one scores
    /// `(dot_k as f32) + bias_k`.
    pub fn score_scale(&self) -> Option<&[f32]> {
        self.score_scale.as_deref()
    }

    /// The model with a per-class score scale (see [`Model::score_scale`]):
    /// one per class, each finite and non-negative with its sign bit clear.
    /// A negative scale is not needed: `−s·dot + b` is `s·dot' + b` with
    /// the class's weights negated (`dot' = −dot`), which is how importers
    /// fold it, so every model has one spelling. A zero scale makes the
    /// class's score its bias, whatever the input. Scales that are all 1
    /// are no scale: the model keeps none, and its file stays the version
    /// it was.
    pub fn with_score_scale(mut self, scale: Vec<f32>) -> Result<Model> {
        check_score_scale(&scale, self.num_classes()).map_err(Error::InvalidModel)?;
        self.score_scale = (!scale.iter().all(|&s| s == 1.0)).then_some(scale);
        Ok(self)
    }

    /// The encoding raw feature rows go through before the first layer, if
    /// the model stores one.
    pub fn feature_encoding(&self) -> Option<&FeatureEncoding> {
        self.meta.encoding.as_ref()
    }

    /// The model with a feature encoding: its constants must be valid
    /// ([`FeatureEncoding::check`]) and a row must encode to exactly the
    /// model's input length.
    pub fn with_feature_encoding(mut self, encoding: FeatureEncoding) -> Result<Model> {
        encoding.check()?;
        if encoding.encoded_len() != self.input_len {
            return Err(Error::InvalidModel(format!(
                "feature encoding {} gives {} values, where the model takes {}",
                encoding.describe(),
                encoding.encoded_len(),
                self.input_len
            )));
        }
        self.meta.encoding = Some(encoding);
        Ok(self)
    }

    /// Sections of the model's file that this build does not read, kept
    /// so that saving the model writes them back.
    pub fn unknown_sections(&self) -> &[RawSection] {
        &self.meta.unknown
    }

    pub(crate) fn set_unknown_sections(&mut self, sections: Vec<RawSection>) {
        self.meta.unknown = sections;
    }

    /// Whether the model carries anything a version-3 file's sections hold.
    pub fn has_metadata(&self) -> bool {
        self.meta != Metadata::default()
    }

    /// Raw feature rows through the stored encoding: the u8 inputs the
    /// model runs on.
    ///
    /// # Errors
    ///
    /// [`Error::Features`] when the model stores no encoding, for rows that
    /// are not whole, and for a value that is not finite.
    pub fn encode_features(&self, x: &[f32]) -> Result<Vec<u8>> {
        let Some(encoding) = self.feature_encoding() else {
            return Err(Error::Features(
                "the model stores no feature encoding: give it u8 inputs".into(),
            ));
        };
        let mut out = Vec::new();
        encoding.encode(x, &mut out)?;
        Ok(out)
    }

    /// Classifies one row of raw features: [`Model::encode_features`], then
    /// [`Model::predict`].
    pub fn predict_features(&self, x: &[f32]) -> Result<usize> {
        let d = self.feature_encoding().map_or(0, |e| e.features());
        if self.feature_encoding().is_some() && x.len() != d {
            return Err(Error::Features(format!(
                "a row of {} features, where the encoding takes {d}",
                x.len()
            )));
        }
        self.predict(&self.encode_features(x)?)
    }

    /// Classifies rows of raw features (see [`Model::predict_batch`]).
    pub fn predict_features_batch(&self, x: &[f32]) -> Result<Vec<usize>> {
        self.predict_batch(&self.encode_features(x)?)
    }

    /// Classes and scores of rows of raw features with a chosen kernel and
    /// thread count (see [`Model::predict_batch_with`]).
    pub fn predict_features_batch_with(
        &self,
        x: &[f32],
        options: RunOptions,
    ) -> Result<Predictions> {
        self.predict_batch_with(&self.encode_features(x)?, options)
    }

    /// Classifies one image with the process's kernel. Allocates nothing
    /// after the first call on a thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use bnn_core::Error;
    ///
    /// // A blank image, against the seed model shipped in `weights/`.
    /// let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn"));
    /// let model = bnn_core::format::from_bytes(bytes, "seed.bnn".as_ref())?.model;
    /// let class = model.predict(&[0u8; 784])?;
    /// assert!(class < model.num_classes());
    /// // The same image in a batch of one gets the same class.
    /// assert_eq!(model.predict_batch(&[0u8; 784])?, vec![class]);
    ///
    /// // An image of another length is an error, never a panic.
    /// let e = model.predict(&[0u8; 783]).unwrap_err();
    /// assert!(matches!(e, Error::ImageLength { got: 783, per_image: 784 }));
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ImageLength`] when `pixels` is not one image of
    /// [`Model::input_len`] bytes, as [`Model::predict_batch`] refuses a
    /// batch that is not whole images.
    pub fn predict(&self, pixels: &[u8]) -> Result<usize> {
        let mut scores = [0f32; 64];
        if self.num_classes() <= scores.len() {
            let scores = &mut scores[..self.num_classes()];
            self.predict_scores_into(kernel::active(), pixels, scores)
        } else {
            let mut scores = vec![0f32; self.num_classes()];
            self.predict_scores_into(kernel::active(), pixels, &mut scores)
        }
    }

    /// Classifies one image with a given kernel, writing its scores. A
    /// kernel this CPU lacks is an error, as in [`Model::predict_batch_with`],
    /// never a silent switch to another kernel.
    ///
    /// # Errors
    ///
    /// [`Error::ImageLength`] for an image of another length than the
    /// model's input, and [`Error::Kernel`] for a kernel this CPU lacks.
    ///
    /// # Panics
    ///
    /// If `scores` does not hold one score per class (the caller's buffer,
    /// not the input).
    pub fn predict_scores_into(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        scores: &mut [f32],
    ) -> Result<usize> {
        if pixels.len() != self.input_len {
            return Err(Error::ImageLength {
                got: pixels.len(),
                per_image: self.input_len,
            });
        }
        assert_eq!(scores.len(), self.num_classes(), "scores length");
        let kernel = kernel.require()?;
        let mut class = [0];
        with_scratch(|s| self.run_chunk(kernel, pixels, s, scores, &mut class));
        Ok(class[0])
    }

    /// Classifies a batch of images (`input_len` bytes each), in parallel.
    ///
    /// # Examples
    ///
    /// ```
    /// use bnn_core::Error;
    ///
    /// let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn"));
    /// let model = bnn_core::format::from_bytes(bytes, "seed.bnn".as_ref())?.model;
    /// // Three images, one after another: a blank one, a white one, a
    /// // half-white one.
    /// let mut images = vec![0u8; 3 * 784];
    /// images[784..2 * 784].fill(255);
    /// images[2 * 784..2 * 784 + 392].fill(255);
    /// let classes = model.predict_batch(&images)?;
    /// assert_eq!(classes.len(), 3);
    /// for (image, &class) in images.chunks(784).zip(&classes) {
    ///     assert_eq!(model.predict(image)?, class);
    /// }
    ///
    /// // A batch that is not whole images is an error.
    /// let e = model.predict_batch(&images[..1000]).unwrap_err();
    /// assert!(matches!(e, Error::InputLength { got: 1000, per_image: 784 }));
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InputLength`] when `pixels` is not a whole number of
    /// [`Model::input_len`]-byte images.
    pub fn predict_batch(&self, pixels: &[u8]) -> Result<Vec<usize>> {
        self.classify_batch_with(pixels, RunOptions::default())
    }

    /// The classes of a batch with a chosen kernel and thread count,
    /// without the scores: each chunk's scores stay in its thread's
    /// buffer, so the batch allocates, zeroes and frees nothing but the
    /// classes. At 10,000 images a batch, the 400 KB scores buffer (zeroed,
    /// faulted in and freed per call) was several percent of a 784-512-10
    /// batch at two threads.
    pub fn classify_batch_with(&self, pixels: &[u8], options: RunOptions) -> Result<Vec<usize>> {
        let mut classes = Vec::new();
        self.run_batch(pixels, options, None, &mut classes)?;
        Ok(classes)
    }

    /// Classes and scores of a batch with a chosen kernel and thread count.
    pub fn predict_batch_with(&self, pixels: &[u8], options: RunOptions) -> Result<Predictions> {
        let c = self.num_classes();
        let mut scores = vec![0f32; pixels.len() / self.input_len.max(1) * c];
        let mut classes = Vec::new();
        self.run_batch(pixels, options, Some(&mut scores), &mut classes)?;
        Ok(Predictions {
            classes,
            scores,
            num_classes: c,
        })
    }

    /// The parallel loop of a batch: classes into `classes`, and scores
    /// into `scores` when given (else into each thread's buffer).
    fn run_batch(
        &self,
        pixels: &[u8],
        options: RunOptions,
        scores: Option<&mut [f32]>,
        classes: &mut Vec<usize>,
    ) -> Result<()> {
        let per = self.input_len;
        if !pixels.len().is_multiple_of(per) {
            return Err(Error::InputLength {
                got: pixels.len(),
                per_image: per,
            });
        }
        let kernel = match options.kernel {
            Some(k) => k.require()?,
            None => kernel::active(),
        };
        let n = pixels.len() / per;
        let c = self.num_classes();
        classes.clear();
        classes.resize(n, 0);
        // Each chunk decides its own classes, so that no serial pass over
        // the batch follows the parallel one (at two threads such a pass
        // was 7 % of a 784-512-10 batch), and reuses its thread's buffers.
        let chunk = |px: &[u8], cl: &mut [usize], sc: Option<&mut [f32]>| {
            with_scratch(|s| {
                let mut own = std::mem::take(&mut s.scores);
                let sc = match sc {
                    Some(sc) => sc,
                    None => {
                        own.resize(cl.len() * c, 0.0);
                        &mut own[..]
                    }
                };
                self.run_chunk(kernel, px, s, sc, cl);
                s.scores = own;
            })
        };
        let run = || match scores {
            Some(scores) => batch_chunks!(pixels, CHUNK * per)
                .zip(batch_chunks!(mut scores, CHUNK * c))
                .zip(batch_chunks!(mut classes, CHUNK))
                .for_each(|((px, sc), cl)| chunk(px, cl, Some(sc))),
            None => batch_chunks!(pixels, CHUNK * per)
                .zip(batch_chunks!(mut classes, CHUNK))
                .for_each(|(px, cl)| chunk(px, cl, None)),
        };
        with_threads(options.threads, run).map_err(|e| Error::Threads {
            threads: options.threads.unwrap_or(0),
            reason: e.to_string(),
        })
    }

    /// Every hidden layer's output bits for a batch (one row per image), for
    /// inspection and for checking exports against the engine.
    pub fn hidden_activations(&self, kernel: Kernel, pixels: &[u8]) -> Result<Vec<BitMatrix>> {
        if !pixels.len().is_multiple_of(self.input_len) {
            return Err(Error::InputLength {
                got: pixels.len(),
                per_image: self.input_len,
            });
        }
        let kernel = kernel.require()?;
        let rows = pixels.len() / self.input_len;
        let mut all = Vec::new();
        if !self.convs.is_empty() {
            let mut maps: Vec<BitMatrix> = self
                .convs
                .iter()
                .map(|c| BitMatrix::new(rows, c.output_len()))
                .collect();
            let mut s = Scratch::default();
            for (r, image) in pixels.chunks_exact(self.input_len).enumerate() {
                self.run_convs(kernel, image, &mut s, true, |i, map, _| {
                    maps[i].row_mut(r).copy_from_slice(map)
                });
            }
            all.extend(maps);
        }
        let mut x = match &self.pixel {
            Some(first) if first.is_hidden() => {
                let mut out = BitMatrix::new(rows, first.outputs());
                let mut scratch = PixelScratch::default();
                first.fire_into(kernel, pixels, rows, &mut scratch, out.words_mut());
                all.push(out.clone());
                out
            }
            Some(_) => return Ok(all),
            None if !self.convs.is_empty() => all.last().expect("one map per convolution").clone(),
            None => {
                let mut x = BitMatrix::new(rows, self.input_len);
                for (r, image) in pixels.chunks_exact(self.input_len).enumerate() {
                    kernel.pack_pixels(image, self.input_threshold, x.row_mut(r));
                }
                x
            }
        };
        for layer in &self.layers[..self.layers.len() - 1] {
            let mut out = BitMatrix::new(rows, layer.outputs());
            layer.fire_into(kernel, x.words(), rows, out.words_mut());
            all.push(out.clone());
            x = out;
        }
        Ok(all)
    }

    /// The forward pass over `classes.len()` images: bits through the
    /// hidden layers, scores out of the last, and the classes they decide.
    fn run_chunk(
        &self,
        kernel: Kernel,
        pixels: &[u8],
        s: &mut Scratch,
        scores: &mut [f32],
        classes: &mut [usize],
    ) {
        let rows = classes.len();
        // Layers already run (a first layer that reads the pixels itself).
        let mut start = 0;
        match &self.pixel {
            Some(first) if self.layers.is_empty() => {
                let scale = self.score_scale.as_deref();
                first.scores_into(kernel, pixels, rows, &mut s.pixel, scale, scores);
                let c = self.num_classes();
                for (class, s) in classes.iter_mut().zip(scores.chunks_exact(c)) {
                    *class = self.rule.decide(s);
                }
                return;
            }
            Some(first) => {
                s.a.resize(rows * first.output_words(), 0);
                first.fire_into(kernel, pixels, rows, &mut s.pixel, &mut s.a);
            }
            None if !self.convs.is_empty() => {
                let last = self.convs.last().expect("not empty");
                let wpr = words_for(last.output_len());
                let mut a = std::mem::take(&mut s.a);
                a.resize(rows * wpr, 0);
                for (image, words) in pixels
                    .chunks_exact(self.input_len)
                    .zip(a.chunks_exact_mut(wpr))
                {
                    let n = self.convs.len();
                    self.run_convs(kernel, image, s, true, |i, map, _| {
                        if i + 1 == n {
                            words.copy_from_slice(map);
                        }
                    });
                }
                s.a = a;
            }
            None => {
                let (per, threshold) = (self.input_len, self.input_threshold);
                let (first, px) = (&self.layers[0], &pixels[..rows * per]);
                if first.reads_pixels(kernel) {
                    s.a.resize(rows * first.output_words(), 0);
                    first.fire_pixels_into(kernel, px, threshold, rows, &mut s.a);
                    start = 1;
                } else {
                    let wpr = words_for(per);
                    s.a.resize(rows * wpr, 0);
                    kernel.pack_pixel_rows(px, per, threshold, &mut s.a[..rows * wpr]);
                }
            }
        }
        let (hidden, last) = self.layers.split_at(self.layers.len() - 1);
        for layer in &hidden[start..] {
            s.b.resize(rows * layer.output_words(), 0);
            layer.fire_into(kernel, &s.a, rows, &mut s.b);
            std::mem::swap(&mut s.a, &mut s.b);
        }
        let last = &last[0];
        let padded = last.padded_outputs();
        s.pops.resize(rows * padded, 0);
        last.popcounts(kernel, &s.a, rows, &mut s.pops);
        let Transform::Scores(bias) = last.transform() else {
            unreachable!("Model::new checks the last layer emits scores")
        };
        let a = OutputArgs {
            pops: &s.pops,
            padded,
            inputs: last.inputs(),
            bias,
            rule: self.rule,
        };
        match &self.score_scale {
            None => kernel.scores_classes(&a, scores, classes),
            Some(scale) => kernel::scaled_scores_classes(&a, scale, scores, classes),
        }
    }
}

impl Model {
    /// Runs one image through the convolutions, handing each stage's
    /// output map (`words_for(output_len)` words) and its convolution's
    /// bits before pooling to `each`. With `skip_blank`, positions whose
    /// field holds only zero pixels take the blank image's bits (see
    /// `crate::blank`).
    fn run_convs(
        &self,
        kernel: Kernel,
        image: &[u8],
        s: &mut Scratch,
        skip_blank: bool,
        mut each: impl FnMut(usize, &[u64], &[u64]),
    ) {
        let Scratch {
            conv,
            map_in,
            map_out,
            ..
        } = s;
        if !self.convs[0].takes_pixels() {
            map_in.clear();
            map_in.resize(words_for(self.input_len), 0);
            kernel.pack_pixels(image, self.input_threshold, map_in);
        }
        let blanks = if skip_blank {
            self.blanks.get(kernel, || self.blank_maps(kernel))
        } else {
            &[]
        };
        let skip = !blanks.is_empty();
        conv.begin(kernel, image, self.convs[0].input_shape(), skip);
        for (i, stage) in self.convs.iter().enumerate() {
            map_out.clear();
            map_out.resize(words_for(stage.output_len()), 0);
            let blank = blanks.get(i).map_or(&[][..], |b| b);
            stage.run(kernel, (map_in, image), blank, conv, map_out);
            each(i, map_out, conv.fired());
            std::mem::swap(map_in, map_out);
        }
    }

    /// Runs the blank image through the convolutions with `kernel`, every
    /// position computed, and keeps each one's bits before pooling; none
    /// where skipping does not apply (a map too wide to track, or maps too
    /// large to keep).
    fn blank_maps(&self, kernel: Kernel) -> Vec<Vec<u64>> {
        let width = self.convs[0].input_shape().width as usize;
        let words = self.convs.iter().map(|c| c.fired_words()).sum();
        if !blank::applies(width, words) {
            return Vec::new();
        }
        let blank = vec![0u8; self.input_len];
        let mut maps = Vec::with_capacity(self.convs.len());
        self.run_convs(
            kernel,
            &blank,
            &mut Scratch::default(),
            false,
            |_, _, fired| maps.push(fired.to_vec()),
        );
        maps
    }
}

/// Shifts the layer numbers of a [`Model::new`] message by one, for the
/// XNOR layers that follow a pixel layer.
fn renumber(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find("layer ") {
        out.push_str(&rest[..at + 6]);
        rest = &rest[at + 6..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + 1).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// Checks a per-class score scale for a model of `classes` outputs (see
/// [`Model::with_score_scale`]); the message names the first bad scale.
pub fn check_score_scale(scale: &[f32], classes: usize) -> std::result::Result<(), String> {
    if scale.len() != classes {
        return Err(format!(
            "{} score scales for a model of {classes} classes",
            scale.len()
        ));
    }
    if let Some((k, s)) = scale
        .iter()
        .enumerate()
        .find(|(_, s)| !s.is_finite() || s.is_sign_negative())
    {
        return Err(format!(
            "score scale of class {k} is {s:?}; scales are finite and non-negative (a negative one folds into the class's weights and bias)"
        ));
    }
    Ok(())
}

/// Checks class names for a model of `classes` outputs (see
/// [`Model::with_class_names`]); the message names the first bad one.
pub fn check_class_names(names: &[String], classes: usize) -> std::result::Result<(), String> {
    if names.len() != classes {
        return Err(format!(
            "{} class names for a model of {classes} classes",
            names.len()
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || name.len() > MAX_CLASS_NAME {
            return Err(format!(
                "class name {i} is {} bytes long, out of range 1..={MAX_CLASS_NAME}",
                name.len()
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(format!("class name {i} holds a control character"));
        }
        if !seen.insert(name.as_str()) {
            let first = names.iter().position(|n| n == name).unwrap_or(i);
            return Err(format!("class names {first} and {i} are both {name:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bits::BitMatrix;
    use crate::layer::BinaryDense;

    fn tiny() -> Model {
        let w = BitMatrix::from_pm1(2, 3, &[1, -1, 1, -1, -1, 1]).unwrap();
        Model::new(
            3,
            128,
            vec![BinaryDense::output(w, vec![0.0, 0.0]).unwrap()],
            DecisionRule::Scores,
        )
        .unwrap()
    }

    /// Blank-field skipping engages for a map it can track (the blank maps
    /// are kept, per kernel, once an image runs) and stays off for a map
    /// wider than 64 positions; the results are the engine's either way
    /// (the property tests compare both with the reference).
    #[test]
    fn blank_maps_are_kept_where_skipping_applies() {
        use crate::conv::{Conv2d, Layer, Padding};
        use crate::layer::Threshold;
        for (width, kept) in [(28u32, true), (65, false)] {
            let conv = Conv2d::new(
                3,
                1,
                Padding::Same,
                BitMatrix::new(4, 9),
                vec![Threshold::at_least(0); 4],
            )
            .unwrap();
            let n = (width / 2) as usize * 4 * 4;
            let dense = BinaryDense::output(BitMatrix::new(2, n), vec![0.0; 2]).unwrap();
            let model = Model::from_layers(
                InputShape::new(8, width, 1),
                InputEncoding::U8,
                vec![Layer::Conv(conv), Layer::MaxPool, Layer::Dense(dense)],
                DecisionRule::Scores,
            )
            .unwrap();
            for kernel in kernel::available() {
                assert!(model.blanks.0[kernel as usize].get().is_none());
                let mut scores = [0f32; 2];
                let image = vec![0u8; model.input_len()];
                model
                    .predict_scores_into(kernel, &image, &mut scores)
                    .unwrap();
                let maps = model.blanks.0[kernel as usize].get().unwrap();
                assert_eq!(!maps.is_empty(), kept, "width {width}, {kernel}");
            }
        }
    }

    /// The layer list is checked as a whole: channels, order and the last
    /// layer, each refusal naming its layer.
    #[test]
    fn from_layers_checks_the_chain() {
        use crate::conv::{Conv2d, Layer, Padding};
        use crate::layer::Threshold;
        let conv = |k: usize, c: usize, n: usize| {
            let w = BitMatrix::new(n, k * k * c);
            Layer::Conv(
                Conv2d::new(k, c, Padding::Same, w, vec![Threshold::at_least(0); n]).unwrap(),
            )
        };
        let dense = |n: usize, m: usize| {
            Layer::Dense(BinaryDense::output(BitMatrix::new(m, n), vec![0.0; m]).unwrap())
        };
        let hidden = |n: usize, m: usize| {
            let t = vec![Threshold::at_least(0); m];
            Layer::Dense(BinaryDense::hidden(BitMatrix::new(m, n), t).unwrap())
        };
        let build = |layers: Vec<Layer>| {
            Model::from_layers(
                InputShape::new(4, 5, 2),
                InputEncoding::Binary { threshold: 128 },
                layers,
                DecisionRule::Scores,
            )
            .map(|m| m.shape())
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            build(vec![
                conv(3, 2, 3),
                Layer::MaxPool,
                conv(1, 3, 2),
                dense(8, 4)
            ]),
            Ok(vec![40, 12, 8, 4])
        );
        let err = |layers| build(layers).unwrap_err();
        assert!(err(vec![conv(3, 1, 3), dense(60, 2)])
            .contains("layer 1: convolution over 1 channels receives a 4x5x2 map"));
        assert!(err(vec![conv(3, 2, 3), dense(59, 2)])
            .contains("layer 2 takes 59 inputs but receives 60"));
        assert!(
            err(vec![Layer::MaxPool, dense(40, 2)]).contains("layer 1: max pooling must follow")
        );
        assert!(err(vec![
            conv(3, 2, 3),
            Layer::MaxPool,
            Layer::MaxPool,
            dense(3, 2)
        ])
        .contains("layer 3: max pooling must follow"));
        assert!(err(vec![hidden(40, 3), conv(1, 3, 1), dense(1, 2)])
            .contains("layer 2: a convolution cannot follow"));
        assert!(err(vec![conv(3, 2, 3)]).contains("the last layer must be a dense layer"));
        assert!(err(vec![conv(3, 2, 3), hidden(60, 2)])
            .contains("the last layer must be a dense layer"));
        assert!(
            err(vec![conv(3, 2, 3), dense(60, 2), dense(2, 2)]).contains("layer 2 emits scores")
        );
    }

    /// Input of the wrong length is an error for one image as for a batch,
    /// never a panic.
    #[test]
    fn single_and_batch_refuse_a_wrong_length_alike() {
        let model = tiny();
        assert_eq!(
            model.predict(&[0u8; 4]).unwrap_err().to_string(),
            "an image of 4 bytes, where the model takes 3"
        );
        assert_eq!(
            model.predict(&[0u8; 6]).unwrap_err().to_string(),
            "an image of 6 bytes, where the model takes 3"
        );
        assert_eq!(
            model.predict_batch(&[0u8; 4]).unwrap_err().to_string(),
            "input has 4 bytes, which is not a whole number of 3-pixel images"
        );
        assert_eq!(model.predict(&[255, 0, 255]).unwrap(), 0);
    }

    /// One image and a batch agree on every kernel: both run it, or both
    /// refuse it with the same words.
    #[test]
    // The batch half builds a rayon pool, whose crossbeam-epoch breaks
    // Stacked Borrows itself (Miri reports a retag inside
    // `Local::element_of`); the single-image half runs under Miri in
    // `single_and_batch_refuse_a_wrong_length_alike`.
    #[cfg_attr(
        miri,
        ignore = "crossbeam-epoch (rayon's pools) violates Stacked Borrows itself"
    )]
    fn single_and_batch_treat_a_missing_kernel_alike() {
        let model = tiny();
        let image = [255u8, 0, 255];
        for kernel in Kernel::ALL {
            let mut scores = [0f32; 2];
            let single = model.predict_scores_into(kernel, &image, &mut scores);
            let options = RunOptions {
                kernel: Some(kernel),
                threads: Some(1),
            };
            let batch = model.predict_batch_with(&image, options);
            match (single, batch, kernel.is_available()) {
                (Ok(class), Ok(p), true) => {
                    // Signs +-+ against rows +-+ and --+: scores 3 and 1.
                    assert_eq!(scores, [3.0, 1.0], "{kernel}");
                    assert_eq!((class, p.classes), (0, vec![0]), "{kernel}");
                }
                (Err(a), Err(b), false) => {
                    assert_eq!(a.to_string(), b.to_string());
                    assert!(a.to_string().contains("not supported by this CPU"), "{a}");
                }
                (single, batch, available) => {
                    panic!("{kernel} (available: {available}): {single:?} / {batch:?}")
                }
            }
        }
    }
}
