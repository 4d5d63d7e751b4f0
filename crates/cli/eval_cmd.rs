//! `bnn eval`: accuracy on the 10,000 MNIST test images (or a `.npz` of
//! the user's: its test set), per class and as a
//! confusion matrix, with the speed it ran at; `--verify` re-checks every
//! score against the float reference and the scalar kernel.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bnn_core::{Kernel, Predictions, Reference, RunOptions};
use ndarray::ArrayView2;

use crate::args::{DataArgs, RunArgs};
use crate::output::{percent, thousands};

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A .bnn model file.
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub source: crate::dataset::SourceArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Also run the float reference and the scalar kernel and compare scores.
    #[arg(long)]
    pub verify: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let mut file = crate::args::load_model(&args.model)?;
    let options = args.run.resolve(&mut file.model)?;
    let threads = args.run.threads()?;
    let model = &file.model;
    let takes = crate::inputs::Takes::of(model);
    // A file, or a directory without MNIST's files, is the user's data:
    // its test split, or all of it.
    let (pixels, labels, count) = if bnn_data::labelled::is_users(&args.data.data) {
        let (pixels, labels) =
            crate::dataset::for_model(&args.data.data, &args.source, model, &args.model)?;
        let count = labels.len();
        (pixels, labels, count)
    } else {
        if let Some(flag) = args.source.first_given() {
            return Err(crate::UsageError(format!(
                "{flag} is for your own data (--data FILE or a directory of it), not MNIST"
            ))
            .into());
        }
        crate::mnist_dir::ensure_test(&args.data.data, args.data.no_fetch)?;
        let (images, labels) =
            bnn_data::mnist::load_test(&args.data.data).context("cannot load MNIST test set")?;
        let given = crate::inputs::Given::Image(images.rows, images.cols, 1);
        let test_images =
            bnn_data::mnist::find_file(&args.data.data, bnn_data::mnist::TEST_IMAGES)?;
        crate::inputs::check_fits(&test_images, "holds images of", given, &takes)
            .with_context(|| format!("{}: does not fit these images", args.model.display()))?;
        let labels: Vec<u16> = labels.labels.into_iter().map(u16::from).collect();
        let classes = model.num_classes();
        if let Some(i) = labels.iter().position(|&l| usize::from(l) >= classes) {
            return Err(crate::UsageError(format!(
                "{}: label {i} is class {}, which the model's {classes} classes lack",
                args.data.data.display(),
                labels[i]
            ))
            .into());
        }
        (images.pixels, labels, images.count)
    };
    let classes = model.num_classes();
    // Every run, the timed ones included, on the one pool.
    let (predictions, seconds) = threads.install(|| -> anyhow::Result<_> {
        let predictions = model.predict_batch_with(&pixels, options)?;
        let seconds = best_time(3, || {
            Ok(model.predict_batch_with(&pixels, options).map(drop)?)
        })?;
        Ok((predictions, seconds))
    })?;
    let report = Report::new(&predictions.classes, &labels, classes);

    let mut out = std::io::stdout().lock();
    let shape: Vec<String> = model.shape().iter().map(|w| w.to_string()).collect();
    let kernel = options.kernel.unwrap_or_else(bnn_core::kernel::active);
    writeln!(
        out,
        "model      {} ({}, rule {}, kernel {}, {} threads)",
        args.model.display(),
        shape.join("-"),
        model.rule(),
        kernel,
        threads.count()
    )?;
    writeln!(
        out,
        "accuracy   {} ({} / {})",
        percent(report.correct, report.total),
        report.correct,
        report.total
    )?;
    writeln!(
        out,
        "speed      {} images/s ({} images in {:.2} ms, best of 3)",
        thousands((count as f64 / seconds) as u64),
        count,
        seconds * 1e3
    )?;
    report.print(&mut out, model.class_names())?;
    if args.verify {
        verify(model, &pixels, count, &predictions, &mut out)?;
    }
    Ok(())
}

/// The fastest of `n` runs, in seconds.
pub fn best_time(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..n {
        let start = Instant::now();
        f()?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Agreement of the run's scores with the float reference and the scalar
/// kernel, score for score (bit-identical f32).
fn verify(
    model: &bnn_core::Model,
    pixels: &[u8],
    count: usize,
    predictions: &Predictions,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reference = Reference::new(model);
    let view = ArrayView2::from_shape((count, model.input_len()), pixels)?;
    let ref_scores = reference.scores(view);
    let c = model.num_classes();
    let ref_scores = ref_scores
        .as_slice()
        .context("reference scores are contiguous")?;
    let same = |a: &[f32], b: &[f32]| {
        a.chunks_exact(c)
            .zip(b.chunks_exact(c))
            .filter(|(x, y)| {
                x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p.to_bits() == q.to_bits())
            })
            .count()
    };
    let agree_ref = same(&predictions.scores, ref_scores);
    let scalar = model.predict_batch_with(
        pixels,
        RunOptions {
            kernel: Some(Kernel::Scalar),
            threads: None,
        },
    )?;
    let agree_scalar = same(&predictions.scores, &scalar.scores);
    writeln!(
        out,
        "verify     float reference: {agree_ref} / {count} identical scores"
    )?;
    writeln!(
        out,
        "verify     scalar kernel:   {agree_scalar} / {count} identical scores"
    )?;
    anyhow::ensure!(
        agree_ref == count && agree_scalar == count,
        "verification failed: {} images differ from the reference, {} from the scalar kernel",
        count - agree_ref,
        count - agree_scalar
    );
    Ok(())
}

/// Accuracy overall, per class, and the confusion matrix.
pub struct Report {
    pub correct: usize,
    pub total: usize,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

impl Report {
    pub fn new(predicted: &[usize], labels: &[u16], classes: usize) -> Self {
        let n = classes.max(labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0));
        let mut confusion = vec![vec![0usize; n]; n];
        for (&p, &l) in predicted.iter().zip(labels) {
            confusion[l as usize][p] += 1;
        }
        let correct = (0..n).map(|i| confusion[i][i]).sum();
        Report {
            correct,
            total: labels.len(),
            confusion,
        }
    }

    /// Prints accuracy per class and the confusion matrix, each row named
    /// by the class's index and, when the model has them, its name (the
    /// matrix's columns are indices: the rows say which class each is).
    fn print(&self, out: &mut impl Write, names: Option<&[String]>) -> std::io::Result<()> {
        // Names are checked free of control characters when loaded; only
        // bidi controls could still reorder a terminal line.
        let name = |i: usize| -> String {
            names
                .and_then(|n| n.get(i))
                .map(|n| bnn_io::text::printable(n).into_owned())
                .unwrap_or_default()
        };
        let width = (0..self.confusion.len())
            .map(|i| name(i).chars().count())
            .max()
            .unwrap_or(0);
        let label = |i: usize| {
            if names.is_some() {
                format!("{i:>2} {:<width$}", name(i))
            } else {
                format!("{i:>2}")
            }
        };
        writeln!(out, "per class")?;
        for (i, row) in self.confusion.iter().enumerate() {
            let total: usize = row.iter().sum();
            writeln!(
                out,
                "  {}  {:>8}  ({} / {total})",
                label(i),
                percent(row[i], total),
                row[i]
            )?;
        }
        writeln!(
            out,
            "confusion matrix (rows: true class, columns: predicted class)"
        )?;
        write!(out, "  {}", " ".repeat(label(0).chars().count()))?;
        for j in 0..self.confusion.len() {
            write!(out, "{j:>6}")?;
        }
        writeln!(out)?;
        for (i, row) in self.confusion.iter().enumerate() {
            write!(out, "  {}", label(i))?;
            for v in row {
                write!(out, "{v:>6}")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}
