//! Per-epoch measurements, kept in checkpoints and written beside the model.

use serde::{Deserialize, Serialize};

/// One epoch's numbers. Accuracies are fractions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// The learning rate the schedule gave this epoch.
    pub lr: f32,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Accuracy of the training forward passes (batch statistics, before
    /// each update).
    pub train_accuracy: f64,
    /// Accuracy of the exported model on the validation split.
    pub val_accuracy: f64,
    /// STE clips used in this epoch, per site (empty for FP32).
    pub clips: Vec<f32>,
    /// Wall time of the epoch, evaluation included.
    pub seconds: f64,
}
