//! `bnn classify`: fast batch classification of IDX files and images, with
//! one CSV row or JSON object per image, in input order.
//!
//! IDX files are streamed in chunks of [`CHUNK`] images, so memory stays
//! bounded however many images a file holds; each chunk is classified in
//! parallel. Output goes to stdout, or to `-o FILE` by `bnn_io`'s rules: a
//! regular file is replaced only when complete (an interrupted run leaves
//! the old one and no temporary), a device or FIFO is written through, and
//! an output that is one of the inputs is refused before anything is read.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bnn_core::{Model, Predictions, RunOptions};
use bnn_data::idx::ImageStream;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;

use crate::args::RunArgs;
use crate::inputs::{self, Source};
use crate::output::thousands;

/// Images per streamed chunk: 64 Ki images of 784 bytes is 50 MiB of pixels.
const CHUNK: usize = 1 << 16;

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// A .bnn model file.
    pub model: PathBuf,
    /// IDX image files, PNG/PGM images, or directories of PNG/PGM images.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Write results here instead of stdout (atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: crate::choices::Rows,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    if let Some(output) = &args.output {
        let given = std::iter::once(&args.model).chain(&args.inputs);
        bnn_io::target::check_not_input(output, given.map(PathBuf::as_path))
            .map_err(crate::path_problem)?;
        bnn_io::target::check_writable(output).map_err(crate::path_problem)?;
    }
    let mut file = crate::args::load_model(&args.model)?;
    let options = args.run.resolve(&mut file.model)?;
    let model = &file.model;
    let mut sources = inputs::expand(&args.inputs)?;
    if let Some(output) = &args.output {
        // Images found in the input directories are inputs too.
        let found = sources.iter().map(|s| match s {
            Source::Idx { path, .. } | Source::Image { path, .. } => path.as_path(),
        });
        bnn_io::target::check_not_input(output, found).map_err(crate::path_problem)?;
    }

    let mut total = 0u64;
    for source in &sources {
        total += match source {
            Source::Idx {
                path,
                count,
                rows,
                cols,
                ..
            } => {
                anyhow::ensure!(
                    rows * cols == model.input_len(),
                    "{}: images are {rows}x{cols} but the model takes {} inputs",
                    path.display(),
                    model.input_len()
                );
                *count as u64
            }
            Source::Image { .. } => 1,
        };
    }
    let source_count = sources.len();
    let progress = progress_bar(total);
    let started = Instant::now();
    let json = args.format == crate::choices::Rows::Json;
    // One pool for the whole run (classifying and formatting), rather than
    // one per chunk.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let options = RunOptions {
        threads: None,
        ..options
    };
    let count = pool.install(|| -> anyhow::Result<u64> {
        match &args.output {
            None => {
                let stdout = BufWriter::new(io::stdout().lock());
                let mut rows = Rows::new(stdout, json, "cannot write to stdout".into());
                let n = classify_all(model, options, &mut sources, &mut rows, &progress)?;
                rows.finish()?;
                Ok(n)
            }
            Some(path) => {
                let cannot = |e| anyhow::Error::new(e).context(cannot_write(path));
                let mut out = bnn_io::write::OutputFile::create(path).map_err(cannot)?;
                let mut rows = Rows::new(BufWriter::new(&mut out), json, cannot_write(path));
                let n = classify_all(model, options, &mut sources, &mut rows, &progress)?;
                rows.finish()?;
                out.commit().map_err(cannot)?;
                Ok(n)
            }
        }
    })?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "classified {} images from {} inputs in {:.2} s ({} images/s)",
        thousands(count),
        source_count,
        seconds,
        thousands((count as f64 / seconds.max(1e-9)) as u64)
    );
    Ok(())
}

fn progress_bar(total: u64) -> ProgressBar {
    if !io::stderr().is_terminal() || total < 100_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} images, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn classify_all(
    model: &Model,
    options: RunOptions,
    sources: &mut [Source],
    rows: &mut Rows<impl Write>,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let per = model.input_len();
    let mut count = 0u64;
    // Loose images are gathered into one batch, flushed in input order.
    let mut pending: Vec<&Path> = Vec::new();
    let mut pixels: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<&Path>,
                 pixels: &mut Vec<u8>,
                 rows: &mut Rows<_>|
     -> anyhow::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let p = model.predict_batch_with(pixels, options)?;
        let names: Vec<String> = pending
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        rows.write_all(&p, |i| (names[i].as_str(), 0))?;
        progress.inc(pending.len() as u64);
        pending.clear();
        pixels.clear();
        Ok(())
    };
    for source in sources {
        match source {
            Source::Image { path, bytes } => {
                pixels.extend_from_slice(&inputs::read_image(path, bytes.take(), per)?);
                pending.push(path);
                count += 1;
                if pending.len() == CHUNK {
                    flush(&mut pending, &mut pixels, rows)?;
                }
            }
            Source::Idx { path, stream, .. } => {
                flush(&mut pending, &mut pixels, rows)?;
                let mut stream = match stream.take() {
                    Some(stream) => stream,
                    None => ImageStream::open(path)?,
                };
                anyhow::ensure!(
                    stream.image_len() == per,
                    "{}: images are {}x{} but the model takes {per} inputs",
                    path.display(),
                    stream.rows(),
                    stream.cols()
                );
                let name = path.display().to_string();
                let mut buf = Vec::new();
                let mut index = 0usize;
                loop {
                    let n = stream.next_chunk(CHUNK, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    let p = model.predict_batch_with(&buf[..n * per], options)?;
                    rows.write_all(&p, |i| (name.as_str(), index + i))?;
                    index += n;
                    count += n as u64;
                    progress.inc(n as u64);
                }
            }
        }
    }
    flush(&mut pending, &mut pixels, rows)?;
    Ok(count)
}

fn cannot_write(path: &Path) -> String {
    format!("{}: cannot write", path.display())
}

/// CSV (`source,index,class,score_0,...`) or a JSON array of objects with
/// the same fields.
struct Rows<W: Write> {
    out: W,
    json: bool,
    started: bool,
    /// What a write error is about: stdout or the `-o` file.
    failing: String,
}

/// Rows formatted per parallel task: formatting floats costs more than
/// classifying, so it is spread over the threads too.
const FORMAT_BLOCK: usize = 2048;

impl<W: Write> Rows<W> {
    fn new(out: W, json: bool, failing: String) -> Self {
        Rows {
            out,
            json,
            started: false,
            failing,
        }
    }

    /// Writes one row per prediction, in order; `source(i)` names row `i`'s
    /// input and its index in it. An error names the output (and keeps the
    /// `io::Error`, so that a closed pipe is still recognised).
    fn write_all<'a>(
        &mut self,
        p: &Predictions,
        source: impl Fn(usize) -> (&'a str, usize) + Sync,
    ) -> anyhow::Result<()> {
        self.write_rows(p, source)
            .with_context(|| self.failing.clone())
    }

    fn write_rows<'a>(
        &mut self,
        p: &Predictions,
        source: impl Fn(usize) -> (&'a str, usize) + Sync,
    ) -> io::Result<()> {
        let n = p.classes.len();
        if n == 0 {
            return Ok(());
        }
        let json = self.json;
        let blocks: Vec<String> = (0..n.div_ceil(FORMAT_BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut text = String::with_capacity(FORMAT_BLOCK * 160);
                for i in b * FORMAT_BLOCK..((b + 1) * FORMAT_BLOCK).min(n) {
                    if json && i > b * FORMAT_BLOCK {
                        text.push_str(",\n");
                    }
                    let (name, index) = source(i);
                    format_row(&mut text, json, name, index, p.classes[i], p.scores_of(i));
                }
                text
            })
            .collect();
        if !self.started {
            self.started = true;
            if json {
                self.out.write_all(b"[\n")?;
            } else {
                self.out.write_all(b"source,index,class")?;
                for i in 0..p.num_classes {
                    write!(self.out, ",score_{i}")?;
                }
                self.out.write_all(b"\n")?;
            }
        } else if json {
            self.out.write_all(b",\n")?;
        }
        for (b, text) in blocks.iter().enumerate() {
            if json && b > 0 {
                self.out.write_all(b",\n")?;
            }
            self.out.write_all(text.as_bytes())?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        let mut end = || -> io::Result<()> {
            if self.json {
                self.out
                    .write_all(if self.started { b"\n]\n" } else { b"[]\n" })?;
            }
            self.out.flush()
        };
        end().with_context(|| self.failing.clone())
    }
}

/// One CSV line (with its newline) or one JSON object (without separator).
fn format_row(
    out: &mut String,
    json: bool,
    source: &str,
    index: usize,
    class: usize,
    scores: &[f32],
) {
    use std::fmt::Write as _;
    // Writing into a String cannot fail.
    if json {
        let _ = write!(
            out,
            "  {{\"source\": {}, \"index\": {index}, \"class\": {class}",
            json_string(source)
        );
        for (i, s) in scores.iter().enumerate() {
            let _ = write!(out, ", \"score_{i}\": {s}");
        }
        out.push('}');
    } else {
        let _ = write!(out, "{},{index},{class}", csv_field(source));
        for s in scores {
            let _ = write!(out, ",{s}");
        }
        out.push('\n');
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
