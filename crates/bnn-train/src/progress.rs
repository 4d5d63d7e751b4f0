//! Training progress: the trait the loop reports to, and a silent receiver
//! for tests and scripts. Showing progress (bars, log lines) is the
//! program's business, not the trainer's.

use crate::metrics::EpochMetrics;

/// What the run will do, given once at the start.
#[derive(Clone, Debug)]
pub struct RunInfo {
    /// The configuration's one-line summary.
    pub summary: String,
    /// The first epoch this call runs, 1-based (after a resume, past 1).
    pub first_epoch: usize,
    /// Epochs configured in all.
    pub epochs: usize,
    /// Gradient steps in each epoch.
    pub batches_per_epoch: usize,
}

/// Receives progress from the training loop.
pub trait Progress {
    /// Before the first batch.
    fn start(&mut self, info: &RunInfo);
    /// After each batch: running mean loss and training accuracy of the epoch.
    fn batch(&mut self, epoch: usize, batch: usize, loss: f64, accuracy: f64);
    /// After each epoch's validation, with its metrics.
    fn epoch_end(&mut self, metrics: &EpochMetrics);
    /// After the final evaluation: a one-line result (best epoch and its
    /// accuracies).
    fn finish(&mut self, message: &str);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _: &RunInfo) {}
    fn batch(&mut self, _: usize, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, _: &EpochMetrics) {}
    fn finish(&mut self, _: &str) {}
}
