//! How much memory a training run needs, checked against what the machine
//! has before anything is allocated.
//!
//! Every width the grammar accepts can be allocated on its own, but not
//! all of them together: `--hidden 65536,65536` asks for 4.3 G latent
//! weights, 17 GB for the weights alone, and an allocation that fails
//! aborts the process instead of returning an error. The estimate below
//! counts what a run holds at its peak, so that a configuration that cannot
//! fit is refused with a message, before the data is loaded.

use crate::arch::ConvShape;
use crate::config::{Optimizer, TrainConfig, INPUTS};
use crate::error::{Result, TrainError};

/// Bytes of one latent value (f32).
const F32: u64 = 4;

/// Float arrays a training step keeps per value of a layer's output, per
/// image: pre-activations, their batch-norm normalisation and output,
/// activations, dropout mask, and the gradients of each on the way back.
const PER_ACTIVATION: u64 = 8;

/// The MNIST training and test images as loaded (bytes).
const DATASET: u64 = 70_000 * INPUTS as u64;

/// What the machine is assumed to have where it cannot be read
/// (`/proc/meminfo` is Linux's).
pub const FALLBACK_AVAILABLE: u64 = 8 << 30;

/// The parts of an estimate, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Estimate {
    /// Latent weights and biases (every dense and convolution weight).
    pub parameters: u64,
    /// Copies of the parameters held at once: the network, its gradients,
    /// the optimiser's moments, the best epoch's network, and a checkpoint
    /// being written (network, best and moments again).
    pub copies: u64,
    /// Activations and their gradients for one batch, im2col buffers of
    /// the convolutions included.
    pub activations: u64,
    /// The images.
    pub data: u64,
}

impl Estimate {
    /// Total bytes; saturates rather than overflows for absurd widths.
    pub fn total(&self) -> u64 {
        self.parameters
            .saturating_mul(F32)
            .saturating_mul(self.copies)
            .saturating_add(self.activations)
            .saturating_add(self.data)
    }
}

/// The memory `config` needs at its peak (see [`Estimate`]).
pub fn estimate(config: &TrainConfig) -> Estimate {
    let moments = match config.optimizer {
        Optimizer::Sgd => 0,
        Optimizer::Momentum { .. } => 1,
        Optimizer::Adam { .. } => 2,
    };
    // Network, gradients, moments, best network; then a checkpoint's bytes
    // of network, best network and moments.
    let copies = (3 + moments) + (2 + moments);
    let convs = config.convs();
    let dense = config.shape();
    let mut parameters: u64 = 0;
    // Values per image that each step holds in float arrays.
    let mut per_image: u64 = config.inputs() as u64;
    for c in &convs {
        parameters = parameters.saturating_add(conv_weights(c));
        per_image = per_image
            .saturating_add(2u64.saturating_mul(im2col(c)))
            .saturating_add(PER_ACTIVATION.saturating_mul((c.out_h * c.out_w * c.out_c) as u64));
    }
    for pair in dense.windows(2) {
        let (inputs, outputs) = (pair[0] as u64, pair[1] as u64);
        parameters = parameters
            .saturating_add(inputs.saturating_mul(outputs))
            .saturating_add(outputs);
        per_image = per_image.saturating_add(PER_ACTIVATION.saturating_mul(outputs));
    }
    Estimate {
        parameters,
        copies,
        activations: per_image
            .saturating_mul(config.batch as u64)
            .saturating_mul(F32),
        data: DATASET,
    }
}

fn conv_weights(c: &ConvShape) -> u64 {
    (c.out_c as u64).saturating_mul(c.patch() as u64)
}

/// Values of one image's im2col matrix (forward, and again for its gradient).
fn im2col(c: &ConvShape) -> u64 {
    ((c.out_h * c.out_w) as u64).saturating_mul(c.patch() as u64)
}

/// Memory the system can give a new process now: `MemAvailable` from
/// `/proc/meminfo`, lowered to a cgroup's limit (`memory.max`, as in a
/// container) when there is one; [`FALLBACK_AVAILABLE`] where neither can
/// be read.
pub fn available() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (meminfo, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (Some(m), None) => m,
        (None, Some(c)) => c.min(FALLBACK_AVAILABLE),
        (None, None) => FALLBACK_AVAILABLE,
    }
}

/// The `MemAvailable:` line of `/proc/meminfo`, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// `bytes` in GB with one decimal, for messages.
fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Refuses `config` when its [`estimate`] exceeds `available` bytes, with
/// the sizes and what to change.
pub fn check(config: &TrainConfig, available: u64) -> Result<()> {
    let e = estimate(config);
    if e.total() <= available {
        return Ok(());
    }
    Err(TrainError::Config(format!(
        "training needs about {} of memory ({} weights held {} times over: weights, gradients, \
         optimizer state, best epoch, checkpoint; {} of activations for a batch of {}) but {} \
         is available: use narrower layers or a smaller --batch",
        gb(e.total()),
        count(e.parameters),
        e.copies,
        gb(e.activations),
        config.batch,
        gb(available)
    )))
}

/// "4.3 G", "407 k": a weight count for messages.
fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.0} k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} M", n as f64 / 1e6),
        _ => format!("{:.1} G", n as f64 / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hidden: &[usize], batch: usize) -> TrainConfig {
        let mut c = crate::recipe("seed").unwrap();
        c.hidden = hidden.to_vec();
        c.batch = batch;
        c.optimizer = Optimizer::Adam {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        c
    }

    #[test]
    fn counts_weights_copies_and_activations() {
        let e = estimate(&config(&[512], 100));
        assert_eq!(e.parameters, 784 * 512 + 512 + 512 * 10 + 10);
        assert_eq!(e.copies, 9);
        assert_eq!(e.activations, (784 + 8 * (512 + 10)) * 100 * 4);
        assert_eq!(
            e.total(),
            e.parameters * 4 * 9 + e.activations + 70_000 * 784
        );
    }

    #[test]
    fn wide_layers_are_refused_with_the_sizes() {
        // 4.3 G weights: far beyond 64 GB, yet each width is within limits.
        let wide = config(&[65536, 65536], 100);
        wide.validate().unwrap();
        let msg = check(&wide, 64 << 30).unwrap_err().to_string();
        assert!(
            msg.contains("needs about 157.0 GB") && msg.contains("4.3 G weights"),
            "{msg}"
        );
        assert!(msg.contains("68.7 GB is available"), "{msg}");
        // With the CLI's "bnn: error: " in front, still one short line.
        assert!(msg.len() <= 280, "{} chars: {msg}", msg.len());
        // The shipped sizes fit in a few hundred megabytes.
        check(&config(&[512], 100), 300 << 20).unwrap();
        // A batch of every image through a wide convolution does not.
        let mut cnn = crate::recipe("cnn-small").unwrap();
        cnn.batch = 60_000;
        let msg = check(&cnn, 64 << 30).unwrap_err().to_string();
        assert!(msg.contains("a batch of 60000"), "{msg}");
    }

    #[test]
    fn reads_mem_available() {
        let text = "MemTotal:       24000000 kB\nMemFree:  1 kB\nMemAvailable:   22528000 kB\n";
        assert_eq!(mem_available(text), Some(22_528_000 * 1024));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert!(available() > 0);
    }
}
