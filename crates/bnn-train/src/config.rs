//! Every knob of a training run, and the checks that reject a configuration
//! before any work starts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::arch::{Arch, ArchLayer, ConvShape, Padding};
use crate::error::{Result, TrainError};

/// What the trained network computes at inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    /// ±1 inputs (pixel ≥ 128), ±1 weights and activations; exports a `.bnn`.
    Binary,
    /// Float weights, ReLU, normalized pixels; exports an FP32 model file.
    Fp32,
}

/// What the first layer of a binary model sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// One ±1 value per pixel (pixel ≥ 128 is +1), as the engine binarizes.
    #[default]
    Binary,
    /// The pixel value 0..=255 itself: the first layer's dot products
    /// `Σ p·w` with ±1 weights are integers of at most 255·784 < 2²⁴, so
    /// f32 holds them exactly and batch norm folds into integer thresholds
    /// as it does for binary inputs. Any scale lives in the batch norm,
    /// never in the input, so that inference sees the raw pixels.
    U8,
}

/// The training loss on the output scores `s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// The seed's: squared error of `sign(s)` against ±1 targets, with the
    /// gradient `2·(sign(s) − t)/batch` passed through the output's STE.
    SignMse,
    /// Squared error of the scores against ±1 targets.
    Mse,
    /// `Σ max(0, 1 − t·s)²` over classes, targets ±1.
    SquaredHinge,
    /// Softmax cross-entropy.
    CrossEntropy,
}

/// How latent weights move.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    /// Plain gradient descent: `w −= lr·g`.
    Sgd,
    /// Heavy-ball momentum.
    Momentum {
        /// The decay of the velocity, in [0, 1).
        momentum: f32,
    },
    /// Adam with bias correction.
    Adam {
        /// Decay of the first moment, in [0, 1).
        beta1: f32,
        /// Decay of the second moment, in [0, 1).
        beta2: f32,
        /// Added to the root of the second moment to avoid dividing by 0.
        eps: f32,
    },
}

/// Learning rate per epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Schedule {
    /// The initial rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between steps.
        every: usize,
        /// Factor applied at each step.
        gamma: f32,
    },
    /// Half a cosine from the initial rate down to `final_lr` at the last epoch.
    Cosine {
        /// The rate of the last epoch.
        final_lr: f32,
    },
    /// Geometric decay from the initial rate to `final_lr` at the last epoch.
    Exponential {
        /// The rate of the last epoch.
        final_lr: f32,
    },
}

/// How a class is chosen from the scores (stored in the exported model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rule {
    /// Argmax of the scores.
    Scores,
    /// The seed's: first class whose score is ≥ 0, class 0 if none.
    Seed,
}

impl Rule {
    /// The engine's rule of the same meaning, stored in the exported model.
    pub fn to_core(self) -> bnn_core::DecisionRule {
        match self {
            Rule::Scores => bnn_core::DecisionRule::Scores,
            Rule::Seed => bnn_core::DecisionRule::Seed,
        }
    }
}

/// A whole training run. Everything that influences the result is here, so
/// a checkpoint that stores it can continue the run exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The recipe this configuration started from (provenance only).
    pub recipe: String,
    /// Binary or FP32: what the run trains and exports.
    pub kind: ModelKind,
    /// The first layer's input encoding (binary models only; configurations
    /// stored before it existed are binary).
    #[serde(default)]
    pub input: Input,
    /// Hidden layer widths; the input is 784 pixels, the output 10 classes.
    pub hidden: Vec<usize>,
    /// Batch norm before each hidden sign (binary models only).
    pub batch_norm: bool,
    /// What the scores are trained against.
    pub loss: Loss,
    /// How latent weights move.
    pub optimizer: Optimizer,
    /// Initial learning rate, before `schedule`.
    pub lr: f32,
    /// The learning rate of each epoch.
    pub schedule: Schedule,
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per gradient step.
    pub batch: usize,
    /// STE: the gradient passes where |pre-activation| ≤ clip.
    pub ste_clip: f32,
    /// When set, each epoch's clip is this factor times the RMS of the
    /// pre-activations seen in the previous epoch, per layer.
    pub dynamic_clip: Option<f32>,
    /// Standard deviation of the normal latent-weight initialisation;
    /// `None` means He initialisation (`√(2/fan_in)`).
    pub init_std: Option<f32>,
    /// Initial positive scale `α` of the output scores, `s = α·dot + c`.
    pub output_scale: f32,
    /// Whether `α` is learned (it is folded into the exported bias `c/α`).
    pub learn_output_scale: bool,
    /// Probability of dropping a hidden activation in training (FP32 only
    /// uses it as usual; binary models drop by zeroing the ±1 value).
    pub dropout: f32,
    /// Random translation of training images by up to this many pixels.
    pub shift: usize,
    /// Random rotation of training images by up to this many degrees
    /// about their centre (with `scale`, a bilinear warp; 0 and 0 keep the
    /// whole-pixel shift alone). Left out of stored configurations when 0,
    /// so checkpoints written before it existed load and save back byte for
    /// byte.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rotate: f32,
    /// Random scaling of training images by a factor within `1 ± scale`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub scale: f32,
    /// How the exported model picks a class; accuracy is measured with it.
    pub rule: Rule,
    /// Seeds initialisation, shuffling, dropout and augmentation: the
    /// same configuration and data give the same model.
    pub seed: u64,
    /// Images held out from the end of the training set for validation.
    pub validation: usize,
    /// Weight of a batch's statistics in the running averages:
    /// `running = (1 − m)·running + m·batch`.
    pub bn_momentum: f32,
    /// Added to the variance before its square root in batch norm.
    pub bn_eps: f32,
    /// Recompute batch-norm statistics over the whole training split after
    /// every epoch instead of keeping running averages.
    pub bn_recompute: bool,
    /// Train on only the first this many training images (validation
    /// included). Part of the configuration so that a resumed run trains on
    /// the data it started with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_train: Option<usize>,
    /// Test on only the first this many test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_test: Option<usize>,
    /// A convolutional architecture (see [`crate::arch`]); `hidden` is then
    /// empty, and the dense layers are the architecture's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<Arch>,
    /// The padding of every convolution (convolutional models only).
    #[serde(default, skip_serializing_if = "is_same")]
    pub padding: Padding,
    /// Height, width and channels of each input image (a feature vector is
    /// `(1, D, 1)`). Left out of stored configurations when it is MNIST's,
    /// so checkpoints written before it existed load and save back byte for
    /// byte.
    #[serde(default = "mnist_map", skip_serializing_if = "is_mnist_map")]
    pub input_map: (usize, usize, usize),
    /// Output classes; left out when 10, as `input_map` is.
    #[serde(default = "mnist_classes", skip_serializing_if = "is_mnist_classes")]
    pub classes: usize,
}

fn mnist_map() -> (usize, usize, usize) {
    INPUT_MAP
}

fn is_mnist_map(m: &(usize, usize, usize)) -> bool {
    *m == INPUT_MAP
}

fn mnist_classes() -> usize {
    CLASSES
}

fn is_mnist_classes(c: &usize) -> bool {
    *c == CLASSES
}

fn is_same(p: &Padding) -> bool {
    *p == Padding::Same
}

/// MNIST's input map, the default: one 28×28 grey image.
pub const INPUT_MAP: (usize, usize, usize) = (28, 28, 1);

/// MNIST's pixels per image.
pub const INPUTS: usize = 784;
/// MNIST's classes, the default.
pub const CLASSES: usize = 10;
/// Most input values per image a configuration may have (a 512×512 colour
/// image): far beyond any data set the trainer is for, and small enough
/// that no product of widths overflows.
pub const MAX_INPUTS: usize = 1 << 20;
/// Most classes a configuration may have: labels are held as `u16`, and
/// the largest is one below 65,536 so that a class count fits too.
pub const MAX_CLASSES: usize = 65_535;
/// Pixel threshold of binary inputs, fixed because the engine binarizes at it.
pub const INPUT_THRESHOLD: u8 = 128;

/// A configuration error, as [`TrainConfig::validate`]'s steps return it.
fn bad(message: String) -> Result<()> {
    Err(TrainError::Config(message))
}

fn is_zero(v: &f32) -> bool {
    *v == 0.0
}

impl TrainConfig {
    /// Whether training images are rotated or scaled (a bilinear warp).
    pub fn warps(&self) -> bool {
        self.rotate > 0.0 || self.scale > 0.0
    }

    /// Input values per image.
    pub fn inputs(&self) -> usize {
        let (h, w, c) = self.input_map;
        h * w * c
    }

    /// Dense layer widths, input first: for a convolutional model, the
    /// flattened features of the last convolution first.
    pub fn shape(&self) -> Vec<usize> {
        if let Some((_, dense)) = self.conv_maps() {
            return dense;
        }
        std::iter::once(self.inputs())
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(self.classes))
            .collect()
    }

    /// This configuration for data of another shape and class count. An
    /// architecture whose output layer is the old class count (every
    /// recipe's: `cnv` ends in `d10`) gets the new one, so that a recipe
    /// made for 10 classes trains on CIFAR-100 as it is; any other last
    /// width is left for [`TrainConfig::validate`] to name.
    pub fn for_data(mut self, input_map: (usize, usize, usize), classes: usize) -> Self {
        if let Some(arch) = &mut self.arch {
            if let Some(ArchLayer::Dense(n)) = arch.layers.last_mut() {
                if *n == self.classes {
                    *n = classes;
                }
            }
        }
        self.input_map = input_map;
        self.classes = classes;
        self
    }

    /// The convolutions of a convolutional model in place, and its dense
    /// widths; `None` for an MLP or an architecture whose maps do not chain
    /// (which [`TrainConfig::validate`] refuses).
    pub fn conv_maps(&self) -> Option<(Vec<ConvShape>, Vec<usize>)> {
        self.arch
            .as_ref()
            .and_then(|a| a.maps(self.padding, self.input_map).ok())
    }

    /// The convolutions of the model (none for an MLP).
    pub fn convs(&self) -> Vec<ConvShape> {
        self.conv_maps().map(|(c, _)| c).unwrap_or_default()
    }

    /// Rejects settings that cannot train, with the setting named: the
    /// first bad setting in the order of the checks below.
    pub fn validate(&self) -> Result<()> {
        self.validate_shape()?;
        self.validate_layers()?;
        self.validate_steps()?;
        self.validate_data()?;
        self.validate_optimizer()?;
        self.validate_kind()
    }

    /// The input shape and the class count.
    fn validate_shape(&self) -> Result<()> {
        let (h, w, c) = self.input_map;
        if h == 0 || w == 0 || c == 0 || h.saturating_mul(w).saturating_mul(c) > MAX_INPUTS {
            return bad(format!(
                "input shape {h}x{w}x{c} must have between 1 and {MAX_INPUTS} values"
            ));
        }
        if !(2..=MAX_CLASSES).contains(&self.classes) {
            return bad(format!(
                "{} classes: a classifier needs 2 to {MAX_CLASSES}",
                self.classes
            ));
        }
        Ok(())
    }

    /// The architecture or hidden widths, and what each demands.
    fn validate_layers(&self) -> Result<()> {
        match &self.arch {
            Some(arch) => {
                arch.maps(self.padding, self.input_map)?;
                match arch.output_width() {
                    Some(n) if n == self.classes => {}
                    Some(n) => {
                        return bad(format!(
                            "architecture '{arch}' ends in d{n}; the last layer is the output, d{} for {} classes",
                            self.classes, self.classes
                        ))
                    }
                    None => return bad(format!("architecture '{arch}' has no final dense layer")),
                }
                if !self.hidden.is_empty() {
                    return bad("--arch gives the dense layers too; leave out --hidden".into());
                }
                if self.kind != ModelKind::Binary {
                    return bad("--arch is for binary models".into());
                }
                if !self.batch_norm {
                    return bad(
                        "convolutional models need batch norm (give --bn, or start from --recipe cnn-small)"
                            .into(),
                    );
                }
            }
            None => {
                if self.padding != Padding::Same {
                    return bad("--padding needs --arch (only convolutions pad)".into());
                }
            }
        }
        if let Some(i) = self.hidden.iter().position(|&w| w == 0) {
            return bad(format!("hidden layer {} has width 0", i + 1));
        }
        if self.hidden.iter().any(|&w| w > 1 << 16) {
            return bad("hidden widths are limited to 65536".into());
        }
        Ok(())
    }

    /// The learning rate, epochs, batch, clipping, initialisation, output
    /// scale and dropout.
    fn validate_steps(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(format!(
                "learning rate {} must be a positive finite number",
                self.lr
            ));
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("batch size must be at least 1".into());
        }
        if !(self.ste_clip.is_finite() && self.ste_clip > 0.0) {
            return bad(format!(
                "STE clip {} must be a positive finite number",
                self.ste_clip
            ));
        }
        if let Some(f) = self.dynamic_clip {
            if !(f.is_finite() && f > 0.0) {
                return bad(format!(
                    "dynamic clip factor {f} must be a positive finite number"
                ));
            }
        }
        if let Some(s) = self.init_std {
            if !(s.is_finite() && s > 0.0) {
                return bad(format!(
                    "initial weight scale {s} must be a positive finite number"
                ));
            }
        }
        if !(self.output_scale.is_finite() && self.output_scale > 0.0) {
            return bad(format!(
                "output scale {} must be a positive finite number",
                self.output_scale
            ));
        }
        if !(0.0..0.95).contains(&self.dropout) {
            return bad(format!("dropout {} must be in [0, 0.95)", self.dropout));
        }
        Ok(())
    }

    /// Augmentation, the validation split, the data limits and batch norm's
    /// statistics.
    fn validate_data(&self) -> Result<()> {
        if self.shift > 4 {
            return bad(format!("shift {} is larger than 4 pixels", self.shift));
        }
        if !(0.0..=45.0).contains(&self.rotate) {
            return bad(format!(
                "rotation {} must be in [0, 45] degrees",
                self.rotate
            ));
        }
        if !(0.0..=0.5).contains(&self.scale) {
            return bad(format!("scale {} must be in [0, 0.5]", self.scale));
        }
        if self.validation == 0 {
            return bad("the validation split must hold at least one image".into());
        }
        if self.limit_train == Some(0) || self.limit_test == Some(0) {
            return bad("--limit-train and --limit-test must be at least 1".into());
        }
        if let Some(limit) = self.limit_train.filter(|&l| l <= self.validation) {
            return bad(split_message(self.validation, limit));
        }
        if !((0.0..1.0).contains(&self.bn_momentum) && self.bn_eps.is_finite() && self.bn_eps > 0.0)
        {
            return bad("batch-norm momentum must be in [0, 1) and eps positive".into());
        }
        Ok(())
    }

    /// The optimizer's and the schedule's parameters.
    fn validate_optimizer(&self) -> Result<()> {
        match self.optimizer {
            Optimizer::Sgd => {}
            Optimizer::Momentum { momentum } => {
                if !(0.0..1.0).contains(&momentum) {
                    return bad(format!("momentum {momentum} must be in [0, 1)"));
                }
            }
            Optimizer::Adam { beta1, beta2, eps } => {
                if !((0.0..1.0).contains(&beta1)
                    && (0.0..1.0).contains(&beta2)
                    && eps.is_finite()
                    && eps > 0.0)
                {
                    return bad("Adam needs betas in [0, 1) and a positive eps".into());
                }
            }
        }
        match self.schedule {
            Schedule::Constant => {}
            Schedule::Step { every, gamma } => {
                if every == 0 || !(gamma.is_finite() && gamma > 0.0) {
                    return bad("a step schedule needs every ≥ 1 and a positive factor".into());
                }
            }
            Schedule::Cosine { final_lr } | Schedule::Exponential { final_lr } => {
                if !(final_lr.is_finite() && final_lr > 0.0 && final_lr <= self.lr) {
                    return bad(format!(
                        "final learning rate {final_lr} must be a positive finite number, at most {}",
                        self.lr
                    ));
                }
            }
        }
        Ok(())
    }

    /// What only one kind of model (binary or FP32) has.
    fn validate_kind(&self) -> Result<()> {
        match self.kind {
            ModelKind::Binary => {}
            ModelKind::Fp32 => {
                if self.input != Input::Binary {
                    return bad(
                        "u8 input is only for binary models (the FP32 model takes normalized pixels)"
                            .into(),
                    );
                }
                if self.batch_norm {
                    return bad("batch norm is only for binary models".into());
                }
                if self.loss == Loss::SignMse {
                    return bad("the sign-MSE loss is only for binary models".into());
                }
            }
        }
        if self.batch_norm && self.hidden.is_empty() && self.arch.is_none() {
            return bad("batch norm needs at least one hidden layer".into());
        }
        Ok(())
    }

    /// Checks the configuration against the number of training images.
    pub fn validate_for(&self, train_images: usize) -> Result<()> {
        self.validate()?;
        if self.validation >= train_images {
            return Err(TrainError::Config(split_message(
                self.validation,
                train_images,
            )));
        }
        let train = train_images - self.validation;
        if self.batch > train {
            return Err(TrainError::Config(format!(
                "batch size {} is larger than the {train} training images",
                self.batch
            )));
        }
        Ok(())
    }

    /// A one-line, deterministic summary of the knobs (stored in model
    /// files, so it must not depend on paths, times or thread counts).
    pub fn summary(&self) -> String {
        let shape: Vec<String> = match &self.arch {
            Some(arch) => vec![format!("{arch} padding {}", self.padding)],
            None => self.shape().iter().map(|w| w.to_string()).collect(),
        };
        let mut s = format!(
            "recipe {}; {} {}; loss {}; optimizer {}; lr {} schedule {}; epochs {}; batch {}; ste clip {}",
            self.recipe,
            match self.kind {
                ModelKind::Binary => "binary",
                ModelKind::Fp32 => "fp32",
            },
            shape.join("-"),
            self.loss,
            self.optimizer,
            self.lr,
            self.schedule,
            self.epochs,
            self.batch,
            self.ste_clip
        );
        if let Some(f) = self.dynamic_clip {
            s += &format!(" (dynamic x{f})");
        }
        if self.input == Input::U8 {
            s += "; input u8";
        }
        if self.batch_norm {
            s += "; batch norm";
        }
        if self.dropout > 0.0 {
            s += &format!("; dropout {}", self.dropout);
        }
        if self.shift > 0 {
            s += &format!("; shift {}", self.shift);
        }
        if self.warps() {
            s += &format!("; rotate {} scale {}", self.rotate, self.scale);
        }
        s += &format!("; rule {}; seed {}", self.rule.to_core(), self.seed);
        if let Some(n) = self.limit_train {
            s += &format!("; first {n} training images");
        }
        if let Some(n) = self.limit_test {
            s += &format!("; first {n} test images");
        }
        s
    }
}

/// Why a validation split of `validation` images cannot come out of
/// `train_images`, and what to change.
fn split_message(validation: usize, train_images: usize) -> String {
    format!(
        "the validation split of {validation} images leaves nothing to train on among \
         {train_images} training images; give --validation below {train_images} \
         (or a larger --limit-train)"
    )
}

fn unknown(what: &str, got: &str, known: &str) -> TrainError {
    TrainError::Config(format!("unknown {what} '{got}' (known: {known})"))
}

impl FromStr for Loss {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "sign-mse" => Loss::SignMse,
            "mse" => Loss::Mse,
            "hinge" | "squared-hinge" => Loss::SquaredHinge,
            "ce" | "cross-entropy" => Loss::CrossEntropy,
            other => {
                return Err(unknown(
                    "loss",
                    other,
                    "sign-mse, mse, squared-hinge, cross-entropy",
                ))
            }
        })
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::SignMse => "sign-mse",
            Loss::Mse => "mse",
            Loss::SquaredHinge => "squared-hinge",
            Loss::CrossEntropy => "cross-entropy",
        })
    }
}

impl Optimizer {
    /// Adam with the usual defaults: β₁ 0.9, β₂ 0.999, ε 1e-8.
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
}

/// `sgd`, `momentum` (0.9) or `momentum:M`, `adam`. A colon with nothing
/// after it (`momentum:`, `sgd:`) is refused, not read as the default.
impl FromStr for Optimizer {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        let (name, arg) = match s.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (s, None),
        };
        match (name, arg) {
            ("sgd", None) => Ok(Optimizer::Sgd),
            ("momentum", None) => Ok(Optimizer::Momentum { momentum: 0.9 }),
            ("momentum", Some(m)) if !m.is_empty() => Ok(Optimizer::Momentum {
                momentum: parse_num(m, "momentum")?,
            }),
            ("adam", None) => Ok(Optimizer::ADAM),
            _ => Err(unknown("optimizer", s, "sgd, momentum[:M], adam")),
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Optimizer::Sgd => f.write_str("sgd"),
            Optimizer::Momentum { momentum } => write!(f, "momentum:{momentum}"),
            Optimizer::Adam { .. } => f.write_str("adam"),
        }
    }
}

/// `constant`, `step:EVERY:FACTOR`, `cosine:FINAL`, `exp:FINAL`.
impl FromStr for Schedule {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["constant"] => Ok(Schedule::Constant),
            ["step", every, gamma] => Ok(Schedule::Step {
                every: every.parse().map_err(|_| {
                    TrainError::Config(format!("step schedule: '{every}' is not an epoch count"))
                })?,
                gamma: parse_num(gamma, "step factor")?,
            }),
            ["cosine", fin] => Ok(Schedule::Cosine {
                final_lr: parse_num(fin, "final learning rate")?,
            }),
            ["exp", fin] => Ok(Schedule::Exponential {
                final_lr: parse_num(fin, "final learning rate")?,
            }),
            _ => Err(unknown(
                "schedule",
                s,
                "constant, step:EVERY:FACTOR, cosine:FINAL_LR, exp:FINAL_LR",
            )),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Constant => f.write_str("constant"),
            Schedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
            Schedule::Cosine { final_lr } => write!(f, "cosine:{final_lr}"),
            Schedule::Exponential { final_lr } => write!(f, "exp:{final_lr}"),
        }
    }
}

impl Schedule {
    /// The learning rate of `epoch` (0-based) of `epochs`.
    pub fn lr(&self, lr0: f32, epoch: usize, epochs: usize) -> f32 {
        let progress = if epochs > 1 {
            epoch as f64 / (epochs - 1) as f64
        } else {
            0.0
        };
        let lr0f = f64::from(lr0);
        let v = match *self {
            Schedule::Constant => lr0f,
            Schedule::Step { every, gamma } => lr0f * f64::from(gamma).powi((epoch / every) as i32),
            Schedule::Cosine { final_lr } => {
                let fin = f64::from(final_lr);
                fin + 0.5 * (lr0f - fin) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::Exponential { final_lr } => {
                lr0f * (f64::from(final_lr) / lr0f).powf(progress)
            }
        };
        v as f32
    }
}

/// `binary` or `u8`.
impl FromStr for Input {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "binary" => Ok(Input::Binary),
            "u8" => Ok(Input::U8),
            other => Err(unknown("input encoding", other, "binary, u8")),
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Input::Binary => "binary",
            Input::U8 => "u8",
        })
    }
}

impl FromStr for Rule {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "scores" => Ok(Rule::Scores),
            "seed" => Ok(Rule::Seed),
            other => Err(unknown("decision rule", other, "seed, scores")),
        }
    }
}

fn parse_num(s: &str, what: &str) -> Result<f32> {
    s.parse()
        .map_err(|_| TrainError::Config(format!("{what}: '{s}' is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The output width is the data's class count: an architecture that
    /// ends elsewhere, a class count out of range or an empty input shape
    /// is refused with the numbers named.
    #[test]
    fn shape_and_classes_come_from_the_data() {
        let mut c = crate::recipe("cnn-small").unwrap();
        c.arch = Some("c3x32,d256".parse().unwrap());
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("ends in d256") && e.contains("d10 for 10 classes"),
            "{e}"
        );
        let c = c.for_data((8, 8, 1), 256);
        c.validate().unwrap();
        assert_eq!(c.shape(), vec![8 * 8 * 32, 256]);
        let mlp = crate::recipe("seed").unwrap().for_data((1, 30, 1), 2);
        assert_eq!(mlp.shape(), vec![30, 512, 2]);
        let e = mlp
            .clone()
            .for_data((1, 30, 1), 1)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1 classes: a classifier needs 2 to 65535"),
            "{e}"
        );
        let e = mlp
            .for_data((0, 30, 1), 2)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("input shape 0x30x1"), "{e}");
    }

    #[test]
    fn schedules_start_and_end_where_asked() {
        let c = Schedule::Cosine { final_lr: 1e-4 };
        assert!((c.lr(1e-2, 0, 10) - 1e-2).abs() < 1e-9);
        assert!((c.lr(1e-2, 9, 10) - 1e-4).abs() < 1e-9);
        let e = Schedule::Exponential { final_lr: 1e-4 };
        assert!((e.lr(1e-2, 9, 10) - 1e-4).abs() < 1e-9);
        assert!((e.lr(1e-2, 4, 9) - 1e-3).abs() < 1e-8);
        let s = Schedule::Step {
            every: 3,
            gamma: 0.5,
        };
        assert_eq!(s.lr(1.0, 2, 10), 1.0);
        assert_eq!(s.lr(1.0, 3, 10), 0.5);
        assert_eq!(s.lr(1.0, 6, 10), 0.25);
    }

    #[test]
    fn names_round_trip() {
        for s in ["constant", "step:5:0.5", "cosine:0.0001", "exp:0.001"] {
            assert_eq!(s.parse::<Schedule>().unwrap().to_string(), s);
        }
        for s in ["sgd", "momentum:0.8", "adam"] {
            assert_eq!(s.parse::<Optimizer>().unwrap().to_string(), s);
        }
        for s in ["sign-mse", "mse", "squared-hinge", "cross-entropy"] {
            assert_eq!(s.parse::<Loss>().unwrap().to_string(), s);
        }
        for s in ["binary", "u8"] {
            assert_eq!(s.parse::<Input>().unwrap().to_string(), s);
        }
        let message = |e: TrainError| e.to_string();
        assert_eq!(
            message("u16".parse::<Input>().unwrap_err()),
            "invalid configuration: unknown input encoding 'u16' (known: binary, u8)"
        );
        assert_eq!(
            message("linear".parse::<Schedule>().unwrap_err()),
            "invalid configuration: unknown schedule 'linear' (known: constant, step:EVERY:FACTOR, cosine:FINAL_LR, exp:FINAL_LR)"
        );
        assert_eq!(
            message("rmsprop".parse::<Optimizer>().unwrap_err()),
            "invalid configuration: unknown optimizer 'rmsprop' (known: sgd, momentum[:M], adam)"
        );
        // A trailing colon is not the default.
        for s in ["momentum:", "sgd:", "adam:"] {
            let e = message(s.parse::<Optimizer>().unwrap_err());
            assert!(e.contains(&format!("'{s}'")), "{s}: {e}");
        }
        assert_eq!(
            "momentum".parse::<Optimizer>().unwrap(),
            Optimizer::Momentum { momentum: 0.9 }
        );
    }
}
