//! # bnn-export: a trained model as C99 or Verilog-2001
//!
//! Binary networks are meant for small targets. This crate turns a
//! [`bnn_core::Model`] into
//!
//! - **C** ([`c`]): `NAME.h` and `NAME.c` with one function,
//!   `int NAME_predict(const uint8_t pixels[], float scores_out[])`, no
//!   allocation and no library beyond `<stdint.h>`;
//! - **Verilog** ([`verilog`]): a clocked module that handles `P` weight
//!   words per cycle, its ROMs as `$readmemh` files, and a self-checking
//!   testbench.
//!
//! Both compute what the engine computes, bit for bit, scores included: the
//! arithmetic is fixed once in [`plan`] (popcount limits, exact f32 scores)
//! and the tests run the generated code against `predict_batch`. An export is
//! written to a temporary directory and renamed into place ([`outdir`]).
//! `docs/EXPORT.md` is the user's guide.

// Every public item says what it is for; clippy `-D warnings` in CI keeps it so.
#![warn(missing_docs)]

pub mod c;
pub mod error;
pub mod hexfloat;
pub mod ident;
pub mod outdir;
pub mod plan;
pub mod vectors;
pub mod verilog;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use bnn_core::Model;

pub use error::{ExportError, Result};
pub use plan::{Plan, WordBits};
pub use vectors::Vectors;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// A C99 header and source with a `predict` function.
    C,
    /// A Verilog-2001 module with its memory files and a testbench.
    Verilog,
}

impl Format {
    /// The name `--format` takes: `c` or `verilog`.
    pub fn name(self) -> &'static str {
        match self {
            Format::C => "c",
            Format::Verilog => "verilog",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "c" => Ok(Format::C),
            "verilog" => Ok(Format::Verilog),
            other => Err(ExportError::Option(format!(
                "unknown export format '{other}' (known: c, verilog)"
            ))),
        }
    }
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// File name inside the output directory, no directories.
    pub name: String,
    /// The file's bytes, exactly as written.
    pub contents: Vec<u8>,
}

impl File {
    /// A file of `text`, stored as its UTF-8 bytes.
    pub fn text(name: &str, text: String) -> Self {
        File {
            name: name.to_string(),
            contents: text.into_bytes(),
        }
    }
}

/// How to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// C or Verilog.
    pub format: Format,
    /// Prefix of every symbol and file name; see [`ident::check_name`].
    pub name: String,
    /// Bits per packed word in the generated tables and loops.
    pub word: WordBits,
    /// Replace a non-empty output directory holding an earlier export.
    pub force: bool,
    /// The run's input files (the model file, test images): a directory
    /// holding one of them is never replaced, even with `force`.
    pub inputs: Vec<PathBuf>,
    /// Verilog: weight words XOR-popcounted per cycle (at least 1).
    pub parallel: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::C,
            name: "bnn".into(),
            word: WordBits::W64,
            force: false,
            inputs: Vec::new(),
            parallel: 1,
        }
    }
}

/// The sizes an export reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sizes {
    /// Flash tables and RAM of the C export.
    C(c::CSizes),
    /// The Verilog module's sizes and its testbench.
    Verilog {
        /// Widths, depths and cycle counts of the module.
        geometry: verilog::Geometry,
        /// Images in the testbench's vectors.
        test_images: usize,
    },
}

/// A generated export, before or after it is written.
#[derive(Clone, Debug, PartialEq)]
pub struct Export {
    /// The format the files are in.
    pub format: Format,
    /// The symbol and file name prefix ([`Options::name`]).
    pub name: String,
    /// The network as text for the report: see [`Plan::shape_text`].
    pub shape: String,
    /// Every file of the export, in the order they are written.
    pub files: Vec<File>,
    /// What the report says about sizes.
    pub sizes: Sizes,
}

/// Generates every file of an export in memory. `provenance` (the model
/// file's description) goes into the files' header comments; `test_images`
/// (`input_len` bytes each) become the Verilog testbench's vectors, or
/// [`vectors::SYNTHETIC_IMAGES`] generated images when `None`; the C export
/// ignores them.
///
/// # Examples
///
/// ```
/// use bnn_export::{generate, Format, Options};
///
/// let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn"));
/// let file = bnn_core::format::from_bytes(bytes, "seed.bnn".as_ref())?;
/// let options = Options { format: Format::Verilog, name: "seed".into(), ..Options::default() };
/// let export = generate(&file.model, &file.description, &options, None)?;
/// assert!(export.files.iter().any(|f| f.name.ends_with(".v")));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`ExportError::Name`] for a name that is not a C or Verilog identifier,
/// [`ExportError::Unsupported`] for a model the format cannot express (a
/// convolutional one in Verilog), and [`ExportError::Engine`] for test
/// images that are not whole images of the model's input.
pub fn generate(
    model: &Model,
    provenance: &str,
    options: &Options,
    test_images: Option<&[u8]>,
) -> Result<Export> {
    ident::check_name(&options.name)?;
    if model.is_convolutional() && options.format == Format::Verilog {
        return Err(ExportError::Unsupported(
            "the Verilog export does not support convolutional models yet (the C export does)"
                .into(),
        ));
    }
    let plan = Plan::new(model, options.word)?;
    let (files, sizes) = match options.format {
        Format::C => {
            let (files, sizes) = c::generate(&plan, &options.name, provenance);
            (files, Sizes::C(sizes))
        }
        Format::Verilog => {
            // The hardware's scores are `dot + bias` and its argmax compares
            // those: a per-class scale would change classes.
            if model.score_scale().is_some() {
                return Err(ExportError::Unsupported(
                    "the model scales its class scores per class (an imported model's SCAL section), which the Verilog export does not support yet; the C and ONNX exports carry the scale".into(),
                ));
            }
            if model.pixel_layer().is_some() {
                return Err(ExportError::Unsupported(
                    "the Verilog export takes binary-input models only, and this model has u8 input (the C export supports it)".into(),
                ));
            }
            if options.parallel == 0 {
                return Err(ExportError::Option(
                    "--parallel must be at least 1 (weight words per cycle)".into(),
                ));
            }
            let vectors = match test_images {
                Some(pixels) => Vectors::from_images(model, pixels)?,
                None => Vectors::synthetic(model, vectors::SYNTHETIC_IMAGES)?,
            };
            let (files, geometry) =
                verilog::generate(&plan, options.parallel, &options.name, provenance, &vectors);
            (
                files,
                Sizes::Verilog {
                    geometry,
                    test_images: vectors.count,
                },
            )
        }
    };
    let mut export = Export {
        format: options.format,
        name: options.name.clone(),
        shape: plan.shape_text(),
        files,
        sizes,
    };
    let manifest = export.manifest(provenance, options.word);
    export.files.push(File::text(outdir::MANIFEST, manifest));
    Ok(export)
}

/// Generates an export and writes it as the directory `dir` (see
/// [`outdir::write_dir`]).
///
/// # Examples
///
/// ```
/// use bnn_export::{export, Options};
///
/// let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn"));
/// let file = bnn_core::format::from_bytes(bytes, "seed.bnn".as_ref())?;
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("seed-c");
/// let options = Options { name: "seed".into(), ..Options::default() }; // C, 64-bit words
/// export(&file.model, &file.description, &options, None, &out)?;
/// assert!(out.join("seed.h").is_file() && out.join("seed.c").is_file());
///
/// // A second export into the same directory needs `force`.
/// assert!(export(&file.model, "", &options, None, &out).is_err());
/// let force = Options { force: true, ..options };
/// export(&file.model, "", &force, None, &out)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// Those of [`generate`], and those of [`outdir::write_dir`]: a target
/// that is not a directory this export may fill or replace, or one that
/// cannot be written.
pub fn export(
    model: &Model,
    provenance: &str,
    options: &Options,
    test_images: Option<&[u8]>,
    dir: &Path,
) -> Result<Export> {
    let export = generate(model, provenance, options, test_images)?;
    let inputs: Vec<&Path> = options.inputs.iter().map(PathBuf::as_path).collect();
    outdir::write_dir(dir, &export.files, options.force, &inputs)?;
    Ok(export)
}

impl Export {
    /// What the export costs, one fact per line.
    pub fn summary(&self) -> Vec<String> {
        match &self.sizes {
            Sizes::C(c) => vec![
                format!(
                    "const data (flash): {} bytes = weights {} + thresholds {} + flip bits {} + biases {}{}",
                    c.total(),
                    c.weights,
                    c.limits,
                    c.flips,
                    c.biases,
                    match c.scales {
                        0 => String::new(),
                        n => format!(" + scales {n}"),
                    }
                ),
                if c.static_ram > 0 {
                    format!(
                        "activations (static RAM): {} bytes; stack arrays: {} bytes",
                        c.static_ram, c.stack
                    )
                } else {
                    format!("stack buffers: {} bytes", c.stack)
                },
            ],
            Sizes::Verilog {
                geometry: g,
                test_images,
            } => {
                let m = g.memory_bits();
                vec![
                    format!(
                        "{} lanes of {}-bit weight words per cycle (SIMD {} words of a row x PE {} neurons; --parallel {})",
                        g.lanes(),
                        g.word,
                        g.simd,
                        g.pe,
                        g.parallel
                    ),
                    format!(
                        "interval: {} cycles per image when images stream back to back; latency {} cycles from start to done",
                        g.interval(),
                        g.latency()
                    ),
                    format!(
                        "image port: {} pixels per write, {} writes per image",
                        g.pixels_per_write,
                        g.pixel_writes()
                    ),
                    format!(
                        "memory: {} bits = weights {} + thresholds {} + score table {} (ROM) + activations {} (registers)",
                        m.total(),
                        m.weights,
                        m.limits,
                        m.scores,
                        m.activations
                    ),
                    format!("testbench: {test_images} images with the engine's classes and scores"),
                ]
            }
        }
    }

    fn manifest(&self, provenance: &str, word: WordBits) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "bnn export, format {}", self.format.name());
        let _ = writeln!(s, "name: {}", self.name);
        let _ = writeln!(s, "network: {}", self.shape);
        let _ = writeln!(s, "source: {}", c::one_line(provenance));
        let _ = writeln!(s, "word bits: {}", word.bits());
        for line in self.summary() {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "files:");
        for f in &self.files {
            let _ = writeln!(s, "  {} {} bytes", f.name, f.contents.len());
        }
        s
    }
}
