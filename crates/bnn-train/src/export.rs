//! From trained parameters to an inference model: signs of the latent
//! weights packed, each hidden layer's bias or batch norm (running
//! statistics) folded into an integer threshold, and the output scale `α`
//! folded into the bias (`α·dot + c` ranks like `dot + c/α`, since `α > 0`).
//!
//! A u8-input first layer folds the same way: its dot products `Σ p·w` are
//! integers too, only wider (up to 255 per input instead of 1).

use bnn_core::{
    BinaryDense, BitMatrix, DecisionRule, InputShape, Model, PixelDense, Threshold, Transform,
};
use ndarray::Array2;

use crate::config::{Input, INPUT_MAP, INPUT_THRESHOLD};
use crate::error::Result;
use crate::net::{BnRef, Network};

/// The first layer of a u8-input model as the trainer runs it: the ±1
/// weights (outputs × inputs, as f32, for an exact sgemm over pixel values)
/// and, per neuron, a threshold on `Σ p·w` (a hidden layer) or a bias (the
/// output layer of a model without hidden layers).
#[derive(Clone, Debug)]
pub struct PixelLayer {
    /// ±1.0 weights, outputs × inputs.
    pub signs: Array2<f32>,
    /// Thresholds (hidden) or biases (output), one per neuron.
    pub transform: Transform,
}

/// A folded network in the trainer's terms: an optional u8 first layer,
/// then layers over ±1 inputs.
#[derive(Clone, Debug)]
pub struct Folded {
    /// The u8 first layer of a u8-input model.
    pub first: Option<PixelLayer>,
    /// The engine's binary layers, output layer last (empty when `first`
    /// emits the scores).
    pub layers: Vec<BinaryDense>,
    /// How a class is chosen from the scores.
    pub rule: DecisionRule,
    /// Height, width and channels of an input image.
    pub input_map: (usize, usize, usize),
}

impl Folded {
    /// Input values per image.
    pub fn input_len(&self) -> usize {
        let (h, w, c) = self.input_map;
        h * w * c
    }
}

/// The integer threshold of neuron `j` behind batch norm `bn`, whose dots
/// lie within `±range`.
fn bn_threshold(net: &Network, bn: BnRef, j: usize, range: usize) -> bnn_core::Result<Threshold> {
    Threshold::from_batch_norm(
        f64::from(net.data(bn.gamma)[j]),
        f64::from(net.data(bn.beta)[j]),
        f64::from(net.data(bn.mean)[j]),
        f64::from(net.data(bn.var)[j]),
        f64::from(net.bn_eps),
        0.0,
        range,
    )
}

/// The thresholds of the `outputs` neurons behind batch norm `bn`.
pub fn bn_thresholds(
    net: &Network,
    bn: BnRef,
    outputs: usize,
    range: usize,
) -> Result<Vec<Threshold>> {
    Ok((0..outputs)
        .map(|j| bn_threshold(net, bn, j, range))
        .collect::<bnn_core::Result<Vec<_>>>()?)
}

/// The integer threshold of hidden neuron `j` of layer `l`.
fn threshold(net: &Network, l: usize, j: usize) -> bnn_core::Result<Threshold> {
    let layer = net.layers[l];
    // The clamp range: the largest |dot| this layer can see.
    let range = if l == 0 && net.dense_takes_pixels() {
        PixelDense::dot_bound(layer.inputs)
    } else {
        layer.inputs
    };
    match (layer.bn, layer.bias) {
        (Some(bn), _) => bn_threshold(net, bn, j, range),
        (None, Some(b)) => Threshold::from_bias(f64::from(net.data(b)[j]), range),
        (None, None) => Threshold::from_bias(0.0, range),
    }
}

/// The thresholds of hidden layer `l`.
pub fn thresholds(net: &Network, l: usize) -> Result<Vec<Threshold>> {
    Ok((0..net.layers[l].outputs)
        .map(|j| threshold(net, l, j))
        .collect::<bnn_core::Result<Vec<_>>>()?)
}

/// Hidden layer `l` (over ±1 inputs) as it runs at inference.
pub fn hidden_layer(net: &Network, l: usize) -> Result<BinaryDense> {
    let layer = net.layers[l];
    let bits = BitMatrix::from_signs(layer.outputs, layer.inputs, net.data(layer.w))?;
    Ok(BinaryDense::hidden(bits, thresholds(net, l)?)?)
}

/// The output layer's bias in dot units: `c/α`.
pub fn output_bias(net: &Network) -> Vec<f32> {
    let last = net.layers[net.layers.len() - 1];
    let alpha = f64::from(net.alpha());
    net.data(last.bias.expect("the output layer has a bias"))
        .iter()
        .map(|&c| (f64::from(c) / alpha) as f32)
        .collect()
}

/// The first `hidden` hidden layers folded: the u8 first layer apart when
/// the input is u8, the others as engine layers.
pub fn fold_hidden(net: &Network, hidden: usize) -> Result<(Option<PixelLayer>, Vec<BinaryDense>)> {
    let u8_first = net.input == Input::U8 && hidden > 0;
    let first = if u8_first {
        Some(PixelLayer {
            signs: net.forward_weights(0),
            transform: Transform::Sign(thresholds(net, 0)?),
        })
    } else {
        None
    };
    let layers = (usize::from(u8_first)..hidden)
        .map(|l| hidden_layer(net, l))
        .collect::<Result<Vec<_>>>()?;
    Ok((first, layers))
}

/// [`output_bias`] for a model to keep: a bias that is not finite (a scale
/// `α` driven to almost 0, or a bias to infinity) means the run diverged,
/// and says so in those words rather than as an invalid model.
pub fn kept_output_bias(net: &Network) -> Result<Vec<f32>> {
    let bias = output_bias(net);
    match bias.iter().position(|b| !b.is_finite()) {
        None => Ok(bias),
        Some(j) => {
            let last = net.layers[net.layers.len() - 1];
            let c = net.data(last.bias.expect("the output layer has a bias"))[j];
            Err(crate::error::TrainError::Diverged(format!(
                "class {j}'s output bias {c} over the output scale {} is {}; \
                 lower --lr or --output-scale and train again",
                net.alpha(),
                bias[j]
            )))
        }
    }
}

/// The whole binary network folded for inference.
pub fn fold(net: &Network, rule: DecisionRule) -> Result<Folded> {
    let last = net.layers.len() - 1;
    let (mut first, mut layers) = fold_hidden(net, last)?;
    if net.input == Input::U8 && last == 0 {
        first = Some(PixelLayer {
            signs: net.forward_weights(0),
            transform: Transform::Scores(kept_output_bias(net)?),
        });
    } else {
        let out = net.layers[last];
        let bits = BitMatrix::from_signs(out.outputs, out.inputs, net.data(out.w))?;
        layers.push(BinaryDense::output(bits, kept_output_bias(net)?)?);
    }
    Ok(Folded {
        first,
        layers,
        rule,
        input_map: net.input_map,
    })
}

/// The FP32 network as an FP32 engine model (normalized pixels, ReLU,
/// argmax), with `α` multiplied into the output weights.
pub fn to_fp32(net: &Network) -> Result<bnn_fp32::Fp32Model> {
    let last = net.layers.len() - 1;
    let alpha = net.alpha();
    let layers = net
        .layers
        .iter()
        .enumerate()
        .map(|(l, layer)| bnn_fp32::DenseF32 {
            inputs: layer.inputs,
            outputs: layer.outputs,
            weights: net
                .data(layer.w)
                .iter()
                .map(|&w| if l == last { alpha * w } else { w })
                .collect(),
            bias: net
                .data(layer.bias.expect("fp32 layers have biases"))
                .to_vec(),
        })
        .collect();
    bnn_fp32::Fp32Model::new(
        bnn_fp32::InputTransform::Normalize,
        bnn_fp32::Hidden::Relu,
        layers,
        DecisionRule::Scores,
    )
    .map_err(|e| crate::error::TrainError::Other(format!("FP32 export: {e}")))
}

/// The folded network as a bnn-core model. A u8-input model records its
/// input shape; a binary-input one records it unless it is MNIST's (so that
/// those save exactly as before) or a flat feature vector.
pub fn to_model(folded: &Folded) -> Result<Model> {
    let (h, w, c) = folded.input_map;
    let shape = InputShape::new(h as u32, w as u32, c as u32);
    match &folded.first {
        None => {
            let mut model = Model::new(
                folded.input_len(),
                INPUT_THRESHOLD,
                folded.layers.clone(),
                folded.rule,
            )?;
            if folded.input_map != INPUT_MAP && (h, c) != (1, 1) {
                model.set_input_shape(shape)?;
            }
            Ok(model)
        }
        Some(first) => {
            let (outputs, inputs) = first.signs.dim();
            let signs = first.signs.as_slice().expect("standard layout");
            let bits = BitMatrix::from_signs(outputs, inputs, signs)?;
            let pixel = PixelDense::new(bits, first.transform.clone())?;
            let mut model = Model::with_pixel_layer(pixel, folded.layers.clone(), folded.rule)?;
            model.set_input_shape(shape)?;
            Ok(model)
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::error::TrainError;

    /// A scale driven to almost zero turns a modest bias into infinity: the
    /// fold says the run diverged, naming the class, instead of handing the
    /// engine an invalid model.
    #[test]
    fn an_infinite_output_bias_is_divergence() {
        let config = crate::recipe("seed").unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut net = Network::new(&config, &mut rng);
        let bias = net.layers[net.layers.len() - 1].bias.unwrap();
        net.tensors[bias].data[3] = -1.0;
        net.tensors[net.scale].data[0] = -100.0;
        let e = fold(&net, DecisionRule::Scores).unwrap_err();
        assert!(
            matches!(&e, TrainError::Diverged(m) if m.starts_with("class 3's output bias -1 over") && m.contains("is -inf")),
            "{e}"
        );
        net.tensors[net.scale].data[0] = 0.0;
        assert!(fold(&net, DecisionRule::Scores).unwrap().layers.len() == 2);
    }
}
