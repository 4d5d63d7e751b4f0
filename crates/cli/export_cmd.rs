//! `bnn export`: a model as dependency-free C99 or as Verilog-2001, written
//! as a whole directory or not at all (see `docs/EXPORT.md`); or as one
//! ONNX file (`bnn-onnx`, see `docs/IMPORT.md`), written like a model.

use std::path::PathBuf;

use anyhow::Context;
use bnn_export::{ExportError, Format, Options, WordBits};

use crate::choices;

use crate::output::thousands;
use crate::UsageError;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// A .bnn model file.
    pub model: PathBuf,
    /// c: NAME.h and NAME.c; verilog: NAME.v, ROM files and a testbench;
    /// onnx: one ONNX file.
    #[arg(long, value_enum)]
    pub format: choices::ExportFormat,
    /// Output directory, new or empty (see --force); its parent must exist,
    /// and a link to a directory is followed. With --format onnx: the file
    /// to write, replaced atomically like a model.
    #[arg(short, long, value_name = "DIR|FILE")]
    pub output: PathBuf,
    /// Prefix of every symbol and file name; a C identifier (onnx: the
    /// graph's name).
    #[arg(long, default_value = "bnn")]
    pub name: String,
    /// Weight word size: 64 (the default), or 32 for 32-bit
    /// microcontrollers; c and verilog only.
    #[arg(long, value_enum, value_name = "64|32")]
    pub word_bits: Option<choices::WordBits>,
    /// Replace DIR when it holds an earlier export.
    #[arg(long)]
    pub force: bool,
    /// Verilog only: an IDX image file whose first --test-count images the
    /// testbench checks (default: 16 synthetic images).
    #[arg(long, value_name = "IDX")]
    pub test_images: Option<PathBuf>,
    /// Verilog only: how many of --test-images the testbench carries
    /// (default: 200, or all the file holds if fewer).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub test_count: Option<usize>,
    /// Verilog only: weight words XOR-popcounted per cycle (default 1).
    #[arg(long, allow_negative_numbers = true, value_name = "P", value_parser = clap::value_parser!(u32).range(1..))]
    pub parallel: Option<u32>,
}

/// Images of --test-images the testbench carries unless --test-count says.
const DEFAULT_TEST_COUNT: usize = 200;

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let Some(format) = args.format.code() else {
        return run_onnx(args);
    };
    let word = args.word_bits.map_or(WordBits::W64, WordBits::from);
    bnn_export::ident::check_name(&args.name).map_err(usage)?;
    if format == Format::C && args.test_images.is_some() {
        return Err(UsageError("--test-images applies to --format verilog only".into()).into());
    }
    if format == Format::C && args.parallel.is_some() {
        return Err(UsageError("--parallel applies to --format verilog only".into()).into());
    }
    // A count that would be ignored is refused, like --test-images and
    // --parallel with C: `--test-count 5` alone gave the 16 synthetic images.
    if args.test_count.is_some() && args.test_images.is_none() {
        return Err(UsageError(if format == Format::C {
            "--test-count applies to --format verilog only".into()
        } else {
            "--test-count counts images of --test-images; without it the testbench has 16 synthetic images".into()
        })
        .into());
    }
    if args.test_count == Some(0) {
        return Err(UsageError("--test-count must be at least 1".into()).into());
    }
    let file = crate::args::load_model(&args.model)?;
    let model = &file.model;
    let pixels = match &args.test_images {
        None => None,
        Some(path) => {
            let images = bnn_data::idx::read_images(path).context("cannot read the test images")?;
            anyhow::ensure!(
                images.image_len() == model.input_len(),
                "{}: images are {}x{} but the model takes {} inputs",
                path.display(),
                images.rows,
                images.cols,
                model.input_len()
            );
            // A count given that the file cannot fill is refused, not
            // clamped: the testbench would check fewer images than asked.
            let count = match args.test_count {
                Some(n) if n > images.count => {
                    return Err(UsageError(format!(
                        "--test-count {n}: {} holds {} images",
                        path.display(),
                        images.count
                    ))
                    .into())
                }
                Some(n) => n,
                None => DEFAULT_TEST_COUNT.min(images.count),
            };
            Some(images.pixels[..count * images.image_len()].to_vec())
        }
    };
    let options = Options {
        format,
        name: args.name.clone(),
        word,
        force: args.force,
        inputs: std::iter::once(&args.model)
            .chain(&args.test_images)
            .cloned()
            .collect(),
        parallel: args.parallel.map_or(1, |p| p as usize),
    };
    let export = bnn_export::export(
        model,
        &file.description,
        &options,
        pixels.as_deref(),
        &args.output,
    )
    .map_err(|e| match e {
        ExportError::Name { .. } | ExportError::Option(_) => usage(e),
        ExportError::Path(problem) => crate::path_problem(problem),
        other => anyhow::Error::new(other).context("export failed"),
    })?;

    // The export is the result, written by now: a stdout that cannot take
    // the summary must not turn it into a failure (as with train).
    crate::output::summary(|out| {
        writeln!(
            out,
            "wrote {} ({} export of {}, {}-bit words):",
            args.output.display(),
            format.name(),
            export.shape,
            word.bits()
        )?;
        let width = export.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        for f in &export.files {
            writeln!(
                out,
                "  {:<width$}  {:>9} bytes",
                f.name,
                thousands(f.contents.len() as u64)
            )?;
        }
        for line in export.summary() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    });
    Ok(())
}

/// `--format onnx`: one file, checked and written like a model (atomic
/// replace, never an input); the options of the code generators are
/// refused rather than ignored.
fn run_onnx(args: ExportArgs) -> anyhow::Result<()> {
    let directory_only = [
        ("--word-bits", args.word_bits.is_some()),
        ("--force", args.force),
        ("--test-images", args.test_images.is_some()),
        ("--test-count", args.test_count.is_some()),
        ("--parallel", args.parallel.is_some()),
    ];
    if let Some((option, _)) = directory_only.iter().find(|(_, given)| *given) {
        return Err(UsageError(format!(
            "{option} applies to --format c and verilog; an ONNX export is one file, replaced like a model"
        ))
        .into());
    }
    crate::check_outputs(&[("ONNX file", &args.output)], &[&args.model])?;
    let file = crate::args::load_model(&args.model)?;
    let exported = bnn_onnx::export::export(&file.model, &args.name, &file.description)
        .with_context(|| format!("cannot export {} to ONNX", args.model.display()))?;
    bnn_io::write::write_file(&args.output, &exported.bytes)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    crate::output::summary(|out| {
        writeln!(
            out,
            "wrote {}: {} bytes (ONNX opset {}, {} nodes; input {}; outputs scores, classes)",
            args.output.display(),
            thousands(exported.bytes.len() as u64),
            bnn_onnx::export::OPSET,
            exported.nodes,
            exported.input
        )
    });
    Ok(())
}

fn usage(e: ExportError) -> anyhow::Error {
    UsageError(e.to_string()).into()
}
