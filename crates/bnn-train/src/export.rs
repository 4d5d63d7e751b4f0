//! From trained parameters to an inference model: signs of the latent
//! weights packed, each hidden layer's bias or batch norm (running
//! statistics) folded into an integer threshold, and the output scale `α`
//! folded into the bias (`α·dot + c` ranks like `dot + c/α`, since `α > 0`).

use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, Threshold};

use crate::config::{INPUTS, INPUT_THRESHOLD};
use crate::error::Result;
use crate::net::Network;

/// Hidden layer `l` as it runs at inference.
pub fn hidden_layer(net: &Network, l: usize) -> Result<BinaryDense> {
    let layer = net.layers[l];
    let bits = BitMatrix::from_signs(layer.outputs, layer.inputs, net.data(layer.w))?;
    let thresholds = (0..layer.outputs)
        .map(|j| match (layer.bn, layer.bias) {
            (Some(bn), _) => Threshold::from_batch_norm(
                f64::from(net.data(bn.gamma)[j]),
                f64::from(net.data(bn.beta)[j]),
                f64::from(net.data(bn.mean)[j]),
                f64::from(net.data(bn.var)[j]),
                f64::from(net.bn_eps),
                0.0,
                layer.inputs,
            ),
            (None, Some(b)) => Threshold::from_bias(f64::from(net.data(b)[j]), layer.inputs),
            (None, None) => Threshold::from_bias(0.0, layer.inputs),
        })
        .collect::<bnn_core::Result<Vec<_>>>()?;
    Ok(BinaryDense::hidden(bits, thresholds)?)
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

/// The whole binary network as a bnn-core model.
pub fn to_model(net: &Network, rule: DecisionRule) -> Result<Model> {
    let last = net.layers.len() - 1;
    let mut layers = (0..last)
        .map(|l| hidden_layer(net, l))
        .collect::<Result<Vec<_>>>()?;
    let out = net.layers[last];
    let bits = BitMatrix::from_signs(out.outputs, out.inputs, net.data(out.w))?;
    layers.push(BinaryDense::output(bits, output_bias(net))?);
    Ok(Model::new(INPUTS, INPUT_THRESHOLD, layers, rule)?)
}
