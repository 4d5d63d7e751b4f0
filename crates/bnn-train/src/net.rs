//! The trainable network: named parameter tensors plus the layer structure
//! that says which tensor plays which part. Keeping the parameters in one
//! flat list lets the optimizer, the checkpoint and the determinism tests
//! treat them uniformly.

use ndarray::Array2;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::arch::ConvShape;
use crate::config::{Input, ModelKind, TrainConfig};

/// What a tensor is, which decides how the optimizer treats it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Latent weights: the sign is used forward; clipped to [−1, 1] after
    /// each update in binary models.
    Weight,
    /// A dense layer's bias (layers without batch norm).
    Bias,
    /// Batch-norm scale.
    Gamma,
    /// Batch-norm shift.
    Beta,
    /// `ln α` of the output scale.
    LogScale,
    /// Batch-norm statistics for inference: set, not optimized.
    RunningMean,
    /// Batch-norm running variance for inference: set, not optimized.
    RunningVar,
}

impl Role {
    /// Whether the optimizer updates the tensor (the running statistics
    /// are set from batches instead).
    pub fn trainable(self) -> bool {
        !matches!(self, Role::RunningMean | Role::RunningVar)
    }

    fn code(self) -> &'static str {
        match self {
            Role::Weight => "w",
            Role::Bias => "b",
            Role::Gamma => "gamma",
            Role::Beta => "beta",
            Role::LogScale => "log_scale",
            Role::RunningMean => "mean",
            Role::RunningVar => "var",
        }
    }
}

/// One named parameter array of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// `layerN.<role>` or `convN.<role>` (1-based): how checkpoints name it.
    pub name: String,
    /// What the tensor is, which decides how the optimizer treats it.
    pub role: Role,
    /// The values, row-major for a weight matrix.
    pub data: Vec<f32>,
}

/// Tensor indices of a batch norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnRef {
    /// The scale's tensor.
    pub gamma: usize,
    /// The shift's tensor.
    pub beta: usize,
    /// The running mean's tensor.
    pub mean: usize,
    /// The running variance's tensor.
    pub var: usize,
}

/// One dense layer's shape and tensor indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerRef {
    /// Inputs per neuron.
    pub inputs: usize,
    /// Neurons.
    pub outputs: usize,
    /// The weights' tensor, outputs × inputs.
    pub w: usize,
    /// Absent for hidden layers with batch norm (its shift replaces it).
    pub bias: Option<usize>,
    /// The batch norm before the sign, when the run uses batch norm (never
    /// on the output layer).
    pub bn: Option<BnRef>,
}

/// One convolution's shape and tensor indices: weights (out_c × patch,
/// each row in the (ky, kx, c) order of an NHWC im2col row) and the batch
/// norm after the optional pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvRef {
    /// Kernel, padding, pool and the maps around the convolution.
    pub shape: ConvShape,
    /// The weights' tensor.
    pub w: usize,
    /// The batch norm after the optional pool.
    pub bn: BnRef,
}

/// The network being trained: its latent parameters as named tensors and
/// the layers that index them.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Binary or FP32.
    pub kind: ModelKind,
    /// Convolutions before the dense layers (none in an MLP).
    pub convs: Vec<ConvRef>,
    /// What the first layer sees (binary models).
    pub input: Input,
    /// Every parameter array; layers refer to them by index.
    pub tensors: Vec<Tensor>,
    /// The dense layers, output layer last.
    pub layers: Vec<LayerRef>,
    /// Index of the one-element `ln α` tensor.
    pub scale: usize,
    /// Added to the variance before its square root in batch norm.
    pub bn_eps: f32,
    /// Height, width and channels of an input image.
    pub input_map: (usize, usize, usize),
}

impl Network {
    /// Fresh parameters: normal latent weights, zero biases and shifts, unit
    /// batch-norm scales.
    pub fn new(config: &TrainConfig, rng: &mut ChaCha8Rng) -> Self {
        let shape = config.shape();
        let mut tensors = Vec::new();
        let mut latent = |inputs: usize, outputs: usize| -> Vec<f32> {
            let std = config
                .init_std
                .unwrap_or_else(|| (2.0 / inputs as f32).sqrt());
            let normal = Normal::new(0.0f32, std).expect("checked positive");
            (0..inputs * outputs)
                .map(|_| {
                    let v = normal.sample(rng);
                    if config.kind == ModelKind::Binary {
                        v.clamp(-1.0, 1.0)
                    } else {
                        v
                    }
                })
                .collect()
        };
        let mut convs = Vec::new();
        for (i, shape) in config.convs().into_iter().enumerate() {
            let n = shape.out_c;
            let mut add = |role: Role, data: Vec<f32>| {
                tensors.push(Tensor {
                    name: format!("conv{}.{}", i + 1, role.code()),
                    role,
                    data,
                });
                tensors.len() - 1
            };
            let w = add(Role::Weight, latent(shape.patch(), n));
            let bn = BnRef {
                gamma: add(Role::Gamma, vec![1.0; n]),
                beta: add(Role::Beta, vec![0.0; n]),
                mean: add(Role::RunningMean, vec![0.0; n]),
                var: add(Role::RunningVar, vec![1.0; n]),
            };
            convs.push(ConvRef { shape, w, bn });
        }
        let mut add = |layer: usize, role: Role, data: Vec<f32>| {
            tensors.push(Tensor {
                name: format!("layer{}.{}", layer + 1, role.code()),
                role,
                data,
            });
            tensors.len() - 1
        };
        let mut layers = Vec::new();
        let last = shape.len() - 2;
        for (l, pair) in shape.windows(2).enumerate() {
            let (inputs, outputs) = (pair[0], pair[1]);
            let w = add(l, Role::Weight, latent(inputs, outputs));
            let with_bn = config.batch_norm && l < last;
            let bias = (!with_bn).then(|| add(l, Role::Bias, vec![0.0; outputs]));
            let bn = with_bn.then(|| BnRef {
                gamma: add(l, Role::Gamma, vec![1.0; outputs]),
                beta: add(l, Role::Beta, vec![0.0; outputs]),
                mean: add(l, Role::RunningMean, vec![0.0; outputs]),
                var: add(l, Role::RunningVar, vec![1.0; outputs]),
            });
            layers.push(LayerRef {
                inputs,
                outputs,
                w,
                bias,
                bn,
            });
        }
        let scale = add(last, Role::LogScale, vec![config.output_scale.ln()]);
        Network {
            kind: config.kind,
            convs,
            input: config.input,
            tensors,
            layers,
            scale,
            bn_eps: config.bn_eps,
            input_map: config.input_map,
        }
    }

    /// Input values per image.
    pub fn input_len(&self) -> usize {
        let (h, w, c) = self.input_map;
        h * w * c
    }

    /// Whether the first dense layer multiplies u8 pixels (a u8-input MLP).
    pub fn dense_takes_pixels(&self) -> bool {
        self.input == Input::U8 && self.convs.is_empty()
    }

    /// Every batch norm, convolutions first, then one entry per dense
    /// layer; the order of [`crate::step::StepOutput::batch_stats`].
    pub fn bn_sites(&self) -> Vec<Option<BnRef>> {
        self.convs
            .iter()
            .map(|c| Some(c.bn))
            .chain(self.layers.iter().map(|l| l.bn))
            .collect()
    }

    /// A convolution's weights as the forward pass uses them: signs, one
    /// row of `patch` values per output channel.
    pub fn conv_weights(&self, c: usize) -> Array2<f32> {
        let conv = self.convs[c];
        let values = self.data(conv.w).iter().map(|&v| sign(v)).collect();
        Array2::from_shape_vec((conv.shape.out_c, conv.shape.patch()), values).expect("shape")
    }

    /// The values of tensor `index`.
    pub fn data(&self, index: usize) -> &[f32] {
        &self.tensors[index].data
    }

    /// The output scale `α`.
    pub fn alpha(&self) -> f32 {
        self.tensors[self.scale].data[0].exp()
    }

    /// The weights the forward pass uses, as an outputs × inputs matrix:
    /// their signs (`w ≥ 0` → +1) in binary models, as they are otherwise.
    pub fn forward_weights(&self, l: usize) -> Array2<f32> {
        let layer = self.layers[l];
        let w = self.data(layer.w);
        let values: Vec<f32> = match self.kind {
            ModelKind::Binary => w.iter().map(|&v| sign(v)).collect(),
            ModelKind::Fp32 => w.to_vec(),
        };
        Array2::from_shape_vec((layer.outputs, layer.inputs), values).expect("shape")
    }

    /// The first tensor that is not finite, if any.
    pub fn first_non_finite(&self) -> Option<&str> {
        self.tensors
            .iter()
            .find(|t| t.data.iter().any(|v| !v.is_finite()))
            .map(|t| t.name.as_str())
    }
}

/// The seed's sign: zero maps to +1.
#[inline]
pub fn sign(v: f32) -> f32 {
    if v >= 0.0 {
        1.0
    } else {
        -1.0
    }
}
