//! The FP32 network: an input transform, convolution layers (if any), dense
//! layers, one hidden activation, and the binary engine's decision rule.
//!
//! Weights are kept twice: as given (`outputs × inputs`, the file's layout
//! and the single-image dot products' layout) and transposed once at
//! construction (`inputs × outputs`, row-major), which is the right operand
//! the batch GEMM packs fastest and the row order of the single-image GEMV.

use bnn_core::DecisionRule;
use ndarray::Array2;

use crate::conv::{ConvF32, MapShape};
use crate::error::Fp32Error;

/// A dense layer: `y = W·x + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct DenseF32 {
    /// Length of `x`: the previous layer's outputs or the input's values.
    pub inputs: usize,
    /// Neurons: the length of `y`.
    pub outputs: usize,
    /// `outputs × inputs`, row-major: row `j` holds neuron `j`'s weights.
    pub weights: Vec<f32>,
    /// One per neuron, added to its dot product.
    pub bias: Vec<f32>,
}

/// The activation after every layer but the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hidden {
    /// `max(v, 0)`.
    Relu,
    /// `v >= 0 → +1.0`, else `−1.0` (NaN gives −1, as the binary engine's
    /// packing does).
    Sign,
}

impl Hidden {
    /// The activation's lowercase name, for reports and messages.
    pub fn name(self) -> &'static str {
        match self {
            Hidden::Relu => "relu",
            Hidden::Sign => "sign",
        }
    }

    /// The activation of one pre-activation value `v`.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        match self {
            Hidden::Relu => v.max(0.0),
            Hidden::Sign => {
                if v >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }
}

/// How a pixel (0..=255) becomes a network input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputTransform {
    /// `x = (p/255 − 0.5)/0.5`, in [−1, 1]: the seed project's scaling.
    /// Evaluated in f64 and rounded once to f32, as a NumPy pipeline that
    /// casts its scaled images to float32 does.
    Normalize,
    /// `p >= threshold → +1.0`, else `−1.0`: the binary engine's input.
    Binarize {
        /// The smallest pixel value that reads as +1.
        threshold: u8,
    },
    /// `x = p` as f32 (0.0..=255.0): a u8-input model's input.
    Pixel,
}

impl InputTransform {
    /// The network input for one pixel value.
    pub fn value(self, p: u8) -> f32 {
        match self {
            InputTransform::Normalize => ((f64::from(p) / 255.0 - 0.5) / 0.5) as f32,
            InputTransform::Binarize { threshold } => {
                if p >= threshold {
                    1.0
                } else {
                    -1.0
                }
            }
            InputTransform::Pixel => f32::from(p),
        }
    }

    /// Every pixel value's input, so that converting an image is one table
    /// look-up per byte whatever the transform.
    fn table(self) -> [f32; 256] {
        let mut t = [0f32; 256];
        for (p, v) in t.iter_mut().enumerate() {
            *v = self.value(p as u8);
        }
        t
    }
}

/// An FP32 network, ready to run: convolutions (none for an MLP), then
/// dense layers over the flattened last map.
///
/// # Examples
///
/// ```
/// use bnn_fp32::{format, from_binary, Fp32Model};
///
/// // The FP32 twin of the shipped seed model classifies as it does.
/// let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn"));
/// let binary = bnn_core::format::from_bytes(bytes, "seed.bnn".as_ref())?.model;
/// let twin: Fp32Model = from_binary(&binary);
/// let mut images = vec![0u8; 2 * 784];
/// images[784..].fill(200);
/// assert_eq!(twin.predict_batch(&images, None)?, binary.predict_batch(&images)?);
/// assert_eq!(twin.predict(&images[..784]), binary.predict(&images[..784])?);
///
/// // Its own file format round-trips.
/// let again = format::from_bytes(&format::to_bytes(&twin), "twin.f32".as_ref())?;
/// assert!(again == twin);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Fp32Model {
    input: InputTransform,
    hidden: Hidden,
    convs: Vec<ConvF32>,
    layers: Vec<DenseF32>,
    rule: DecisionRule,
    /// Per layer, `inputs × outputs` row-major.
    pub(crate) transposed: Vec<Array2<f32>>,
    /// Per convolution, `window × outputs` row-major.
    pub(crate) conv_transposed: Vec<Array2<f32>>,
    pub(crate) table: [f32; 256],
}

impl std::fmt::Debug for Fp32Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fp32Model")
            .field("input", &self.input)
            .field("hidden", &self.hidden)
            .field("arch", &self.arch())
            .field("rule", &self.rule)
            .finish_non_exhaustive()
    }
}

impl Fp32Model {
    /// Checks that there is at least one layer, that each layer's weight and
    /// bias lengths match its shape, that the layers chain, and that every
    /// value is finite.
    pub fn new(
        input: InputTransform,
        hidden: Hidden,
        layers: Vec<DenseF32>,
        rule: DecisionRule,
    ) -> Result<Fp32Model, Fp32Error> {
        Fp32Model::with_convs(input, hidden, Vec::new(), layers, rule)
    }

    /// A network with convolutions in front of the dense layers. Checks,
    /// besides what [`Fp32Model::new`] does, each convolution (see
    /// [`ConvF32`]), that their maps chain, and that the first dense layer
    /// takes the last map, flattened.
    pub fn with_convs(
        input: InputTransform,
        hidden: Hidden,
        convs: Vec<ConvF32>,
        layers: Vec<DenseF32>,
        rule: DecisionRule,
    ) -> Result<Fp32Model, Fp32Error> {
        let invalid = |m: String| Err(Fp32Error::InvalidModel(m));
        if layers.is_empty() {
            return invalid("a model needs at least one dense layer".into());
        }
        for (i, conv) in convs.iter().enumerate() {
            if let Err(m) = conv.check(i + 1) {
                return invalid(m);
            }
            if i > 0 && conv.input != convs[i - 1].output() {
                return invalid(format!(
                    "layer {} takes a {} map but receives {}",
                    i + 1,
                    conv.input,
                    convs[i - 1].output()
                ));
            }
        }
        if let Some(last) = convs.last() {
            let flat = last.output().values().expect("checked with the layer");
            if layers[0].inputs != flat {
                return invalid(format!(
                    "layer {} takes {} inputs but receives the {} map of layer {} ({flat} values)",
                    convs.len() + 1,
                    layers[0].inputs,
                    last.output(),
                    convs.len()
                ));
            }
        }
        for (i, layer) in layers.iter().enumerate() {
            let n = convs.len() + i + 1;
            if layer.inputs == 0 || layer.outputs == 0 {
                return invalid(format!(
                    "layer {n} has {} neurons over {} inputs",
                    layer.outputs, layer.inputs
                ));
            }
            if i > 0 && layer.inputs != layers[i - 1].outputs {
                return invalid(format!(
                    "layer {n} takes {} inputs but receives {}",
                    layer.inputs,
                    layers[i - 1].outputs
                ));
            }
            let want = layer.outputs.checked_mul(layer.inputs);
            if want != Some(layer.weights.len()) {
                return invalid(format!(
                    "layer {n} has {} weights for {} neurons × {} inputs",
                    layer.weights.len(),
                    layer.outputs,
                    layer.inputs
                ));
            }
            if layer.bias.len() != layer.outputs {
                return invalid(format!(
                    "layer {n} has {} biases for {} neurons",
                    layer.bias.len(),
                    layer.outputs
                ));
            }
            if let Some(k) = layer.weights.iter().position(|v| !v.is_finite()) {
                return invalid(format!(
                    "layer {n} weight {k} (neuron {}, input {}) is {}",
                    k / layer.inputs,
                    k % layer.inputs,
                    layer.weights[k]
                ));
            }
            if let Some(j) = layer.bias.iter().position(|v| !v.is_finite()) {
                return invalid(format!("layer {n} bias {j} is {}", layer.bias[j]));
            }
        }
        let transposed = layers
            .iter()
            .map(|l| {
                Array2::from_shape_vec((l.outputs, l.inputs), l.weights.clone())
                    .expect("weight length checked above")
                    .reversed_axes()
                    .as_standard_layout()
                    .into_owned()
            })
            .collect();
        Ok(Fp32Model {
            input,
            hidden,
            table: input.table(),
            conv_transposed: convs.iter().map(ConvF32::transposed).collect(),
            convs,
            layers,
            rule,
            transposed,
        })
    }

    /// The dense layers (all of an MLP's layers).
    pub fn layers(&self) -> &[DenseF32] {
        &self.layers
    }

    /// The convolutions in front of the dense layers; empty for an MLP.
    pub fn convs(&self) -> &[ConvF32] {
        &self.convs
    }

    /// The input image's shape, for a network that starts with a
    /// convolution.
    pub fn input_shape(&self) -> Option<MapShape> {
        self.convs.first().map(|c| c.input)
    }

    /// Values each layer hands on, input first: e.g. `[784, 512, 10]`, or
    /// each convolution's map, flattened.
    pub fn shape(&self) -> Vec<usize> {
        std::iter::once(self.input_len())
            .chain(
                self.convs
                    .iter()
                    .map(|c| c.output().values().expect("checked at construction")),
            )
            .chain(self.layers.iter().map(|l| l.outputs))
            .collect()
    }

    /// The layers in the architecture grammar of `bnn train --arch`:
    /// `c3x32,p2,c3x64,p2,d256,d10`.
    pub fn arch(&self) -> String {
        self.convs
            .iter()
            .map(ConvF32::token)
            .chain(self.layers.iter().map(|l| format!("d{}", l.outputs)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Pixels per image.
    pub fn input_len(&self) -> usize {
        match self.convs.first() {
            Some(c) => c.input.values().expect("checked at construction"),
            None => self.layers[0].inputs,
        }
    }

    /// How pixels become the first layer's inputs.
    pub fn input(&self) -> InputTransform {
        self.input
    }

    /// The activation after every layer but the last.
    pub fn hidden(&self) -> Hidden {
        self.hidden
    }

    /// How a class is chosen from the last layer's scores.
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
        self.layers[self.layers.len() - 1].outputs
    }

    /// Bytes of parameters (weights and biases, 4 each) the network reads
    /// per forward pass: the number to set against the 1-bit model's size.
    pub fn weight_bytes(&self) -> usize {
        let convs: usize = self
            .convs
            .iter()
            .map(|c| 4 * (c.weights.len() + c.scale.len() + c.bias.len()))
            .sum();
        let dense: usize = self
            .layers
            .iter()
            .map(|l| 4 * (l.weights.len() + l.bias.len()))
            .sum();
        convs + dense
    }

    /// Floating-point operations per image, counting a multiply-add as two:
    /// the work figure behind a GFLOP/s rate.
    pub fn flops_per_image(&self) -> u64 {
        let convs: u64 = self.convs.iter().map(|c| c.macs() as u64).sum();
        let dense: u64 = self
            .layers
            .iter()
            .map(|l| (l.inputs * l.outputs) as u64)
            .sum();
        2 * (convs + dense)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(inputs: usize, outputs: usize) -> DenseF32 {
        DenseF32 {
            inputs,
            outputs,
            weights: vec![0.5; inputs * outputs],
            bias: vec![0.0; outputs],
        }
    }

    fn build(layers: Vec<DenseF32>) -> Result<Fp32Model, Fp32Error> {
        Fp32Model::new(
            InputTransform::Normalize,
            Hidden::Relu,
            layers,
            DecisionRule::Scores,
        )
    }

    #[test]
    fn accepts_a_chain_and_reports_its_shape() {
        let m = build(vec![dense(6, 4), dense(4, 3)]).unwrap();
        assert_eq!(m.shape(), vec![6, 4, 3]);
        assert_eq!(m.num_classes(), 3);
        assert_eq!(m.weight_bytes(), 4 * (24 + 4 + 12 + 3));
        // Transposed: element (k, j) is weight (j, k).
        let mut l = dense(3, 2);
        l.weights = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = build(vec![l]).unwrap();
        assert_eq!(m.transposed[0][[2, 1]], 6.0);
        assert_eq!(m.transposed[0][[0, 1]], 4.0);
        assert_eq!(m.transposed[0].as_slice().unwrap().len(), 6);
    }

    #[test]
    fn rejects_bad_models() {
        let msg = |layers| build(layers).unwrap_err().to_string();
        assert!(msg(vec![]).contains("at least one dense layer"));
        assert!(msg(vec![dense(6, 4), dense(5, 3)]).contains("takes 5 inputs but receives 4"));
        assert!(msg(vec![dense(0, 4)]).contains("0 inputs"));
        let mut short = dense(6, 4);
        short.weights.pop();
        assert!(msg(vec![short]).contains("23 weights"));
        let mut bias = dense(6, 4);
        bias.bias.push(0.0);
        assert!(msg(vec![bias]).contains("5 biases"));
        let mut nan = dense(6, 4);
        nan.weights[13] = f32::NAN;
        assert!(msg(vec![nan]).contains("weight 13 (neuron 2, input 1) is NaN"));
        let mut inf = dense(6, 4);
        inf.bias[3] = f32::INFINITY;
        assert!(msg(vec![inf]).contains("bias 3 is inf"));
    }

    #[test]
    fn transforms_and_activations() {
        // (p/255 − 0.5)/0.5 by hand: 51 → −0.6, 102 → −0.2, 153 → 0.2,
        // 204 → 0.6; each the f32 nearest the exact value.
        let n = InputTransform::Normalize;
        assert_eq!(n.value(0), -1.0);
        assert_eq!(n.value(255), 1.0);
        assert_eq!(n.value(51), -0.6);
        assert_eq!(n.value(102), -0.2);
        assert_eq!(n.value(153), 0.2);
        assert_eq!(n.value(204), 0.6);
        // Every value within an f32 rounding of (2p − 255)/255, rising, odd
        // about 127.5, and what the look-up table holds.
        let table = n.table();
        for p in 0..=255u8 {
            let exact = (2.0 * f64::from(p) - 255.0) / 255.0;
            let v = n.value(p);
            assert!((f64::from(v) - exact).abs() <= 6e-8, "{p}: {v} vs {exact}");
            assert_eq!(n.value(255 - p), -v, "{p}");
            assert_eq!(table[usize::from(p)], v, "{p}");
            if p > 0 {
                assert!(v > n.value(p - 1), "{p}");
            }
        }
        let b = InputTransform::Binarize { threshold: 128 };
        assert_eq!((b.value(127), b.value(128)), (-1.0, 1.0));
        assert_eq!(Hidden::Sign.apply(0.0), 1.0);
        assert_eq!(Hidden::Sign.apply(-0.0), 1.0);
        assert_eq!(Hidden::Sign.apply(-1e-30), -1.0);
        assert_eq!(Hidden::Sign.apply(f32::NAN), -1.0);
        assert_eq!(Hidden::Relu.apply(-3.0), 0.0);
        assert_eq!(Hidden::Relu.apply(2.5), 2.5);
    }
}
