//! What a finished run leaves beside its model: the model itself, a JSON
//! report (command, seed, epochs, accuracies, time, file size and every
//! epoch's metrics) and the training-curve chart, which the caller draws
//! from the outcome's history. All written atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{io_at, Result, TrainError};
use crate::metrics::EpochMetrics;
use crate::train::{TrainOutcome, Trained};

/// The JSON written beside a model.
#[derive(Serialize)]
pub struct Report<'a> {
    pub model: String,
    pub command: &'a str,
    pub recipe: &'a str,
    pub configuration: String,
    pub shape: Vec<usize>,
    pub seed: u64,
    pub epochs: usize,
    pub best_epoch: usize,
    pub validation_accuracy: f64,
    pub test_accuracy: f64,
    /// Test images on which the exported model and the trainer's forward
    /// pass agree, out of `test_images`.
    pub exported_agrees: usize,
    pub test_images: usize,
    pub training_seconds: f64,
    pub seconds_per_epoch: f64,
    pub file_bytes: u64,
    pub history: &'a [EpochMetrics],
}

/// Paths written by [`write_outputs`].
#[derive(Clone, Debug)]
pub struct Written {
    pub model: PathBuf,
    pub report: PathBuf,
    pub chart: PathBuf,
    pub file_bytes: u64,
}

/// `weights/x.bnn` → `weights/x.<ext>`.
pub fn beside(model: &Path, ext: &str) -> PathBuf {
    model.with_extension(ext)
}

/// Writes the model (a `.bnn` with its description, or an FP32 model
/// file), the report, and `chart` (an SVG document) as the `.svg`.
pub fn write_outputs(
    outcome: &TrainOutcome,
    model_path: &Path,
    command: &str,
    chart: &str,
) -> Result<Written> {
    match &outcome.model {
        Trained::Binary(model) => {
            bnn_core::format::save(model, &outcome.description(), model_path)?;
        }
        Trained::Fp32(model) => model
            .save(model_path)
            .map_err(|e| TrainError::Other(e.to_string()))?,
    }
    let file_bytes = std::fs::metadata(model_path)
        .map_err(io_at(model_path))?
        .len();
    let report = Report {
        model: model_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        command,
        recipe: &outcome.config.recipe,
        configuration: outcome.config.summary(),
        shape: outcome.config.shape(),
        seed: outcome.config.seed,
        epochs: outcome.config.epochs,
        best_epoch: outcome.best_epoch,
        validation_accuracy: outcome.val_accuracy,
        test_accuracy: outcome.test_accuracy,
        exported_agrees: outcome.agreement.0,
        test_images: outcome.agreement.1,
        training_seconds: outcome.seconds,
        seconds_per_epoch: outcome.seconds_per_epoch(),
        file_bytes,
        history: &outcome.history,
    };
    let report_path = beside(model_path, "json");
    let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
    json.push(b'\n');
    bnn_io::write::write_file(&report_path, &json).map_err(io_at(&report_path))?;
    let chart_path = beside(model_path, "svg");
    bnn_io::write::write_file(&chart_path, chart.as_bytes()).map_err(io_at(&chart_path))?;
    Ok(Written {
        model: model_path.to_path_buf(),
        report: report_path,
        chart: chart_path,
        file_bytes,
    })
}
