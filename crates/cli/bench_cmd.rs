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

/// The table's name for the stand-in of the `cnv` recipe (`--cnv`).
pub const CNV_STAND_IN: &str = "cnv stand-in (random weights)";

/// Random images timed by default for models MNIST does not fit: enough
/// for a steady batch figure, few enough that the FP32 twin of a CIFAR-size
/// network (about 0.1 GFLOP an image) takes seconds, not minutes.
pub const RANDOM_IMAGES: usize = 1000;

/// Most pixel bytes of a random image set (`--images` times the model's
/// input): 1 GiB, far beyond any useful run.
const MAX_RANDOM_BYTES: usize = 1 << 30;

/// Single images timed by default (fewer when the data has fewer).
const SINGLE_DEFAULT: usize = 2000;

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
    /// Images for the single-image latency runs (default: 2000, or all the
    /// images when there are fewer).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub single: Option<usize>,
    /// Images for the batch runs: the first N MNIST test images, or N
    /// random images for models MNIST does not fit (default: the whole
    /// test set, or 1000 random images).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub images: Option<usize>,
    /// Time the cnv recipe's network (FINN's CNV, 32x32x3 input) with
    /// random weights, on random images, instead of the shipped models.
    #[arg(long)]
    pub cnv: bool,
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
    if args.repeat == 0
        || args.single == Some(0)
        || args.images == Some(0)
        || args.threads.contains(&0)
    {
        return Err(crate::UsageError(
            "--repeat, --single, --images and --threads must be at least 1".into(),
        )
        .into());
    }
    // `--cnv` alone times the stand-in only: the shipped models take
    // MNIST's digits, and one run times one shape of images.
    let models = if args.models.is_empty() && !args.cnv {
        shipped()
    } else {
        args.models.clone()
    };
    anyhow::ensure!(
        !models.is_empty() || args.cnv,
        "no models to benchmark (none found in weights/)"
    );
    let threads = if args.threads.is_empty() {
        default_threads()
    } else {
        args.threads.clone()
    };
    check_outputs(&args, &models)?;
    let stand_ins = StandIns {
        cnn_small: args.models.is_empty() && !args.cnv && needs_cnn_stand_in(),
        cnv: args.cnv,
    };
    let timing = Timing {
        threads,
        repeat: args.repeat,
        single: args.single,
        images: args.images,
    };
    let report = bench(&models, stand_ins, &args.data, &timing)?;
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
    use bnn_fp32::format::MAGIC as FP32_MAGIC;
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

/// The stand-in networks (random weights) to time after the models.
#[derive(Clone, Copy, Debug, Default)]
pub struct StandIns {
    /// [`bnn_bench::cnn_small_stand_in`], on MNIST.
    pub cnn_small: bool,
    /// [`bnn_bench::cnv_stand_in`] of 10 classes, on random 32x32x3 images.
    pub cnv: bool,
}

/// How much to measure.
pub struct Timing {
    /// Thread counts of the batch runs.
    pub threads: Vec<usize>,
    pub repeat: usize,
    /// Images of the single-image runs; `None`: [`SINGLE_DEFAULT`], or all
    /// the images when there are fewer.
    pub single: Option<usize>,
    /// Images of the batch runs; `None`: the whole MNIST test set, or
    /// [`RANDOM_IMAGES`] random ones.
    pub images: Option<usize>,
}

/// The input shape of a model, as its first layer reads it (`1x1xN` for a
/// plain vector).
fn fp32_shape(model: &Fp32Model) -> bnn_core::InputShape {
    match model.convs().first() {
        Some(c) => bnn_core::InputShape::new(
            c.input.height as u32,
            c.input.width as u32,
            c.input.channels as u32,
        ),
        None => bnn_core::InputShape::flat(model.input_len() as u32),
    }
}

/// Loads the models, measures, and returns the report; the stand-ins (and
/// their twins) are timed after them. Models that take MNIST's 784 pixels
/// run on the MNIST test set; models of another shape, which MNIST does not
/// fit, run on fixed random images of that shape, without accuracy, and the
/// report says so. One run times one input size.
pub fn bench(
    models: &[PathBuf],
    stand_ins: StandIns,
    data: &DataArgs,
    timing: &Timing,
) -> anyhow::Result<BenchReport> {
    let mut candidates = Vec::new();
    // Every model's input shape, checked against the images once they are chosen.
    let mut shapes: Vec<(String, bnn_core::InputShape)> = Vec::new();
    for path in models {
        match load_either(path)? {
            Loaded::Fp32(model, bytes) => {
                shapes.push((path.display().to_string(), fp32_shape(&model)));
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
                shapes.push((path.display().to_string(), model.input_shape()));
                push_binary(&mut candidates, name_of(path), model, file.file_bytes);
            }
        }
    }
    let stand_ins = [
        (
            stand_ins.cnn_small,
            CNN_STAND_IN,
            bnn_bench::cnn_small_stand_in as fn() -> bnn_core::Result<Model>,
        ),
        (stand_ins.cnv, CNV_STAND_IN, || bnn_bench::cnv_stand_in(10)),
    ];
    for (wanted, name, build) in stand_ins {
        if !wanted {
            continue;
        }
        let model = build().with_context(|| format!("cannot build the {name}"))?;
        let bytes = bnn_core::format::to_bytes(&model, "").len() as u64;
        shapes.push((name.to_string(), model.input_shape()));
        push_binary(&mut candidates, name.into(), Arc::new(model), bytes);
    }
    let (first, shape) = shapes.first().cloned().context("no models to benchmark")?;
    let per_image = shape.len().context("model shapes are checked on loading")?;
    if let Some((other, s)) = shapes.iter().find(|(_, s)| s.len() != Some(per_image)) {
        return Err(crate::UsageError(format!(
            "{first} takes {} but {other} takes {}: bench models of one input size at a time",
            shape_text(shape),
            shape_text(*s)
        ))
        .into());
    }
    let (pixels, labels, what) = if per_image == bnn_data::mnist::SIDE * bnn_data::mnist::SIDE {
        crate::mnist_dir::ensure_test(&data.data, data.no_fetch)?;
        let (images, labels) =
            bnn_data::mnist::load_test(&data.data).context("cannot load MNIST test set")?;
        anyhow::ensure!(
            images.image_len() == per_image,
            "{}: MNIST images have {} pixels, not {per_image}",
            data.data.display(),
            images.image_len()
        );
        let count = match timing.images {
            Some(n) if n > images.count => {
                return Err(crate::UsageError(format!(
                    "--images {n}: the test set has {} images",
                    crate::output::thousands(images.count as u64)
                ))
                .into())
            }
            Some(n) => n,
            None => images.count,
        };
        let mut pixels = images.pixels;
        pixels.truncate(count * per_image);
        let mut labels = labels.labels;
        labels.truncate(count);
        (pixels, Some(labels), data_text(None))
    } else {
        let count = timing.images.unwrap_or(RANDOM_IMAGES);
        if count.saturating_mul(per_image) > MAX_RANDOM_BYTES {
            return Err(crate::UsageError(format!(
                "--images {count}: {count} random {} exceed {} MiB",
                shape_text(shape),
                MAX_RANDOM_BYTES >> 20
            ))
            .into());
        }
        let pixels = bnn_bench::random_images(count, per_image);
        (pixels, None, data_text(Some(shape)))
    };
    let count = pixels.len() / per_image;
    let single = match timing.single {
        Some(n) if n > count => {
            return Err(crate::UsageError(format!(
                "--single {n}: the {} has {} images",
                if labels.is_some() {
                    "test set"
                } else {
                    "random set"
                },
                crate::output::thousands(count as u64)
            ))
            .into())
        }
        Some(n) => n,
        None => SINGLE_DEFAULT.min(count),
    };
    let config = Config {
        threads: timing.threads.clone(),
        repeat: timing.repeat,
        single_images: single,
    };
    let mut log = |line: &str| note!("bench: {line}");
    bnn_bench::run(
        &candidates,
        (&pixels, labels.as_deref()),
        per_image,
        &what,
        &config,
        &mut log,
    )
    .map_err(|e| anyhow::anyhow!(e))
}

/// What a model takes: `784 inputs` (a plain vector) or `32x32x3 images`.
fn shape_text(shape: bnn_core::InputShape) -> String {
    if shape.is_flat() {
        format!("{} inputs", shape.channels)
    } else {
        format!("{shape} images")
    }
}

/// The report's `data`: the MNIST test set, or random pixels of `shape`.
fn data_text(random: Option<bnn_core::InputShape>) -> String {
    match random {
        None => bnn_bench::MNIST_DATA.into(),
        Some(shape) => format!("random u8 {} (no data set given)", shape_text(shape)),
    }
}

/// The tables: one row per model, then every kernel.
pub fn print_report(report: &BenchReport, out: &mut impl Write) -> std::io::Result<()> {
    let cpu = cpu_name();
    writeln!(
        out,
        "\n{}, median of {} interleaved runs, each after {} ms of the same engine's work; CPU: {cpu}; kernels: {}\n",
        report.images_text(),
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
                "{} (u8 input, {}) vs {} ({}, {}): images/s {}",
                u8m.model,
                bnn_bench::percent(u8m.accuracy),
                b.model,
                b.input,
                bnn_bench::percent(b.accuracy),
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
                "{} ({}) vs trained FP32 baseline {} ({}): {}; {:.1}x smaller on disk",
                m.model,
                bnn_bench::percent(m.accuracy),
                fp.model,
                bnn_bench::percent(fp.accuracy),
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
