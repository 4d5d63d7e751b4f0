//! How `bnn train` shows progress: bars on a terminal, a line per epoch
//! for logs, each a [`Progress`] receiver of the training loop. Every line
//! goes through [`note!`]: a stderr that fails never stops the training.

use std::time::Duration;

use bnn_train::metrics::EpochMetrics;
use bnn_train::progress::{Progress, RunInfo};
use indicatif::{ProgressBar, ProgressStyle};

use crate::output::note;

/// One line per epoch on stderr, for logs.
pub struct Log;

fn epoch_line(m: &EpochMetrics) -> String {
    format!(
        "epoch {:>3}  lr {:.2e}  loss {:.4}  train {:6.2}%  val {:6.2}%  {:5.1}s{}",
        m.epoch,
        m.lr,
        m.loss,
        100.0 * m.train_accuracy,
        100.0 * m.val_accuracy,
        m.seconds,
        if m.clips.is_empty() {
            String::new()
        } else {
            let c: Vec<String> = m.clips.iter().map(|c| format!("{c:.3}")).collect();
            format!("  clip {}", c.join("/"))
        }
    )
}

impl Progress for Log {
    fn start(&mut self, info: &RunInfo) {
        note!("training: {}", info.summary);
    }
    fn batch(&mut self, _: usize, _: usize, _: f64, _: f64) {}
    fn epoch_end(&mut self, m: &EpochMetrics) {
        note!("{}", epoch_line(m));
    }
    fn finish(&mut self, message: &str) {
        note!("{message}");
    }
}

/// A bar per epoch with the running loss and accuracy, and a kept line per
/// finished epoch.
#[derive(Default)]
pub struct Terminal {
    bar: Option<ProgressBar>,
    batches: usize,
    epochs: usize,
}

impl Progress for Terminal {
    fn start(&mut self, info: &RunInfo) {
        self.batches = info.batches_per_epoch;
        self.epochs = info.epochs;
        note!("training: {}", info.summary);
    }

    fn batch(&mut self, epoch: usize, batch: usize, loss: f64, accuracy: f64) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::new(self.batches as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        bar.set_prefix(format!("epoch {}/{}", epoch, self.epochs));
        bar.set_position(batch as u64);
        bar.set_message(format!("loss {loss:.4} train {:.2}%", 100.0 * accuracy));
    }

    fn epoch_end(&mut self, m: &EpochMetrics) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        note!("{}", epoch_line(m));
    }

    fn finish(&mut self, message: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        note!("{message}");
    }
}
