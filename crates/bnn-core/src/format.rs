//! The `.bnn` model file (see `docs/FORMAT.md`): a versioned little-endian
//! header, a layer table, packed weight words and per-neuron thresholds or
//! biases, closed by a CRC-32 of everything before it.
//!
//! Version 1 holds binary-input MLPs; version 2 ([`v2`]) adds the input
//! encoding, the input shape and a layer table by kind. A model is saved in
//! the oldest version that expresses it, so every version-1 file loads and
//! saves back byte for byte.
//!
//! Loading never trusts the header: the size it implies is computed with
//! checked arithmetic and compared with the real file length before any
//! buffer is allocated from it, so a corrupt header is an error, not a
//! multi-gigabyte allocation.

use std::io::{Cursor, Read};
use std::path::Path;

use bnn_io::read::Want;
use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use crate::bits::{from_stream, to_stream, words_for, BitMatrix};
use crate::error::{Error, Result};
use crate::layer::BinaryDense;
use crate::model::{DecisionRule, Model};
use crate::transform::{Threshold, Transform};

/// The first eight bytes (PNG-style: a non-ASCII byte, the name, and line
/// ending bytes that reveal text-mode corruption).
pub const MAGIC: [u8; 8] = *b"\x89BNN\r\n\x1a\n";
/// The version of binary-input MLPs with a flat input, written for every
/// model it can express.
pub const VERSION: u16 = 1;
/// The newest version this build reads and writes.
pub const LATEST_VERSION: u16 = v2::VERSION_3;
/// Fixed header bytes before the layer table.
pub const HEADER_LEN: usize = 24;
/// Bytes per layer-table entry.
pub const LAYER_ENTRY_LEN: usize = 8;
/// Largest accepted layer width or input length.
pub const MAX_WIDTH: u32 = 1 << 24;
/// Largest accepted number of layers.
pub const MAX_LAYERS: u32 = 1024;
/// Largest accepted description, in bytes.
pub const MAX_DESCRIPTION: u32 = 1 << 20;
/// Largest accepted file: far beyond any model this engine runs well.
pub const MAX_FILE: u64 = 1 << 32;

const KIND_SIGN: u8 = 0;
const KIND_SCORES: u8 = 1;

pub mod sections;
pub mod v2;

pub use sections::SectionInfo;

/// A model as loaded from disk, with what the file said about itself.
#[derive(Clone, Debug)]
pub struct ModelFile {
    /// The network, ready to run.
    pub model: Model,
    /// Free text stored with the model (provenance, training command).
    pub description: String,
    /// Size of the file in bytes.
    pub file_bytes: u64,
    /// The format version the file is in (see `docs/FORMAT.md`).
    pub version: u16,
    /// The file's metadata sections in file order (version 3), unknown
    /// ones included (kept in the model, see [`Model::unknown_sections`]).
    pub sections: Vec<SectionInfo>,
}

/// Serialises a model, in version 1 when it can express the model, else
/// in version 2, or 3 when it carries metadata (class names, a feature
/// encoding, a per-class score scale, sections of a newer writer).
pub fn to_bytes(model: &Model, description: &str) -> Vec<u8> {
    if v2::needed(model) || model.has_metadata() || model.score_scale().is_some() {
        return v2::to_bytes(model, description);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    // Writes into a Vec cannot fail.
    let w = &mut out;
    w.write_u16::<LE>(VERSION).unwrap();
    w.write_u8(match model.rule() {
        DecisionRule::Scores => 0,
        DecisionRule::Seed => 1,
    })
    .unwrap();
    w.write_u8(model.input_threshold()).unwrap();
    w.write_u32::<LE>(model.input_len() as u32).unwrap();
    w.write_u32::<LE>(model.layers().len() as u32).unwrap();
    w.write_u32::<LE>(description.len() as u32).unwrap();
    for layer in model.layers() {
        w.write_u32::<LE>(layer.outputs() as u32).unwrap();
        match layer.transform() {
            Transform::Sign(t) => w.extend_from_slice(&[KIND_SIGN, threshold_width(t)]),
            Transform::Scores(_) => w.extend_from_slice(&[KIND_SCORES, 0]),
        }
        w.extend_from_slice(&[0; 2]);
    }
    w.extend_from_slice(description.as_bytes());
    for layer in model.layers() {
        write_layer_body(w, &layer.weights(), layer.transform());
    }
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).unwrap();
    out
}

/// One dense layer's body: the weight bit stream, then thresholds and flip
/// bits, or biases. The same in every version.
fn write_layer_body(w: &mut Vec<u8>, weights: &BitMatrix, transform: &Transform) {
    for word in to_stream(weights) {
        w.write_u64::<LE>(word).unwrap();
    }
    match transform {
        Transform::Sign(thresholds) => {
            let wide = threshold_width(thresholds) == 4;
            for t in thresholds {
                if wide {
                    w.write_i32::<LE>(t.value).unwrap();
                } else {
                    w.write_i16::<LE>(t.value as i16).unwrap();
                }
            }
            let mut flips = vec![0u8; thresholds.len().div_ceil(8)];
            for (j, t) in thresholds.iter().enumerate() {
                flips[j / 8] |= u8::from(t.flip) << (j % 8);
            }
            w.extend_from_slice(&flips);
        }
        Transform::Scores(bias) => {
            for &b in bias {
                w.write_f32::<LE>(b).unwrap();
            }
        }
    }
}

/// Bytes of a dense layer's body: `m` neurons over `n` inputs, emitting
/// scores or bits with `width`-byte thresholds. Both factors of `m·n` are at
/// most 2^24, so nothing here can overflow.
fn layer_body_bytes(m: u64, n: u64, scores: bool, width: u8) -> u64 {
    let weight_bytes = 8 * (m * n).div_ceil(64);
    let rest = if scores {
        4 * m
    } else {
        u64::from(width) * m + m.div_ceil(8)
    };
    weight_bytes + rest
}

/// Reads a dense layer's body (see [`write_layer_body`]); the caller has
/// checked that the bytes are there. `i` numbers the layer in errors.
fn read_layer_body(
    r: &mut Cursor<&[u8]>,
    m: usize,
    inputs: usize,
    scores: bool,
    width: u8,
    i: usize,
) -> std::result::Result<(BitMatrix, Transform), String> {
    let mut stream = vec![0u64; words_for(m * inputs)];
    r.read_u64_into::<LE>(&mut stream).expect("size checked");
    let weights = from_stream(m, inputs, &stream).map_err(|e| format!("layer {}: {e}", i + 1))?;
    let transform = if !scores {
        let mut values = vec![0i32; m];
        if width == 4 {
            r.read_i32_into::<LE>(&mut values).expect("size checked");
            // The writer picks the narrowest width; a wider one would not
            // save back to the same bytes.
            if values.iter().all(|&v| i16::try_from(v).is_ok()) {
                return Err(format!(
                    "layer {}: thresholds stored 4 bytes wide all fit in 2",
                    i + 1
                ));
            }
        } else {
            for v in &mut values {
                *v = i32::from(r.read_i16::<LE>().expect("size checked"));
            }
        }
        let mut flips = vec![0u8; m.div_ceil(8)];
        r.read_exact(&mut flips).expect("size checked");
        if !m.is_multiple_of(8) && flips[m / 8] >> (m % 8) != 0 {
            return Err(format!(
                "layer {}: flip bits set beyond the last neuron",
                i + 1
            ));
        }
        Transform::Sign(
            values
                .into_iter()
                .enumerate()
                .map(|(j, value)| Threshold {
                    value,
                    flip: flips[j / 8] >> (j % 8) & 1 == 1,
                })
                .collect(),
        )
    } else {
        let mut bias = vec![0f32; m];
        r.read_f32_into::<LE>(&mut bias).expect("size checked");
        Transform::Scores(bias)
    };
    Ok((weights, transform))
}

/// Bytes per stored threshold: 2 when every value fits an `i16` (always for
/// layers under 32,766 inputs, since thresholds are clamped to ±(n + 1)).
fn threshold_width(thresholds: &[Threshold]) -> u8 {
    if thresholds.iter().all(|t| i16::try_from(t.value).is_ok()) {
        2
    } else {
        4
    }
}

/// Writes a model atomically: an existing file is replaced whole or not at
/// all.
pub fn save(model: &Model, description: &str, path: &Path) -> Result<()> {
    if description.len() > MAX_DESCRIPTION as usize {
        return Err(Error::InvalidModel(format!(
            "description of {} bytes exceeds {MAX_DESCRIPTION}",
            description.len()
        )));
    }
    bnn_io::write::write_file(path, &to_bytes(model, description)).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads and checks a model file, reading no further than its header says
/// it reaches (see [`bnn_io::read::read_file`]).
///
/// # Examples
///
/// ```
/// use std::path::Path;
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn");
/// let file = bnn_core::format::load(Path::new(path))?;
/// assert_eq!(file.model.input_len(), 784);
/// assert_eq!(file.model.num_classes(), 10);
///
/// let missing = bnn_core::format::load(Path::new("no/such/model.bnn"));
/// assert!(matches!(missing, Err(bnn_core::Error::Io { .. })));
/// # Ok::<(), bnn_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, and [`Error::Format`] when
/// its bytes are not a valid model (see [`from_bytes`]); both name the
/// file.
pub fn load(path: &Path) -> Result<ModelFile> {
    let bytes =
        bnn_io::read::read_file(path, MAX_FILE, wanted).map_err(|failure| match failure {
            bnn_io::read::ReadFailure::Io(error) => Error::Io {
                path: path.to_path_buf(),
                error,
            },
            bnn_io::read::ReadFailure::Problem(problem) => format_error(path, problem),
        })?;
    from_bytes(&bytes, path)
}

fn format_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Why the start of a file is not (yet) a model's header.
pub enum Parse {
    /// Too few bytes to judge: `need` in all would let parsing go on.
    Short {
        /// Bytes of the file, from its start, the parser needs next.
        need: u64,
        /// What the file lacks, for the error when no more bytes come.
        problem: String,
    },
    /// The bytes seen are not a valid model.
    Bad(String),
}

impl Parse {
    /// A file of `have` bytes that must reach `need` bytes to go on;
    /// `reason` says what ends there ("the header alone needs 24").
    pub fn short(have: usize, need: u64, reason: impl std::fmt::Display) -> Parse {
        Parse::Short {
            need,
            problem: format!("truncated: {have} bytes, {reason}"),
        }
    }

    /// The message for a file that ends here.
    pub fn into_problem(self) -> String {
        match self {
            Parse::Short { problem, .. } | Parse::Bad(problem) => problem,
        }
    }
}

/// Judges the magic bytes of a model file: `Ok` when `bytes` start with
/// `magic`, [`Parse::Short`] while they are still a prefix of it. `what`
/// names the format for the message. A model of the other kind of this
/// workspace is named as such, so that its user learns which command reads
/// it.
pub fn check_magic(bytes: &[u8], magic: &[u8; 8], what: &str) -> std::result::Result<(), Parse> {
    let n = bytes.len().min(magic.len());
    if bytes[..n] != magic[..n] {
        let other = if bytes.starts_with(&FP32_MAGIC) && magic != &FP32_MAGIC {
            "; this is an FP32 model (.f32), which only `bnn bench` runs"
        } else if bytes.starts_with(&MAGIC) && magic != &MAGIC {
            "; this is a 1-bit model (.bnn)"
        } else {
            ""
        };
        return Err(Parse::Bad(format!("not {what} (wrong magic bytes){other}")));
    }
    if n < magic.len() {
        return Err(Parse::Short {
            need: magic.len() as u64,
            problem: if n == 0 {
                "truncated: the file is empty".to_string()
            } else {
                format!("truncated: {n} bytes, shorter than the magic bytes of {what}")
            },
        });
    }
    Ok(())
}

/// Judges the start of a model file: its magic (see [`check_magic`]), then
/// whether the fixed header of `header_len` bytes is all there.
pub fn check_start(
    bytes: &[u8],
    magic: &[u8; 8],
    what: &str,
    header_len: usize,
) -> std::result::Result<(), Parse> {
    check_magic(bytes, magic, what)?;
    if bytes.len() < header_len {
        let reason = format!("the header alone needs {header_len}");
        return Err(Parse::short(bytes.len(), header_len as u64, reason));
    }
    Ok(())
}

/// How much a staged read (see [`bnn_io::read::read_file`]) must read next,
/// given what a layout parser made of the bytes so far and how it tells the
/// whole file's size.
pub fn want<T>(parsed: std::result::Result<T, Parse>, total: impl FnOnce(&T) -> u64) -> Want {
    match parsed {
        Ok(layout) => Want::Exactly(total(&layout)),
        Err(Parse::Short { need, .. }) => Want::AtLeast(need),
        Err(Parse::Bad(_)) => Want::Stop,
    }
}

/// The magic bytes of the FP32 model file. That format belongs to
/// `bnn-fp32` (`bnn_fp32::format::MAGIC`), which depends on this crate, so
/// this crate cannot name its constant: the bytes are repeated here only so
/// that [`check_magic`] can tell a user who hands an FP32 model to the
/// `.bnn` reader (or to a checkpoint reader) which command runs it. A test
/// in `bnn-fp32` checks that the two agree.
const FP32_MAGIC: [u8; 8] = *b"\x89BNNF32\n";

struct LayerEntry {
    outputs: usize,
    kind: u8,
    /// Bytes per threshold (hidden layers): 2 or 4.
    width: u8,
}

/// What the header and layer table say, checked, before any weight is read.
struct Layout {
    rule: DecisionRule,
    input_threshold: u8,
    input_len: u32,
    description_len: u32,
    entries: Vec<LayerEntry>,
    table_end: usize,
    /// The whole file's size, checksum included.
    expected: u64,
}

fn layout(bytes: &[u8]) -> std::result::Result<Layout, Parse> {
    check_start(bytes, &MAGIC, "a .bnn model file", HEADER_LEN)?;
    let bad = |problem: String| Parse::Bad(problem);
    let mut r = Cursor::new(&bytes[MAGIC.len()..HEADER_LEN]);
    let version = r.read_u16::<LE>().expect("header length checked");
    if version != VERSION {
        return Err(bad(format!(
            "unsupported format version {version} (this build reads {VERSION} to {LATEST_VERSION})"
        )));
    }
    let rule = match r.read_u8().expect("header length checked") {
        0 => DecisionRule::Scores,
        1 => DecisionRule::Seed,
        other => return Err(bad(format!("unknown decision rule code {other}"))),
    };
    let input_threshold = r.read_u8().expect("header length checked");
    let input_len = r.read_u32::<LE>().expect("header length checked");
    let layer_count = r.read_u32::<LE>().expect("header length checked");
    let description_len = r.read_u32::<LE>().expect("header length checked");
    let (table_end, mut expected) = table_bounds(
        bytes,
        (HEADER_LEN, LAYER_ENTRY_LEN),
        input_len,
        layer_count,
        description_len,
    )?;

    // The layer table, and from it the exact file size, before allocating.
    let mut entries = Vec::with_capacity(layer_count as usize);
    let mut t = Cursor::new(&bytes[HEADER_LEN..table_end]);
    let mut inputs = u64::from(input_len);
    for i in 0..layer_count {
        let outputs = t.read_u32::<LE>().expect("table length checked");
        let kind = t.read_u8().expect("table length checked");
        let width = t.read_u8().expect("table length checked");
        let reserved = t.read_u16::<LE>().expect("table length checked");
        if outputs == 0 || outputs > MAX_WIDTH {
            return Err(bad(format!(
                "layer {} has {outputs} neurons, out of range 1..={MAX_WIDTH}",
                i + 1
            )));
        }
        let last = i + 1 == layer_count;
        let valid = if last {
            kind == KIND_SCORES && width == 0
        } else {
            kind == KIND_SIGN && (width == 2 || width == 4)
        };
        if !valid || reserved != 0 {
            return Err(bad(format!(
                "layer {} has an invalid kind, threshold width or reserved bytes",
                i + 1
            )));
        }
        let m = u64::from(outputs);
        expected = expected
            .checked_add(layer_body_bytes(m, inputs, last, width))
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| bad("layer sizes overflow the largest accepted file".into()))?;
        entries.push(LayerEntry {
            outputs: outputs as usize,
            kind,
            width,
        });
        inputs = m;
    }
    Ok(Layout {
        rule,
        input_threshold,
        input_len,
        description_len,
        entries,
        table_end,
        expected,
    })
}

/// The version a file's header names, once its fixed part is all there.
fn version(bytes: &[u8]) -> std::result::Result<u16, Parse> {
    check_start(bytes, &MAGIC, "a .bnn model file", HEADER_LEN)?;
    Ok(u16::from_le_bytes([
        bytes[MAGIC.len()],
        bytes[MAGIC.len() + 1],
    ]))
}

/// How much of a model file a staged read needs next, judged from the bytes
/// so far (see [`bnn_io::read::read_file`]): for a reader of either model
/// kind that must read its file once (a FIFO, a pipe).
pub fn wanted(bytes: &[u8]) -> Want {
    want(file_size(bytes), |&n| n)
}

/// Versions 2 and 3 share a layout (3 adds the sections).
fn is_v2_layout(version: u16) -> bool {
    version == v2::VERSION || version == v2::VERSION_3
}

/// The whole file's size as its header and layer table give it, whichever
/// version it is: what a staged read needs.
fn file_size(bytes: &[u8]) -> std::result::Result<u64, Parse> {
    if is_v2_layout(version(bytes)?) {
        v2::layout(bytes).map(|l| l.expected)
    } else {
        layout(bytes).map(|l| l.expected)
    }
}

/// Checks the counts a header gives and that the layer table after a header
/// of `header_len` bytes, `entry_len` bytes an entry, is all there. Returns
/// where the table ends and the file's size without its layer bodies
/// (header, table, description, checksum). Shared by both versions.
fn table_bounds(
    bytes: &[u8],
    (header_len, entry_len): (usize, usize),
    input_len: u32,
    layer_count: u32,
    description_len: u32,
) -> std::result::Result<(usize, u64), Parse> {
    check_counts(input_len, layer_count).map_err(Parse::Bad)?;
    if description_len > MAX_DESCRIPTION {
        return Err(Parse::Bad(format!(
            "description length {description_len} exceeds {MAX_DESCRIPTION}"
        )));
    }
    let table_end = header_len + layer_count as usize * entry_len;
    if bytes.len() < table_end {
        let reason = format!("the layer table of {layer_count} layers ends at {table_end}");
        return Err(Parse::short(bytes.len(), table_end as u64, reason));
    }
    Ok((table_end, table_end as u64 + u64::from(description_len) + 4))
}

/// Parses a model from bytes; `path` only names the source in errors.
///
/// # Examples
///
/// ```
/// use std::path::Path;
///
/// let bytes = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../weights/seed.bnn"));
/// let file = bnn_core::format::from_bytes(bytes, Path::new("seed.bnn"))?;
/// // Saved back, a model is the same bytes.
/// assert_eq!(bnn_core::format::to_bytes(&file.model, &file.description), bytes);
///
/// let e = bnn_core::format::from_bytes(&bytes[..100], Path::new("cut.bnn")).unwrap_err();
/// assert!(e.to_string().starts_with("cut.bnn: truncated"), "{e}");
/// # Ok::<(), bnn_core::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Format`], naming `path` and the problem, for bytes that are not
/// a whole, undamaged model of a version this build reads: wrong magic,
/// truncation, trailing bytes, a checksum mismatch, or a header or layer
/// out of range.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ModelFile> {
    let err = |problem: String| format_error(path, problem);
    if is_v2_layout(version(bytes).map_err(|p| err(p.into_problem()))?) {
        return v2::from_bytes(bytes, path);
    }
    let layout = layout(bytes).map_err(|p| err(p.into_problem()))?;
    let (input_len, entries, table_end) = (layout.input_len, layout.entries, layout.table_end);
    let body_end = check_length_and_crc(bytes, layout.expected).map_err(err)?;
    let actual = bytes.len() as u64;

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut description = vec![0u8; layout.description_len as usize];
    r.read_exact(&mut description).expect("size checked");
    let description =
        String::from_utf8(description).map_err(|_| err("description is not valid UTF-8".into()))?;
    let mut layers = Vec::with_capacity(entries.len());
    let mut inputs = input_len as usize;
    for (i, entry) in entries.iter().enumerate() {
        let m = entry.outputs;
        let (weights, transform) =
            read_layer_body(&mut r, m, inputs, entry.kind == KIND_SCORES, entry.width, i)
                .map_err(err)?;
        layers.push(
            BinaryDense::new(weights, transform)
                .map_err(|e| err(format!("layer {}: {e}", i + 1)))?,
        );
        inputs = entry.outputs;
    }
    let model = Model::new(
        input_len as usize,
        layout.input_threshold,
        layers,
        layout.rule,
    )
    .map_err(|e| err(e.to_string()))?;
    Ok(ModelFile {
        model,
        description,
        file_bytes: actual,
        version: VERSION,
        sections: Vec::new(),
    })
}

/// Checks the input length and layer count of a header against the limits
/// every model file of this workspace shares.
pub fn check_counts(input_len: u32, layer_count: u32) -> std::result::Result<(), String> {
    if input_len == 0 || input_len > MAX_WIDTH {
        return Err(format!(
            "input length {input_len} is out of range 1..={MAX_WIDTH}"
        ));
    }
    if layer_count == 0 || layer_count > MAX_LAYERS {
        return Err(format!(
            "layer count {layer_count} is out of range 1..={MAX_LAYERS}"
        ));
    }
    Ok(())
}

/// Checks a file whose last 4 bytes are the CRC-32 of the rest: its length
/// must be exactly the `expected` bytes its header describes, and the CRC
/// must match. Returns where the body ends (the CRC's offset). Shared by the
/// model files of this workspace, so they report damage the same way.
pub fn check_length_and_crc(bytes: &[u8], expected: u64) -> std::result::Result<usize, String> {
    let actual = bytes.len() as u64;
    if actual < expected || actual < 4 {
        return Err(format!(
            "truncated: {actual} bytes, the header describes {expected}"
        ));
    }
    if actual > expected {
        return Err(bnn_io::read::trailing_message(
            Some(actual - expected),
            expected,
        ));
    }
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt"
        ));
    }
    Ok(body_end)
}
