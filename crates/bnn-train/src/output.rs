//! What a finished run leaves beside its model: the model itself, a JSON
//! report (command, seed, epochs, accuracies, time, file size and every
//! epoch's metrics) and the training-curve chart, which the caller draws
//! from the outcome's history. All written atomically.
//!
//! A run may take hours, so its paths are checked before it starts
//! ([`OutputPaths::check`]): no two outputs may be one file (`-o m.json`
//! would have the report overwrite the model), none may be an input, and
//! each must be writable.

use std::path::{Path, PathBuf};

use bnn_io::target::{check_distinct, check_not_input, check_writable, PathProblem};

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
    /// The `--arch` layers and padding of a convolutional model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Dense widths (for a convolutional model, from the flattened features).
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

/// Every file a training run writes.
#[derive(Clone, Debug)]
pub struct OutputPaths {
    pub model: PathBuf,
    pub report: PathBuf,
    pub chart: PathBuf,
    /// Written after every epoch, unless checkpoints are off.
    pub checkpoint: Option<PathBuf>,
}

impl OutputPaths {
    /// The report and chart go beside `model`.
    pub fn new(model: &Path, checkpoint: Option<PathBuf>) -> OutputPaths {
        OutputPaths {
            model: model.to_path_buf(),
            report: beside(model, "json"),
            chart: beside(model, "svg"),
            checkpoint,
        }
    }

    /// Each output with the role its error message gives it.
    fn named(&self) -> Vec<(&'static str, &Path)> {
        let mut all = vec![
            ("model", self.model.as_path()),
            ("report (MODEL.json)", &self.report),
            ("chart (MODEL.svg)", &self.chart),
        ];
        all.extend(self.checkpoint.as_deref().map(|c| ("checkpoint", c)));
        all
    }

    fn all(&self) -> Vec<&Path> {
        self.named().into_iter().map(|(_, path)| path).collect()
    }

    /// Refuses outputs that are one file, outputs that are one of `inputs`
    /// (the data files), finished results (model, report, chart) that are
    /// the checkpoint being resumed, and outputs that cannot be written.
    /// The checkpoint itself may be the one resumed: it is read whole before
    /// the run and replaced by later states of the same run.
    pub fn check(
        &self,
        inputs: &[&Path],
        resume: Option<&Path>,
    ) -> std::result::Result<(), PathProblem> {
        check_distinct(&self.named())?;
        for output in self.all() {
            check_not_input(output, inputs.iter().copied())?;
        }
        for output in [&self.model, &self.report, &self.chart] {
            check_not_input(output, resume)?;
        }
        self.all().into_iter().try_for_each(check_writable)
    }
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
        architecture: outcome
            .config
            .arch
            .as_ref()
            .map(|a| format!("{a} padding {}", outcome.config.padding)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_io::target::Problem;

    #[test]
    fn colliding_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        // `-o m.json`: the report would overwrite the model.
        let paths = OutputPaths::new(&at("m.json"), Some(at("m.ckpt")));
        let err = paths.check(&[], None).unwrap_err();
        assert_eq!(err.path, at("m.json"));
        assert!(
            err.to_string()
                .contains("both the model and the report (MODEL.json)"),
            "{err}"
        );
        assert!(err.is_usage());
        let paths = OutputPaths::new(&at("m.svg"), None);
        assert!(paths.check(&[], None).is_err());
        // A checkpoint on the model's path (the default MODEL.ckpt included).
        let paths = OutputPaths::new(&at("m.bnn"), Some(at("m.bnn")));
        assert!(paths.check(&[], None).is_err());
        let model = at("m.ckpt");
        let paths = OutputPaths::new(&model, Some(model.with_extension("ckpt")));
        assert!(paths.check(&[], None).is_err());
        // Distinct paths pass and leave nothing behind.
        let paths = OutputPaths::new(&at("m.bnn"), Some(at("m.ckpt")));
        paths.check(&[], None).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn inputs_and_the_resumed_checkpoint_are_refused_as_results() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        let data = at("train-images-idx3-ubyte");
        std::fs::write(&data, b"data").unwrap();
        let ckpt = at("run.ckpt");
        std::fs::write(&ckpt, b"state").unwrap();
        let paths = OutputPaths::new(&data, None);
        let err = paths.check(&[&data], None).unwrap_err();
        assert!(matches!(err.problem, Problem::IsInput(_)), "{err}");
        let paths = OutputPaths::new(&at("m.bnn"), Some(data.clone()));
        assert!(paths.check(&[&data], None).is_err());
        // The resumed checkpoint may be updated, but not replaced by a result.
        let paths = OutputPaths::new(&at("m.bnn"), Some(ckpt.clone()));
        paths.check(&[&data], Some(&ckpt)).unwrap();
        let paths = OutputPaths::new(&ckpt, Some(at("other.ckpt")));
        let err = paths.check(&[&data], Some(&ckpt)).unwrap_err();
        assert!(matches!(err.problem, Problem::IsInput(_)), "{err}");
    }

    #[test]
    fn unwritable_outputs_are_found_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let paths = OutputPaths::new(&dir.path().join("missing/m.bnn"), None);
        let err = paths.check(&[], None).unwrap_err();
        assert!(matches!(err.problem, Problem::NoDirectory(_)), "{err}");
        std::fs::create_dir(dir.path().join("m.json")).unwrap();
        let paths = OutputPaths::new(&dir.path().join("m.bnn"), None);
        let err = paths.check(&[], None).unwrap_err();
        assert!(matches!(err.problem, Problem::Directory), "{err}");
        assert_eq!(err.path, dir.path().join("m.json"));
    }
}
