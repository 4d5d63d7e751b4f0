//! What a finished run leaves beside its model: the model itself, a JSON
//! report (command, seed, epochs, accuracies, time, file size and every
//! epoch's metrics) and the training-curve chart, which the caller draws
//! from the outcome's history. All written atomically.
//!
//! A model written through a special file (`/dev/null`, a FIFO,
//! `/dev/stdout`) has no "beside": its report and chart would be new files
//! named `/dev/null.json` and `/dev/null.svg`, so they are written only
//! where the caller names them.
//!
//! A run may take hours, so its paths are checked before it starts
//! ([`OutputPaths::check`]): no two outputs may be one file (`-o m.json`
//! would have the report overwrite the model), none may be an input, and
//! each must be writable.

use std::path::{Path, PathBuf};

use bnn_io::target::{check_not_input, check_outputs, is_written_through, PathProblem};

use serde::Serialize;

use crate::error::{io_at, Result, TrainError};
use crate::metrics::EpochMetrics;
use crate::train::{TrainOutcome, Trained};

/// The JSON written beside a model.
#[derive(Serialize)]
pub struct Report<'a> {
    /// The model's file name, without its directory.
    pub model: String,
    /// The command line that ran the training, as the caller gives it.
    pub command: &'a str,
    /// The recipe the configuration started from.
    pub recipe: &'a str,
    /// The configuration's one-line summary (as in the model file).
    pub configuration: String,
    /// The `--arch` layers and padding of a convolutional model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Dense widths (for a convolutional model, from the flattened features).
    pub shape: Vec<usize>,
    /// The run's random seed.
    pub seed: u64,
    /// Epochs configured.
    pub epochs: usize,
    /// The exported epoch, 1-based.
    pub best_epoch: usize,
    /// The exported model's validation accuracy, a fraction.
    pub validation_accuracy: f64,
    /// The exported model's test accuracy, a fraction.
    pub test_accuracy: f64,
    /// Test images on which the exported model and the trainer's forward
    /// pass agree, out of `test_images`.
    pub exported_agrees: usize,
    /// Images in the test split.
    pub test_images: usize,
    /// Wall time of every epoch, resumed runs included.
    pub training_seconds: f64,
    /// `training_seconds` over the epochs in the history.
    pub seconds_per_epoch: f64,
    /// Size of the model as written.
    pub file_bytes: u64,
    /// Every epoch's metrics, in order.
    pub history: &'a [EpochMetrics],
}

/// What [`OutputPaths::write`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// Where the model went.
    pub model: PathBuf,
    /// Where the JSON report went, if one was written.
    pub report: Option<PathBuf>,
    /// Where the SVG chart went, if one was written.
    pub chart: Option<PathBuf>,
    /// Bytes of the model, as written: for a regular file its size, for a
    /// device or pipe what went through it.
    pub file_bytes: u64,
}

/// Where a companion of `model` (report, chart, checkpoint) goes unless the
/// caller names it: beside the model, `weights/x.bnn` → `weights/x.<ext>`;
/// nowhere when the model is written through a special file, whose
/// directory (`/dev`) is no place for new files.
pub fn beside(model: &Path, ext: &str) -> Option<PathBuf> {
    (!is_written_through(model)).then(|| model.with_extension(ext))
}

/// Every file a training run writes.
#[derive(Clone, Debug)]
pub struct OutputPaths {
    /// The model file (`.bnn`, or an FP32 model file); may be a device or
    /// pipe.
    pub model: PathBuf,
    /// The JSON report, unless there is none.
    pub report: Option<PathBuf>,
    /// The training-curve chart, unless there is none.
    pub chart: Option<PathBuf>,
    /// Written after every epoch, unless checkpoints are off.
    pub checkpoint: Option<PathBuf>,
}

impl OutputPaths {
    /// The report and chart go [`beside`] `model`.
    pub fn new(model: &Path, checkpoint: Option<PathBuf>) -> OutputPaths {
        OutputPaths {
            model: model.to_path_buf(),
            report: beside(model, "json"),
            chart: beside(model, "svg"),
            checkpoint,
        }
    }

    /// Each output with the role its error message gives it (saying where
    /// a report or chart beside the model goes, which `-o m.json` forgets).
    fn named(&self) -> Vec<(&'static str, &Path)> {
        let role = |path: &Path, ext, beside_model, named| {
            if beside(&self.model, ext).as_deref() == Some(path) {
                beside_model
            } else {
                named
            }
        };
        let mut all = vec![("model", self.model.as_path())];
        if let Some(r) = &self.report {
            all.push((role(r, "json", "report (MODEL.json)", "report"), r));
        }
        if let Some(c) = &self.chart {
            all.push((role(c, "svg", "chart (MODEL.svg)", "chart"), c));
        }
        all.extend(self.checkpoint.as_deref().map(|c| ("checkpoint", c)));
        all
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
        let named = self.named();
        let results = named.iter().filter(|(role, _)| *role != "checkpoint");
        for (_, output) in results {
            check_not_input(output, resume)?;
        }
        check_outputs(&named, inputs)
    }

    /// Writes the model (a `.bnn` with its description, or an FP32 model
    /// file), the report, and `chart` (an SVG document), each where it has
    /// a path.
    pub fn write(&self, outcome: &TrainOutcome, command: &str, chart: &str) -> Result<Written> {
        let model_path = &self.model;
        let file_bytes = match &outcome.model {
            Trained::Binary(model) => {
                let description = outcome.description();
                bnn_core::format::save(model, &description, model_path)?;
                bnn_core::format::to_bytes(model, &description).len() as u64
            }
            Trained::Fp32(model) => {
                model
                    .save(model_path)
                    .map_err(|e| TrainError::Other(e.to_string()))?;
                bnn_fp32::format::encoded_len(model) as u64
            }
        };
        if let Some(report_path) = &self.report {
            let json = report_json(outcome, model_path, command, file_bytes);
            bnn_io::write::write_file(report_path, &json).map_err(io_at(report_path))?;
        }
        if let Some(chart_path) = &self.chart {
            bnn_io::write::write_file(chart_path, chart.as_bytes()).map_err(io_at(chart_path))?;
        }
        Ok(Written {
            model: model_path.clone(),
            report: self.report.clone(),
            chart: self.chart.clone(),
            file_bytes,
        })
    }
}

fn report_json(
    outcome: &TrainOutcome,
    model_path: &Path,
    command: &str,
    file_bytes: u64,
) -> Vec<u8> {
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
    let mut json = serde_json::to_vec_pretty(&report).expect("report serialises");
    json.push(b'\n');
    json
}

/// Writes the model, and the report and `chart` [`beside`] it (see
/// [`OutputPaths::write`]).
pub fn write_outputs(
    outcome: &TrainOutcome,
    model_path: &Path,
    command: &str,
    chart: &str,
) -> Result<Written> {
    OutputPaths::new(model_path, None).write(outcome, command, chart)
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
        let err = paths.check(&[], None).unwrap_err();
        assert_eq!(err.path, at("m.svg"));
        assert!(
            err.to_string().ends_with(
                ": both the model and the chart (MODEL.svg) would be written to this file; give each its own path"
            ),
            "{err}"
        );
        // A checkpoint on the model's path (the default MODEL.ckpt included).
        let paths = OutputPaths::new(&at("m.bnn"), Some(at("m.bnn")));
        let err = paths.check(&[], None).unwrap_err();
        assert_eq!(err.path, at("m.bnn"));
        assert!(
            matches!(&err.problem, Problem::SameAs { first, second } if first == "model" && second == "checkpoint"),
            "{err}"
        );
        let model = at("m.ckpt");
        let paths = OutputPaths::new(&model, Some(model.with_extension("ckpt")));
        let err = paths.check(&[], None).unwrap_err();
        assert_eq!(err.path, model);
        assert!(
            err.to_string()
                .contains("both the model and the checkpoint would be written"),
            "{err}"
        );
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
        let err = paths.check(&[&data], None).unwrap_err();
        assert_eq!(err.path, data);
        assert!(
            matches!(err.problem, Problem::IsInput(ref p) if p == &data),
            "{err}"
        );
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

    #[test]
    fn a_model_written_through_a_special_file_has_no_companions() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.bnn");
        let paths = OutputPaths::new(&model, None);
        assert_eq!(paths.report, Some(dir.path().join("m.json")));
        assert_eq!(paths.chart, Some(dir.path().join("m.svg")));
        // An open descriptor of this process, as `-o /dev/stdout` is.
        let file = std::fs::File::create(dir.path().join("out")).unwrap();
        use std::os::fd::AsRawFd;
        let fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        let paths = OutputPaths::new(&fd, None);
        assert_eq!((paths.report, paths.chart), (None, None));
        assert_eq!(beside(&fd, "ckpt"), None);
        // Named explicitly, they are checked like any output.
        let paths = OutputPaths {
            report: Some(model.clone()),
            ..OutputPaths::new(&fd, None)
        };
        paths.check(&[], None).unwrap();
        let paths = OutputPaths {
            report: Some(model.clone()),
            ..OutputPaths::new(&model, None)
        };
        let err = paths.check(&[], None).unwrap_err();
        assert!(
            err.to_string()
                .contains("both the model and the report would"),
            "{err}"
        );
    }
}
