//! `bnn demo`: everything the project claims, on this machine, in one go:
//! MNIST fetched if needed, every shipped model evaluated and checked score
//! for score against the float reference, 1-bit benchmarked against FP32,
//! and the compression measured from the files.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use bnn_core::{Kernel, Reference, RunOptions};
use ndarray::ArrayView2;

use crate::args::DataArgs;
use crate::output::{percent, thousands};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Timed repetitions per engine in the benchmark.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 5,
        value_name = "N"
    )]
    pub repeat: usize,
}

/// Size of the seed project's published weight file, and the shape of the
/// network it holds.
const SEED_NPZ_BYTES: u64 = 3_257_390;
const SEED_SHAPE: [usize; 3] = [784, 512, 10];

/// Images in the single-image latency runs (fewer if the test set is).
const SINGLE_IMAGES: usize = 2000;

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.repeat == 0 {
        return Err(crate::UsageError("--repeat must be at least 1".into()).into());
    }
    crate::mnist_dir::ensure_test(&args.data.data, args.data.no_fetch)?;
    let (images, labels) =
        bnn_data::mnist::load_test(&args.data.data).context("cannot load MNIST test set")?;
    let models = crate::bench_cmd::shipped();
    anyhow::ensure!(
        !models.is_empty(),
        "no shipped models found in weights/ (run from the repository root)"
    );
    let mut out = std::io::stdout().lock();

    writeln!(
        out,
        "== 1. Shipped models on the {} MNIST test images, checked against the float reference",
        thousands(images.count as u64)
    )?;
    for path in models
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "bnn"))
    {
        let file = crate::args::load_model(path)?;
        let model = &file.model;
        let p = model.predict_batch_with(&images.pixels, RunOptions::default())?;
        let correct = p
            .classes
            .iter()
            .zip(&labels.labels)
            .filter(|(&c, &l)| c == l as usize)
            .count();
        let view = ArrayView2::from_shape((images.count, model.input_len()), &images.pixels[..])?;
        let reference = Reference::new(model).scores(view);
        let reference = reference
            .as_slice()
            .context("reference scores are contiguous")?;
        let scalar = model.predict_batch_with(
            &images.pixels,
            RunOptions {
                kernel: Some(Kernel::Scalar),
                threads: None,
            },
        )?;
        let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        let c = model.num_classes();
        let agree = (0..images.count)
            .filter(|&i| {
                let s = &p.scores[i * c..(i + 1) * c];
                same(s, &reference[i * c..(i + 1) * c])
                    && same(s, &scalar.scores[i * c..(i + 1) * c])
            })
            .count();
        writeln!(
            out,
            "  {:<22} {:<22} rule {:<6}  accuracy {}   reference and scalar kernel agree on {agree} / {} images",
            name(path),
            model.shape().iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
            model.rule().name(),
            percent(correct, images.count),
            images.count
        )?;
        anyhow::ensure!(
            agree == images.count,
            "{}: engine and reference disagree",
            path.display()
        );
        if path.ends_with("seed.bnn") {
            let mut scores_rule = model.clone();
            scores_rule.set_rule(bnn_core::DecisionRule::Scores);
            let q = scores_rule.predict_batch(&images.pixels)?;
            let correct = q
                .iter()
                .zip(&labels.labels)
                .filter(|(&c, &l)| c == l as usize)
                .count();
            writeln!(
                out,
                "  {:<22} same weights, argmax of the scores instead of their signs: {}",
                "",
                percent(correct, images.count)
            )?;
        }
    }

    writeln!(out, "\n== 2. 1-bit against FP32 on this machine")?;
    out.flush()?;
    let report = crate::bench_cmd::bench(
        &models,
        crate::bench_cmd::StandIns {
            cnn_small: crate::bench_cmd::needs_cnn_stand_in(),
            cnv: false,
        },
        &DataArgs {
            data: args.data.data.clone(),
            no_fetch: true,
        },
        &crate::bench_cmd::Timing {
            threads: crate::bench_cmd::default_threads(),
            repeat: args.repeat,
            single: Some(SINGLE_IMAGES.min(images.count)),
            images: None,
        },
    )?;
    crate::bench_cmd::print_report(&report, &mut out)?;

    writeln!(out, "\n== 3. Compression, from the bytes on disk")?;
    for m in report.models.iter().filter(|m| m.engine == "1-bit") {
        writeln!(
            out,
            "  {:<22} {:>10} bytes; FP32 file of the same shape {:>12} bytes: {:.1}x smaller",
            m.model,
            thousands(m.file_bytes),
            thousands(m.fp32_file_bytes),
            m.compression
        )?;
    }
    if let Some(seed) = report.models.iter().find(|m| m.model == "seed.bnn") {
        // The published size is the seed's 784-512-10 network: a seed.bnn
        // of any other shape is not the same network, and no ratio is.
        let path = models.iter().find(|p| name(p) == "seed.bnn");
        let shape = match path {
            Some(p) => crate::args::load_model(p)?.model.shape(),
            None => Vec::new(),
        };
        if shape == SEED_SHAPE {
            writeln!(
                out,
                "  the seed's own bnn_weights_1bit.npz is {} bytes: {} than seed.bnn for the same network",
                thousands(SEED_NPZ_BYTES),
                crate::output::size_ratio(SEED_NPZ_BYTES, seed.file_bytes)
            )?;
        } else {
            let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
            writeln!(
                out,
                "  seed.bnn here is {}, not the seed's 784-512-10 network: no comparison with the seed's .npz",
                shape.join("-")
            )?;
        }
    }
    Ok(())
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
