//! `bnn bench`: 1-bit against FP32 on this machine, in one interleaved run,
//! with accuracy beside every speed and compression measured from bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bnn_bench::{BenchReport, Candidate, Config, Engine};
use bnn_core::kernel::available;
use bnn_core::Model;
use bnn_fp32::Fp32Model;

use crate::args::DataArgs;
use crate::output::note;

/// The shipped models benchmarked when none are named, in table order: a
/// u8-input model right after the binary-input model of its shape, the
/// CNNs after the MLPs.
pub const SHIPPED: [&str; 9] = [
    "weights/seed.bnn",
    "weights/seed-recipe.bnn",
    "weights/mnist-512.bnn",
    "weights/mnist-512-u8.bnn",
    "weights/mnist-deep.bnn",
    "weights/mnist-deep-u8.bnn",
    "weights/mnist-cnn-small.bnn",
    "weights/mnist-cnn.bnn",
    "weights/mnist-512-fp32.f32",
];

/// The shipped model of the `cnn-small` benchmark shape; without it, the
/// default run times [`bnn_bench::cnn_small_stand_in`] in its place.
const CNN_SMALL: &str = "weights/mnist-cnn-small.bnn";

/// The table's name for the stand-in CNN.
pub const CNN_STAND_IN: &str = "cnn-small stand-in (random weights)";

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// .bnn or .f32 model files (default: the shipped models in weights/).
    pub models: Vec<PathBuf>,
    /// Thread counts for the batch runs, comma-separated, each 1 to 1024
    /// (default: 1 and all cores).
    #[arg(long, value_delimiter = ',', value_name = "N,N", value_parser = crate::args::parse_threads)]
    pub threads: Vec<usize>,
    /// Timed repetitions per engine, after a warm-up; the median is reported.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 5,
        value_name = "N"
    )]
    pub repeat: usize,
    /// Images for the single-image latency runs.
    #[arg(
        long,
        allow_negative_numbers = true,
        default_value_t = 2000,
        value_name = "N"
    )]
    pub single: usize,
    /// Write all measurements as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a throughput chart (SVG, log scale).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.repeat == 0 || args.single == 0 || args.threads.contains(&0) {
        return Err(crate::UsageError(
            "--repeat, --single and --threads must be at least 1".into(),
        )
        .into());
    }
    let models = if args.models.is_empty() {
        shipped()
    } else {
        args.models.clone()
    };
    anyhow::ensure!(
        !models.is_empty(),
        "no models to benchmark (none found in weights/)"
    );
    let threads = if args.threads.is_empty() {
        default_threads()
    } else {
        args.threads.clone()
    };
    check_outputs(&args, &models)?;
    let stand_in = args.models.is_empty() && needs_cnn_stand_in();
    let report = bench(
        &models,
        stand_in,
        &args.data,
        &threads,
        args.repeat,
        args.single,
    )?;
    // The files first: a stdout that fails must not lose the measurements.
    if let Some(path) = &args.json {
        bnn_io::write::write_file(path, report.to_json().as_bytes())
            .with_context(|| format!("{}: cannot write JSON", path.display()))?;
    }
    if let Some(path) = &args.chart {
        bnn_io::write::write_file(path, crate::chart::bench_throughput(&report).as_bytes())
            .with_context(|| format!("{}: cannot write chart", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    print_report(&report, &mut out)?;
    for path in [&args.json, &args.chart].into_iter().flatten() {
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(())
}

/// Before the run: the JSON and chart paths are distinct, are none of the
/// files the run reads (the models, the MNIST test images and labels), and
/// can be written, so that minutes of measuring are never lost.
fn check_outputs(args: &BenchArgs, models: &[PathBuf]) -> anyhow::Result<()> {
    let outputs: Vec<(&str, &Path)> = [("--json file", &args.json), ("--chart file", &args.chart)]
        .into_iter()
        .filter_map(|(role, path)| Some((role, path.as_deref()?)))
        .collect();
    let data = crate::mnist_dir::inputs(&args.data.data, &crate::mnist_dir::TEST);
    let inputs: Vec<&Path> = models.iter().chain(&data).map(PathBuf::as_path).collect();
    crate::check_outputs(&outputs, &inputs)
}

/// Whether a default run times the stand-in CNN: when the shipped
/// `cnn-small` model is missing.
pub fn needs_cnn_stand_in() -> bool {
    !Path::new(CNN_SMALL).is_file()
}

/// The shipped models that exist.
pub fn shipped() -> Vec<PathBuf> {
    SHIPPED
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect()
}

/// 1 and all cores (just 1 on a single-core machine).
pub fn default_threads() -> Vec<usize> {
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if all > 1 {
        vec![1, all]
    } else {
        vec![1]
    }
}

/// A model's name in the tables and logs: its file name, control bytes
/// escaped (a file name may hold ESC or CR like any other text).
fn name_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    bnn_io::text::printable(&name).into_owned()
}

/// A model file of either kind, read once: its magic says which. A FIFO or
/// a pipe can be read only once (peeking at the magic and then loading
/// waited forever for a second writer), and the read stops where the
/// header says the file ends, as the loaders' own reads do.
// One per model, moved straight into an engine: the size of the larger
// variant does not matter.
#[allow(clippy::large_enum_variant)]
enum Loaded {
    Binary(bnn_core::ModelFile),
    Fp32(Fp32Model, u64),
}

fn load_either(path: &Path) -> anyhow::Result<Loaded> {
    use bnn_core::format::FP32_MAGIC;
    use bnn_io::read::{read_file, ReadFailure, Want};
    let want = |b: &[u8]| match b.get(..FP32_MAGIC.len()) {
        None => Want::AtLeast(FP32_MAGIC.len() as u64),
        Some(magic) if magic == FP32_MAGIC => bnn_fp32::format::wanted(b),
        Some(_) => bnn_core::format::wanted(b),
    };
    let max = bnn_core::format::MAX_FILE.max(bnn_fp32::format::MAX_FILE);
    let bytes = read_file(path, max, want).map_err(|failure| match failure {
        ReadFailure::Io(e) => anyhow::Error::new(e).context(format!("{}", path.display())),
        ReadFailure::Problem(p) => anyhow::anyhow!("{}: {p}", path.display()),
    });
    let bytes = bytes.context("cannot load model")?;
    if bytes.starts_with(&FP32_MAGIC) {
        let model = bnn_fp32::format::from_bytes(&bytes, path).context("cannot load FP32 model")?;
        Ok(Loaded::Fp32(model, bytes.len() as u64))
    } else {
        let file = bnn_core::format::from_bytes(&bytes, path).context("cannot load model")?;
        Ok(Loaded::Binary(file))
    }
}

/// The bench's name for an FP32 model's input.
fn fp32_input(input: bnn_fp32::InputTransform) -> String {
    match input {
        bnn_fp32::InputTransform::Normalize => "float".into(),
        bnn_fp32::InputTransform::Binarize { threshold } => format!("binary>={threshold}"),
        bnn_fp32::InputTransform::Pixel => "u8".into(),
    }
}

/// A 1-bit model and its FP32 twin, as two candidates: the 1-bit one with
/// every kernel this CPU runs, compared with the twin.
fn push_binary(candidates: &mut Vec<Candidate>, name: String, model: Arc<Model>, bytes: u64) {
    let twin = bnn_fp32::from_binary(&model);
    let twin_bytes = bnn_fp32::format::to_bytes(&twin).len() as u64;
    let twin_name = format!("{name} as fp32");
    let input = match model.input_encoding() {
        bnn_core::InputEncoding::Binary { threshold } => format!("binary>={threshold}"),
        bnn_core::InputEncoding::U8 => "u8".to_string(),
    };
    let arch = model.is_convolutional().then(|| twin.arch());
    candidates.push(Candidate {
        name,
        engine_kind: "1-bit".into(),
        input: input.clone(),
        shape: model.shape(),
        arch: arch.clone(),
        engines: available()
            .into_iter()
            .map(|k| Engine::OneBit(model.clone(), k))
            .collect(),
        file_bytes: bytes,
        fp32_file_bytes: twin_bytes,
        compare_with: Some(twin_name.clone()),
    });
    candidates.push(Candidate {
        name: twin_name,
        engine_kind: "fp32".into(),
        input,
        shape: twin.shape(),
        arch,
        engines: vec![Engine::Fp32(Arc::new(twin))],
        file_bytes: twin_bytes,
        fp32_file_bytes: twin_bytes,
        compare_with: None,
    });
}

/// Loads the models, measures, and returns the report. With `cnn_stand_in`
/// the stand-in CNN (and its twin) is timed after them.
pub fn bench(
    models: &[PathBuf],
    cnn_stand_in: bool,
    data: &DataArgs,
    threads: &[usize],
    repeat: usize,
    single: usize,
) -> anyhow::Result<BenchReport> {
    let mut candidates = Vec::new();
    // Every model's input size, checked against the images once they are loaded.
    let mut input_lens: Vec<(&Path, usize)> = Vec::new();
    for path in models {
        match load_either(path)? {
            Loaded::Fp32(model, bytes) => {
                input_lens.push((path, model.input_len()));
                candidates.push(Candidate {
                    name: name_of(path),
                    engine_kind: "fp32".into(),
                    input: fp32_input(model.input()),
                    shape: model.shape(),
                    arch: (!model.convs().is_empty()).then(|| model.arch()),
                    engines: vec![Engine::Fp32(Arc::new(model))],
                    file_bytes: bytes,
                    fp32_file_bytes: bytes,
                    compare_with: None,
                });
            }
            Loaded::Binary(file) => {
                let model = Arc::new(file.model);
                input_lens.push((path, model.input_len()));
                push_binary(&mut candidates, name_of(path), model, file.file_bytes);
            }
        }
    }
    if cnn_stand_in {
        let model = bnn_bench::cnn_small_stand_in().context("cannot build the stand-in CNN")?;
        let bytes = bnn_core::format::to_bytes(&model, "").len() as u64;
        push_binary(&mut candidates, CNN_STAND_IN.into(), Arc::new(model), bytes);
    }
    crate::mnist_dir::ensure_test(&data.data, data.no_fetch)?;
    let (images, labels) =
        bnn_data::mnist::load_test(&data.data).context("cannot load MNIST test set")?;
    for (path, n) in input_lens {
        anyhow::ensure!(
            n == images.image_len(),
            "{}: the model takes {n} inputs but MNIST images have {} pixels",
            path.display(),
            images.image_len()
        );
    }
    if single > images.count {
        return Err(crate::UsageError(format!(
            "--single {single}: the test set has {} images",
            crate::output::thousands(images.count as u64)
        ))
        .into());
    }
    let config = Config {
        threads: threads.to_vec(),
        repeat,
        single_images: single,
    };
    let mut log = |line: &str| note!("bench: {line}");
    bnn_bench::run(
        &candidates,
        &images.pixels,
        &labels.labels,
        images.image_len(),
        &config,
        &mut log,
    )
    .map_err(|e| anyhow::anyhow!(e))
}

/// The tables: one row per model, then every kernel.
pub fn print_report(report: &BenchReport, out: &mut impl Write) -> std::io::Result<()> {
    let cpu = cpu_name();
    writeln!(
        out,
        "\n{} MNIST test images, median of {} interleaved runs, each after {} ms of the same engine's work; CPU: {cpu}; kernels: {}\n",
        report.images,
        report.repeat,
        bnn_bench::WARM_UP.as_millis(),
        available().iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    )?;
    writeln!(out, "{}", report.summary_table())?;
    writeln!(out, "Speed-up: 1-bit images/s over the FP32 engine running the same ±1 weights (same shape, same threads).")?;
    writeln!(out, "Size: FP32 file of the same shape over this file.\n")?;
    writeln!(
        out,
        "FP32 engine (sgemm; a multiply-add counts two FLOPs):\n{}",
        report.fp32_rates()
    )?;
    writeln!(out, "{}", report.kernel_table())?;
    // u8-input models against the binary-input models of the same shape.
    for u8m in report
        .models
        .iter()
        .filter(|m| m.engine == "1-bit" && m.input == "u8")
    {
        for b in report
            .models
            .iter()
            .filter(|m| m.engine == "1-bit" && m.shape == u8m.shape && m.input != "u8")
        {
            let ratios: Vec<String> = u8m
                .images_per_s
                .iter()
                .filter_map(|&(th, v)| {
                    b.images_per_s
                        .iter()
                        .find(|(t, _)| *t == th)
                        .map(|(_, f)| format!("{:.2}x at {th}T", v / f))
                })
                .collect();
            writeln!(
                out,
                "{} (u8 input, {:.2} %) vs {} ({}, {:.2} %): images/s {}",
                u8m.model,
                u8m.accuracy,
                b.model,
                b.input,
                b.accuracy,
                ratios.join(", ")
            )?;
        }
    }
    // 1-bit 784-512-10 models against the trained FP32 baseline of that shape.
    for fp in report
        .models
        .iter()
        .filter(|m| m.engine == "fp32" && !m.model.ends_with(" as fp32"))
    {
        for m in report
            .models
            .iter()
            .filter(|m| m.engine == "1-bit" && m.shape == fp.shape)
        {
            let ratios: Vec<String> = m
                .images_per_s
                .iter()
                .filter_map(|&(th, v)| {
                    fp.images_per_s
                        .iter()
                        .find(|(t, _)| *t == th)
                        .map(|(_, f)| format!("{:.1}x at {th}T", v / f))
                })
                .collect();
            writeln!(
                out,
                "{} ({:.2} %) vs trained FP32 baseline {} ({:.2} %): {}; {:.1}x smaller on disk",
                m.model,
                m.accuracy,
                fp.model,
                fp.accuracy,
                ratios.join(", "),
                fp.file_bytes as f64 / m.file_bytes.max(1) as f64
            )?;
        }
    }
    Ok(())
}

/// The CPU model from /proc/cpuinfo, where there is one.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .map(|name| {
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            format!("{name}, {cores} cores")
        })
        .unwrap_or_else(|| "unknown".into())
}
