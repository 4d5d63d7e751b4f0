//! `bnn train`: a recipe, overridden knob by knob, trained by `bnn-train`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bnn_train::progress::Silent;
use bnn_train::{Dataset, Optimizer, Progress, Schedule, TrainConfig, TrainError, TrainOptions};

use crate::args::DataArgs;
use crate::choices::{self, ProgressMode};
use crate::progress::{Log, Terminal};
use crate::UsageError;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub source: crate::dataset::SourceArgs,
    #[command(flatten)]
    pub split: crate::dataset::SplitArgs,
    /// Starting configuration (default: seed). Not with --resume, whose
    /// checkpoint holds the configuration.
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub recipe: Option<choices::Recipe>,
    /// Model file to write (default: RECIPE.bnn, or RECIPE.f32 for fp32).
    /// The report (.json) and chart (.svg) go beside it, unless MODEL is a
    /// device, FIFO or descriptor (/dev/null, /dev/stdout), which has no
    /// "beside": then only --report, --chart and --checkpoint write them.
    #[arg(short, long, value_name = "MODEL")]
    pub output: Option<PathBuf>,
    /// JSON report of the run (default: MODEL.json).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// SVG chart of the training curve (default: MODEL.svg).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Continue from a checkpoint (its configuration is used; only
    /// --epochs may extend it).
    #[arg(long, value_name = "CHECKPOINT")]
    pub resume: Option<PathBuf>,
    /// Checkpoint written after every epoch (default: MODEL.ckpt; none when
    /// MODEL is a device, FIFO or descriptor).
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Write no checkpoint.
    #[arg(long, conflicts_with = "checkpoint")]
    pub no_checkpoint: bool,
    /// Worker threads, 1 to 1024 (default: all cores, or RAYON_NUM_THREADS).
    /// Results do not depend on it.
    #[arg(long, allow_negative_numbers = true, value_name = "N", value_parser = crate::args::parse_threads)]
    pub threads: Option<usize>,
    /// Progress display.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Train on only the first N training images (validation included).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub limit_train: Option<usize>,
    /// Test on only the first N test images.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub limit_test: Option<usize>,
    #[command(flatten)]
    pub knobs: Knobs,
}

/// Recipe overrides; each is left as the recipe has it unless given.
#[derive(clap::Args, Debug, Default)]
pub struct Knobs {
    /// Random seed (initialisation, shuffling, augmentation, dropout).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Epochs to train (the schedule spans all of them).
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Initial learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Mini-batch size.
    #[arg(long, allow_negative_numbers = true)]
    pub batch: Option<usize>,
    /// sgd, momentum[:M] or adam.
    #[arg(long)]
    pub optimizer: Option<Optimizer>,
    /// Training loss (sign-mse is the seed's).
    #[arg(long, value_enum)]
    pub loss: Option<choices::Loss>,
    /// constant, step:EVERY:FACTOR, cosine:FINAL_LR or exp:FINAL_LR.
    #[arg(long)]
    pub schedule: Option<Schedule>,
    /// STE clip: gradients pass where |pre-activation| <= clip.
    #[arg(long, allow_negative_numbers = true)]
    pub ste_clip: Option<f32>,
    /// Set each epoch's clip to FACTOR x the RMS pre-activation of the
    /// previous epoch, per layer.
    #[arg(long, value_name = "FACTOR", allow_negative_numbers = true)]
    pub dynamic_clip: Option<f32>,
    /// First-layer input: binary (pixel >= 128 is +1, then XNOR-popcount)
    /// or u8 (the pixel value 0..=255 times the ±1 weights, an exact
    /// integer dot product; the layers after it stay binary).
    #[arg(long, value_enum)]
    pub input: Option<choices::Input>,
    /// Hidden widths, e.g. 1024,1024,1024.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub hidden: Option<Vec<usize>>,
    /// A convolutional network, comma-separated: cKxN is a KxK convolution
    /// (K odd, 1 to 15) to N channels, stride 1; p2 a 2x2 max pool (stride
    /// 2, odd edges dropped), only directly after a convolution; dN a dense
    /// layer of N. A convolution comes first, dense layers last, and the
    /// last is the output, d10; each convolution is followed (after its
    /// pool) by batch norm and sign. Example: c3x32,p2,c3x64,p2,d256,d10.
    #[arg(long, value_name = "LAYERS", conflicts_with = "hidden")]
    pub arch: Option<bnn_train::arch::Arch>,
    /// Padding of every convolution: same keeps the map size (padded
    /// positions are -1 for bit inputs, 0 for u8 pixels), valid shrinks it.
    #[arg(long, value_enum)]
    pub padding: Option<choices::Padding>,
    /// Batch norm before each hidden sign.
    #[arg(long, conflicts_with = "no_bn")]
    pub bn: bool,
    /// No batch norm: hidden signs of `dot + bias`.
    #[arg(long)]
    pub no_bn: bool,
    /// Dropout probability on hidden activations.
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f32>,
    /// Random translation of training images by up to N pixels.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub shift: Option<usize>,
    /// Random rotation of training images by up to DEG degrees (a bilinear
    /// warp, with --scale and the --shift offsets).
    #[arg(long, allow_negative_numbers = true, value_name = "DEG")]
    pub rotate: Option<f32>,
    /// Random scaling of training images within 1 ± F.
    #[arg(long, allow_negative_numbers = true, value_name = "F")]
    pub scale: Option<f32>,
    /// Decision rule stored in the model.
    #[arg(long, value_enum)]
    pub rule: Option<choices::Rule>,
    /// Standard deviation of the initial latent weights.
    #[arg(long, allow_negative_numbers = true)]
    pub init_std: Option<f32>,
    /// Initial output score scale.
    #[arg(long, allow_negative_numbers = true)]
    pub output_scale: Option<f32>,
    /// Images held out from the end of the training set for validation.
    #[arg(long, allow_negative_numbers = true)]
    pub validation: Option<usize>,
}

impl Knobs {
    /// Applies the given overrides to `config`.
    fn apply(&self, config: &mut TrainConfig) {
        let k = self;
        if let Some(v) = k.seed {
            config.seed = v;
        }
        if let Some(v) = k.epochs {
            config.epochs = v;
        }
        if let Some(v) = k.lr {
            config.lr = v;
        }
        if let Some(v) = k.batch {
            config.batch = v;
        }
        if let Some(v) = k.optimizer {
            config.optimizer = v;
        }
        if let Some(v) = k.loss {
            config.loss = v.into();
        }
        if let Some(v) = k.schedule {
            config.schedule = v;
        }
        if let Some(v) = k.ste_clip {
            config.ste_clip = v;
        }
        if k.dynamic_clip.is_some() {
            config.dynamic_clip = k.dynamic_clip;
        }
        if let Some(v) = k.input {
            config.input = v.into();
        }
        if let Some(v) = &k.hidden {
            config.hidden = v.clone();
            config.arch = None;
        }
        if let Some(v) = &k.arch {
            config.arch = Some(v.clone());
            config.hidden = Vec::new();
        }
        if let Some(v) = k.padding {
            config.padding = v.into();
        }
        if k.bn {
            config.batch_norm = true;
        }
        if k.no_bn {
            config.batch_norm = false;
            config.bn_recompute = false;
        }
        if let Some(v) = k.dropout {
            config.dropout = v;
        }
        if let Some(v) = k.shift {
            config.shift = v;
        }
        if let Some(v) = k.rotate {
            config.rotate = v;
        }
        if let Some(v) = k.scale {
            config.scale = v;
        }
        if let Some(v) = k.rule {
            config.rule = v.into();
        }
        if let Some(v) = k.init_std {
            config.init_std = Some(v);
        }
        if let Some(v) = k.output_scale {
            config.output_scale = v;
        }
        if let Some(v) = k.validation {
            config.validation = v;
        }
    }

    /// The first knob other than --epochs that was given, by its flag: a
    /// resumed run names it rather than leave the user to find it.
    fn first_but_epochs(&self) -> Option<&'static str> {
        let k = self;
        [
            ("--seed", k.seed.is_some()),
            ("--lr", k.lr.is_some()),
            ("--batch", k.batch.is_some()),
            ("--optimizer", k.optimizer.is_some()),
            ("--loss", k.loss.is_some()),
            ("--schedule", k.schedule.is_some()),
            ("--ste-clip", k.ste_clip.is_some()),
            ("--dynamic-clip", k.dynamic_clip.is_some()),
            ("--input", k.input.is_some()),
            ("--hidden", k.hidden.is_some()),
            ("--arch", k.arch.is_some()),
            ("--padding", k.padding.is_some()),
            ("--bn", k.bn),
            ("--no-bn", k.no_bn),
            ("--dropout", k.dropout.is_some()),
            ("--shift", k.shift.is_some()),
            ("--rotate", k.rotate.is_some()),
            ("--scale", k.scale.is_some()),
            ("--rule", k.rule.is_some()),
            ("--init-std", k.init_std.is_some()),
            ("--output-scale", k.output_scale.is_some()),
            ("--validation", k.validation.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

fn usage(e: TrainError) -> anyhow::Error {
    match e {
        TrainError::Config(_) => UsageError(e.to_string()).into(),
        other => other.into(),
    }
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    // Everything about the configuration is checked before data is touched.
    let state = match &args.resume {
        Some(path) => {
            if let Some(flag) = args.knobs.first_but_epochs() {
                return Err(UsageError(format!(
                    "{flag}: with --resume the checkpoint fixes the configuration; only --epochs may be given"
                ))
                .into());
            }
            let mut state = bnn_train::checkpoint::load(path)?;
            let limits = [
                ("--limit-train", args.limit_train, state.config.limit_train),
                ("--limit-test", args.limit_test, state.config.limit_test),
            ];
            for (flag, given, stored) in limits {
                if let Some(n) = given.filter(|&n| Some(n) != stored) {
                    let had =
                        stored.map_or("all the images".to_string(), |m| format!("{flag} {m}"));
                    return Err(UsageError(format!(
                        "{flag} {n}: the checkpoint was trained on {had}, and a resumed run keeps its data (leave {flag} out)"
                    ))
                    .into());
                }
            }
            if let Some(epochs) = args.knobs.epochs {
                if epochs < state.epochs_done {
                    return Err(UsageError(format!(
                        "--epochs {epochs} is fewer than the {} the checkpoint has done",
                        state.epochs_done
                    ))
                    .into());
                }
                state.config.epochs = epochs;
            }
            state.config.validate().map_err(usage)?;
            Some(state)
        }
        None => None,
    };
    // A file, or a directory without MNIST's files, is the user's data:
    // read, split and encoded before the configuration, whose shape,
    // classes and default recipe follow from it.
    let users = bnn_data::labelled::is_users(&args.data.data);
    let seed = match &state {
        Some(s) => s.config.seed,
        None => args
            .knobs
            .seed
            .unwrap_or(bnn_train::recipe("seed").map_err(usage)?.seed),
    };
    let prepared = match users {
        true => Some(crate::dataset::prepare(
            &args.data.data,
            &args.source,
            &args.split,
            args.knobs.validation.is_some(),
            seed,
        )?),
        false => {
            if let Some(flag) = args.split.first_given().or(args.source.first_given()) {
                return Err(UsageError(format!(
                    "{flag} is for your own data (--data FILE or a directory of it), not MNIST"
                ))
                .into());
            }
            None
        }
    };
    // What was chosen for the user's data, said once every check has
    // passed (an error stays the one line on stderr).
    let mut said: Vec<String> = Vec::new();
    let mut config = match &state {
        Some(s) => s.config.clone(),
        None => {
            let recipe = match (args.recipe, &prepared) {
                (Some(recipe), _) => recipe.name(),
                (None, None) => choices::Recipe::Seed.name(),
                (None, Some(p)) => {
                    let (recipe, why) = bnn_train::prepare::default_recipe(p.data.input_map());
                    said.push(format!("recipe {recipe} ({why})"));
                    recipe.to_string()
                }
            };
            let mut config = bnn_train::recipe(&recipe).map_err(usage)?;
            if let Some(p) = &prepared {
                bnn_train::prepare::fit_config(&mut config, p, args.recipe.is_none());
            }
            args.knobs.apply(&mut config);
            config.limit_train = args.limit_train;
            config.limit_test = args.limit_test;
            config.validate().map_err(usage)?;
            config
        }
    };
    if let Some(p) = &prepared {
        said.extend(p.said.iter().cloned());
        let data = &p.data;
        said.push(format!(
            "{} samples of {} in {} classes; {}",
            crate::output::thousands(data.train_len() as u64),
            bnn_train::prepare::map_text(data.input_map()),
            data.classes(),
            config.summary()
        ));
    }
    // A run that cannot fit in memory would abort on an allocation.
    bnn_train::memory::check(&config, bnn_train::memory::available()).map_err(usage)?;
    let output = args.output.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}.{}",
            config.recipe,
            match config.kind {
                bnn_train::ModelKind::Binary => "bnn",
                bnn_train::ModelKind::Fp32 => "f32",
            }
        ))
    });
    // Companions named by their flags, else beside the model (none beside
    // a device: `-o /dev/null` must not create /dev/null.ckpt).
    let beside = |ext| bnn_train::output::beside(&output, ext);
    let checkpoint = match &args.checkpoint {
        _ if args.no_checkpoint => None,
        Some(path) => Some(path.clone()),
        None => beside("ckpt"),
    };
    let outputs = bnn_train::output::OutputPaths {
        model: output.clone(),
        report: args.report.clone().or_else(|| beside("json")),
        chart: args.chart.clone().or_else(|| beside("svg")),
        checkpoint: checkpoint.clone(),
    };
    // Before the MNIST files are loaded (and before any training): a run
    // must not end in a lost model.
    let data_files = match users {
        true => [
            Some(&args.data.data),
            args.split.test.as_ref(),
            args.split.val.as_ref(),
            args.split.class_names.as_ref(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .chain(args.source.files())
        .collect(),
        false => crate::mnist_dir::inputs(&args.data.data, &crate::mnist_dir::ALL),
    };
    let inputs: Vec<&Path> = data_files.iter().map(PathBuf::as_path).collect();
    outputs
        .check(&inputs, args.resume.as_deref())
        .map_err(crate::path_problem)?;

    let (data, metadata) = match prepared {
        Some(p) => {
            if let Some(n) = p
                .validation
                .filter(|_| state.is_none() && args.knobs.validation.is_none())
            {
                config.validation = n;
            }
            let data = limit(p.data, config.limit_train, config.limit_test)?;
            (data, Some((p.class_names, p.encoding)))
        }
        None => {
            crate::mnist_dir::ensure(&args.data.data, args.data.no_fetch)?;
            let mnist = bnn_data::mnist::load(&args.data.data).context("cannot load MNIST")?;
            let data = Dataset::new(
                mnist.train_images.pixels,
                widen(mnist.train_labels.labels),
                mnist.test_images.pixels,
                widen(mnist.test_labels.labels),
            )?;
            (limit(data, config.limit_train, config.limit_test)?, None)
        }
    };
    config.validate_for(data.train_len()).map_err(usage)?;
    for line in &said {
        crate::output::note!("bnn train: {line}");
    }
    bnn_train::memory::check(&config, bnn_train::memory::available()).map_err(usage)?;

    let mut progress: Box<dyn Progress + Send> = match args.progress {
        ProgressMode::Bar => Box::new(Terminal::default()),
        ProgressMode::Log => Box::new(Log),
        ProgressMode::None => Box::new(Silent),
        ProgressMode::Auto if std::io::stderr().is_terminal() => Box::new(Terminal::default()),
        ProgressMode::Auto => Box::new(Silent),
    };
    let options = TrainOptions {
        checkpoint,
        stop_after: None,
    };
    let work = || -> anyhow::Result<bnn_train::TrainOutcome> {
        let state = match state {
            Some(s) => s,
            None => bnn_train::init(&config, &data)?,
        };
        let state = bnn_train::run_epochs(state, &data, progress.as_mut(), &options)?;
        Ok(bnn_train::finish(state, &data, progress.as_mut())?)
    };
    let mut outcome = crate::args::start_threads(args.threads)?.install(work)?;
    if let (Some((names, encoding)), bnn_train::Trained::Binary(model)) =
        (metadata, &mut outcome.model)
    {
        // The names and the encoding never change a computed bit; they let
        // every reader of the model apply the training data's transform
        // and name its classes.
        if let Some(names) = names {
            **model = model.as_ref().clone().with_class_names(names)?;
        }
        if let Some(encoding) = encoding {
            **model = model.as_ref().clone().with_feature_encoding(encoding)?;
        }
    }
    let command = command_line();
    let chart = crate::chart::training_curve_of(&outcome, &output);
    let written = outputs.write(&outcome, &command, &chart)?;
    let bytes = match bnn_io::target::special_kind(&written.model) {
        None => format!("{} bytes", written.file_bytes),
        Some(kind) => format!("{} bytes written through {kind}", written.file_bytes),
    };
    let companions: Vec<String> = [("report", &written.report), ("chart", &written.chart)]
        .into_iter()
        .filter_map(|(what, path)| Some(format!("{what} {}", path.as_ref()?.display())))
        .collect();
    crate::output::summary(|out| {
        writeln!(
            out,
            "{}: best epoch {} of {}, validation {:.2} %, test {:.2} %, {:.1} s ({:.2} s/epoch), {bytes}",
            written.model.display(),
            outcome.best_epoch,
            outcome.config.epochs,
            100.0 * outcome.val_accuracy,
            100.0 * outcome.test_accuracy,
            outcome.seconds,
            outcome.seconds_per_epoch(),
        )?;
        writeln!(
            out,
            "exported model agrees with the trainer's forward pass on {} of {} test images",
            outcome.agreement.0, outcome.agreement.1
        )?;
        if companions.is_empty() {
            writeln!(out, "no report or chart: the model went to a special file (name them with --report and --chart)")
        } else {
            writeln!(out, "{}", companions.join(", "))
        }
    });
    Ok(())
}

/// The command as typed, with the program named `bnn`.
fn command_line() -> String {
    let mut parts = vec!["bnn".to_string()];
    parts.extend(std::env::args().skip(1).map(|a| {
        if a.contains(char::is_whitespace) {
            format!("'{a}'")
        } else {
            a
        }
    }));
    parts.join(" ")
}

/// Byte labels as the trainer holds them.
fn widen(labels: Vec<u8>) -> Vec<u16> {
    labels.into_iter().map(u16::from).collect()
}

/// `--limit-train` and `--limit-test` applied to `data`; a limit beyond
/// the data is refused, not clamped.
fn limit(
    data: Dataset,
    limit_train: Option<usize>,
    limit_test: Option<usize>,
) -> anyhow::Result<Dataset> {
    let sets = [
        ("--limit-train", limit_train, "training", data.train_len()),
        ("--limit-test", limit_test, "test", data.test().len()),
    ];
    for (flag, limit, set, have) in sets {
        if let Some(n) = limit.filter(|&n| n > have) {
            return Err(UsageError(format!(
                "{flag} {n}: the {set} set has {} images",
                crate::output::thousands(have as u64)
            ))
            .into());
        }
    }
    Ok(match (limit_train, limit_test) {
        (None, None) => data,
        (a, b) => data.truncated(a.unwrap_or(usize::MAX), b.unwrap_or(usize::MAX))?,
    })
}
