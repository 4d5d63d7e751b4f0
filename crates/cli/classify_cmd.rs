//! `bnn classify`: fast batch classification of IDX files, `.npy` arrays
//! and images, with one CSV row, JSON object or `.npy` record per image, in
//! input order.
//!
//! IDX files and `.npy` arrays are streamed in chunks of [`CHUNK`] images,
//! so memory stays bounded however many images a file holds; a reader
//! thread fills the next chunk while the current one is classified (in
//! parallel) and formatted (in parallel, see [`crate::rows`]). Output goes
//! to stdout, or to `-o FILE` by `bnn_io`'s rules: a regular file is
//! replaced only when complete (an interrupted run leaves the old one and
//! no temporary), a device or FIFO is written through, and an output that
//! is one of the inputs is refused before anything is read.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use bnn_core::{Model, RunOptions};
use bnn_data::idx::ImageStream;
use bnn_data::npz::NpyImages;
use bnn_data::DataError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::RunArgs;
use crate::inputs::{self, Source};
use crate::output::{note, thousands};
use crate::rows::{Layout, Rows};

/// Images per streamed chunk: 8 Ki images of 784 bytes is 6.3 MiB of
/// pixels, so both buffers stay in the last-level cache and the reader's
/// copy out of the page cache is read back from there, not from DRAM.
/// Larger chunks measured slower, smaller ones no faster
/// (docs/PERFORMANCE.md, "`bnn classify`, end to end").
const CHUNK: usize = 1 << 13;

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {
    /// A .bnn model file.
    pub model: PathBuf,
    /// IDX image files, .npy uint8 arrays (N, inputs) or (N, H, W[, C]),
    /// PNG/PGM images, or directories of PNG/PGM images.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Write results here instead of stdout (atomically).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format: CSV rows, JSON objects, or a .npy array (int64
    /// classes, or records of class and float32 scores). A model with
    /// class names adds a `label` column to CSV and JSON after the others;
    /// a .npy keeps its layout (`bnn info` lists the names).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: crate::choices::Rows,
    /// Leave the scores out: classes only.
    #[arg(long)]
    pub classes_only: bool,
    #[command(flatten)]
    pub source: crate::dataset::SourceArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// A data set read whole (see [`inputs::expand`]), made into `model`'s
/// input; labels, where the source has them, are not needed. A CSV without
/// `--label-column` is read first as features only, then with its last
/// column as the labels it leaves out, whichever fits the model.
fn read_set(
    path: &Path,
    model: &Model,
    source: &crate::dataset::SourceArgs,
) -> anyhow::Result<Source> {
    let read = |label_column: Option<String>| -> anyhow::Result<Vec<u8>> {
        let mut options = source.options(crate::dataset::model_channels(model), true);
        options.label_column = label_column.or(options.label_column);
        let set = bnn_data::labelled::open(path, &options).map_err(|e| {
            // A directory classify expected images in: say that first.
            let e = anyhow::Error::new(e);
            if path.is_dir() {
                e.context(format!(
                    "{}: no .png or .pgm images, and not a data set",
                    path.display()
                ))
            } else {
                e
            }
        })?;
        let mut all = set.train;
        if let Some(test) = set.test {
            bnn_train::prepare::append(&mut all, test).map_err(crate::dataset::misfit(path))?;
        }
        bnn_train::prepare::values_for_model(all.values, set.input_map, model)
            .map_err(crate::dataset::misfit(path))
    };
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let pixels = match read(None) {
        Err(first) if csv && source.label_column.is_none() => {
            match crate::dataset::last_csv_column(path) {
                Some(last) => read(Some(last)).map_err(|_| first)?,
                None => return Err(first),
            }
        }
        other => other?,
    };
    let count = pixels.len() / model.input_len();
    Ok(Source::Set {
        path: path.to_path_buf(),
        pixels,
        count,
    })
}

pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    let layout = match args.format {
        crate::choices::Rows::Csv => Layout::Csv,
        crate::choices::Rows::Json => Layout::Json,
        crate::choices::Rows::Npy => Layout::Npy,
    };
    if layout == Layout::Npy && args.output.is_none() && io::stdout().is_terminal() {
        return Err(crate::UsageError(
            "--format npy writes binary data: give -o FILE or redirect stdout".into(),
        )
        .into());
    }
    if let Some(output) = &args.output {
        let given: Vec<&Path> = std::iter::once(&args.model)
            .chain(&args.inputs)
            .map(PathBuf::as_path)
            .collect();
        crate::check_outputs(&[("output", output)], &given)?;
    }
    let mut file = crate::args::load_model(&args.model)?;
    let options = args.run.resolve(&mut file.model)?;
    let model = &file.model;
    let read_set = |path: &Path| read_set(path, model, &args.source);
    let encoded = model.feature_encoding().is_some();
    let mut sources = inputs::expand(&args.inputs, &read_set, encoded)?;
    if let Some(output) = &args.output {
        // Images found in the input directories are inputs too.
        let found: Vec<&Path> = sources
            .iter()
            .map(|s| match s {
                Source::Idx { path, .. }
                | Source::Npy { path, .. }
                | Source::Set { path, .. }
                | Source::Image { path, .. } => path.as_path(),
            })
            .collect();
        crate::check_outputs(&[("output", output)], &found)?;
    }

    // Every file's shape is checked before anything is classified.
    let takes = inputs::Takes::of(model);
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
                let given = inputs::Given::Image(*rows, *cols, 1);
                inputs::check_fits(path, "holds images of", given, &takes)?;
                *count as u64
            }
            Source::Npy {
                path,
                count,
                given,
                shape,
                ..
            } => {
                inputs::check_fits(path, &given.npy_subject(shape), *given, &takes)?;
                *count as u64
            }
            Source::Set { count, .. } => *count as u64,
            Source::Image { .. } => 1,
        };
    }
    let source_count = sources.len();
    let progress = progress_bar(total);
    let started = Instant::now();
    let scores = !args.classes_only;
    // One pool for the whole run (classifying and formatting), rather than
    // one per chunk.
    let pool = args.run.threads()?;
    let classes = model.num_classes();
    let count = pool.install(|| -> anyhow::Result<u64> {
        match &args.output {
            None => {
                let stdout = BufWriter::with_capacity(1 << 20, io::stdout().lock());
                let failing = "cannot write to stdout".to_string();
                let mut rows = Rows::new(stdout, layout, scores, total, failing)
                    .with_names(model.class_names());
                let n = classify_all(model, options, &mut sources, &mut rows, &progress)?;
                rows.finish(classes)?;
                Ok(n)
            }
            Some(path) => {
                let cannot = |e| anyhow::Error::new(e).context(cannot_write(path));
                let mut out = bnn_io::write::OutputFile::create(path).map_err(cannot)?;
                let writer = BufWriter::with_capacity(1 << 20, &mut out);
                let mut rows = Rows::new(writer, layout, scores, total, cannot_write(path))
                    .with_names(model.class_names());
                let n = classify_all(model, options, &mut sources, &mut rows, &progress)?;
                rows.finish(classes)?;
                out.commit().map_err(cannot)?;
                Ok(n)
            }
        }
    })?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    note!(
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

/// A file of many images, read a chunk at a time.
enum Stream {
    Idx(ImageStream),
    Npy(NpyImages),
}

impl Stream {
    /// The open stream of `source` (an IDX or `.npy` input), reopening a
    /// regular file, and checking again that its images fit the model
    /// (the file may have changed since its header was first read).
    fn take(source: &mut Source, takes: &inputs::Takes) -> anyhow::Result<Stream> {
        let stream = match source {
            Source::Idx { path, stream, .. } => {
                let s = match stream.take() {
                    Some(s) => s,
                    None => ImageStream::open(path)?,
                };
                let given = inputs::Given::Image(s.rows(), s.cols(), 1);
                inputs::check_fits(path, "holds images of", given, takes)?;
                Stream::Idx(s)
            }
            Source::Npy { path, stream, .. } => {
                let s = match stream.take() {
                    Some(s) => s,
                    None => NpyImages::open(path)?,
                };
                let given = inputs::Given::of_npy(s.shape());
                inputs::check_fits(path, &given.npy_subject(&s.shape_text()), given, takes)?;
                Stream::Npy(s)
            }
            Source::Image { path, .. } | Source::Set { path, .. } => {
                anyhow::bail!("{}: read whole, not a stream", path.display())
            }
        };
        Ok(stream)
    }

    fn next_chunk(&mut self, buf: &mut Vec<u8>) -> Result<usize, DataError> {
        match self {
            Stream::Idx(s) => s.next_chunk(CHUNK, buf),
            Stream::Npy(s) => s.next_chunk(CHUNK, buf),
        }
    }
}

/// Classifies `stream` chunk by chunk, a reader thread filling the next
/// chunk while this one runs, and writes its rows.
fn classify_stream(
    model: &Model,
    options: RunOptions,
    mut stream: Stream,
    name: &str,
    rows: &mut Rows<impl Write>,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let per = model.input_len();
    std::thread::scope(|scope| {
        // Two buffers travel between the threads: one being read, one
        // being classified; closing either channel stops the other side.
        let (full_tx, full_rx) = mpsc::sync_channel::<Result<(usize, Vec<u8>), DataError>>(1);
        let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
        empty_tx.send(Vec::new()).ok();
        empty_tx.send(Vec::new()).ok();
        scope.spawn(move || {
            while let Ok(mut buf) = empty_rx.recv() {
                let read = stream.next_chunk(&mut buf);
                let last = !matches!(read, Ok(n) if n > 0);
                if full_tx.send(read.map(|n| (n, buf))).is_err() || last {
                    break;
                }
            }
        });
        let mut index = 0usize;
        while let Ok(read) = full_rx.recv() {
            let (n, buf) = read?;
            if n == 0 {
                break;
            }
            let p = model.predict_batch_with(&buf[..n * per], options)?;
            empty_tx.send(buf).ok();
            rows.write_all(&p, |i| (name, index + i))?;
            index += n;
            progress.inc(n as u64);
        }
        Ok(index as u64)
    })
}

fn classify_all(
    model: &Model,
    options: RunOptions,
    sources: &mut [Source],
    rows: &mut Rows<impl Write>,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let takes = inputs::Takes::of(model);
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
                pixels.extend_from_slice(&inputs::read_image(path, bytes.take(), &takes)?);
                pending.push(path);
                count += 1;
                if pending.len() == CHUNK {
                    flush(&mut pending, &mut pixels, rows)?;
                }
            }
            Source::Set {
                path,
                pixels: values,
                count: n,
            } => {
                flush(&mut pending, &mut pixels, rows)?;
                let name = path.display().to_string();
                let per = model.input_len();
                for (c, chunk) in values.chunks(CHUNK * per).enumerate() {
                    let p = model.predict_batch_with(chunk, options)?;
                    rows.write_all(&p, |i| (name.as_str(), c * CHUNK + i))?;
                    progress.inc((chunk.len() / per) as u64);
                }
                count += *n as u64;
            }
            Source::Idx { path, .. } | Source::Npy { path, .. } => {
                flush(&mut pending, &mut pixels, rows)?;
                let name = path.display().to_string();
                let stream = Stream::take(source, &takes)?;
                count += classify_stream(model, options, stream, &name, rows, progress)?;
            }
        }
    }
    flush(&mut pending, &mut pixels, rows)?;
    Ok(count)
}

fn cannot_write(path: &Path) -> String {
    format!("{}: cannot write", path.display())
}
