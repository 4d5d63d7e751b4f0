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

use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use crate::bits::{from_stream, to_stream, words_for, BitMatrix};
use crate::error::{Error, Result};
use crate::layer::{BinaryDense, Threshold, Transform};
use crate::model::{DecisionRule, Model};

/// The first eight bytes (PNG-style: a non-ASCII byte, the name, and line
/// ending bytes that reveal text-mode corruption).
pub const MAGIC: [u8; 8] = *b"\x89BNN\r\n\x1a\n";
/// The version of binary-input MLPs with a flat input, written for every
/// model it can express.
pub const VERSION: u16 = 1;
/// The newest version this build reads and writes.
pub const LATEST_VERSION: u16 = v2::VERSION;
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

pub mod v2;

/// A model as loaded from disk, with what the file said about itself.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub model: Model,
    /// Free text stored with the model (provenance, training command).
    pub description: String,
    /// Size of the file in bytes.
    pub file_bytes: u64,
}

/// Serialises a model, in version 1 when it can express the model.
pub fn to_bytes(model: &Model, description: &str) -> Vec<u8> {
    if v2::needed(model) {
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

/// Reads and checks a model file.
pub fn load(path: &Path) -> Result<ModelFile> {
    let bytes = bnn_io::read::read_file(path, MAX_FILE).map_err(|failure| match failure {
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

struct LayerEntry {
    outputs: usize,
    kind: u8,
    /// Bytes per threshold (hidden layers): 2 or 4.
    width: u8,
}

/// Parses a model from bytes; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ModelFile> {
    let err = |problem: String| format_error(path, problem);
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(err("not a .bnn model file (wrong magic bytes)".into()));
    }
    if bytes.len() < HEADER_LEN {
        return Err(err(format!(
            "truncated: {} bytes, the header alone needs {HEADER_LEN}",
            bytes.len()
        )));
    }
    let mut r = Cursor::new(&bytes[MAGIC.len()..HEADER_LEN]);
    let version = r.read_u16::<LE>().expect("header length checked");
    if version == v2::VERSION {
        return v2::from_bytes(bytes, path);
    }
    if version != VERSION {
        return Err(err(format!(
            "unsupported format version {version} (this build reads {VERSION} and {LATEST_VERSION})"
        )));
    }
    let rule = match r.read_u8().expect("header length checked") {
        0 => DecisionRule::Scores,
        1 => DecisionRule::Seed,
        other => return Err(err(format!("unknown decision rule code {other}"))),
    };
    let input_threshold = r.read_u8().expect("header length checked");
    let input_len = r.read_u32::<LE>().expect("header length checked");
    let layer_count = r.read_u32::<LE>().expect("header length checked");
    let description_len = r.read_u32::<LE>().expect("header length checked");
    check_counts(input_len, layer_count).map_err(err)?;
    if description_len > MAX_DESCRIPTION {
        return Err(err(format!(
            "description length {description_len} exceeds {MAX_DESCRIPTION}"
        )));
    }
    let table_end = HEADER_LEN + layer_count as usize * LAYER_ENTRY_LEN;
    if bytes.len() < table_end {
        return Err(err(format!(
            "truncated: {} bytes, the layer table of {layer_count} layers ends at {table_end}",
            bytes.len()
        )));
    }

    // The layer table, and from it the exact file size, before allocating.
    let mut entries = Vec::with_capacity(layer_count as usize);
    let mut t = Cursor::new(&bytes[HEADER_LEN..table_end]);
    let mut expected = table_end as u64 + u64::from(description_len) + 4;
    let mut inputs = u64::from(input_len);
    for i in 0..layer_count {
        let outputs = t.read_u32::<LE>().expect("table length checked");
        let kind = t.read_u8().expect("table length checked");
        let width = t.read_u8().expect("table length checked");
        let reserved = t.read_u16::<LE>().expect("table length checked");
        if outputs == 0 || outputs > MAX_WIDTH {
            return Err(err(format!(
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
            return Err(err(format!(
                "layer {} has an invalid kind, threshold width or reserved bytes",
                i + 1
            )));
        }
        let m = u64::from(outputs);
        expected = expected
            .checked_add(layer_body_bytes(m, inputs, last, width))
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| err("layer sizes overflow the largest accepted file".into()))?;
        entries.push(LayerEntry {
            outputs: outputs as usize,
            kind,
            width,
        });
        inputs = m;
    }
    let body_end = check_length_and_crc(bytes, expected).map_err(err)?;
    let actual = bytes.len() as u64;

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut description = vec![0u8; description_len as usize];
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
    let model = Model::new(input_len as usize, input_threshold, layers, rule)
        .map_err(|e| err(e.to_string()))?;
    Ok(ModelFile {
        model,
        description,
        file_bytes: actual,
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
        return Err(format!(
            "{} bytes of trailing data after the {expected} bytes the header describes",
            actual - expected
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
