//! The `.bnn` model file (see `docs/FORMAT.md`): a versioned little-endian
//! header, a layer table, packed weight words and per-neuron thresholds or
//! biases, closed by a CRC-32 of everything before it.
//!
//! Loading never trusts the header: the size it implies is computed with
//! checked arithmetic and compared with the real file length before any
//! buffer is allocated from it, so a corrupt header is an error, not a
//! multi-gigabyte allocation.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use crate::bits::{words_for, BitMatrix};
use crate::error::{Error, Result};
use crate::layer::{BinaryDense, Threshold, Transform};
use crate::model::{DecisionRule, Model};

/// The first eight bytes (PNG-style: a non-ASCII byte, the name, and line
/// ending bytes that reveal text-mode corruption).
pub const MAGIC: [u8; 8] = *b"\x89BNN\r\n\x1a\n";
/// The one version this build reads and writes.
pub const VERSION: u16 = 1;
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

/// A model as loaded from disk, with what the file said about itself.
#[derive(Clone, Debug)]
pub struct ModelFile {
    pub model: Model,
    /// Free text stored with the model (provenance, training command).
    pub description: String,
    /// Size of the file in bytes.
    pub file_bytes: u64,
}

/// Serialises a model.
pub fn to_bytes(model: &Model, description: &str) -> Vec<u8> {
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
        w.write_u8(if layer.is_hidden() {
            KIND_SIGN
        } else {
            KIND_SCORES
        })
        .unwrap();
        w.extend_from_slice(&[0; 3]);
    }
    w.extend_from_slice(description.as_bytes());
    for layer in model.layers() {
        for &word in layer.weights().words() {
            w.write_u64::<LE>(word).unwrap();
        }
        match layer.transform() {
            Transform::Sign(thresholds) => {
                for t in thresholds {
                    w.write_i32::<LE>(t.value).unwrap();
                }
                for t in thresholds {
                    w.write_u8(u8::from(t.flip)).unwrap();
                }
            }
            Transform::Scores(bias) => {
                for &b in bias {
                    w.write_f32::<LE>(b).unwrap();
                }
            }
        }
    }
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).unwrap();
    out
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
    crate::atomic::write_file(path, &to_bytes(model, description)).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks a model file.
pub fn load(path: &Path) -> Result<ModelFile> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(format_error(path, "is a directory, not a model file"));
    }
    if meta.len() > MAX_FILE {
        return Err(format_error(
            path,
            format!("{} bytes is too large for a model file", meta.len()),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
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
    if version != VERSION {
        return Err(err(format!(
            "unsupported format version {version} (this build reads {VERSION})"
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
    if input_len == 0 || input_len > MAX_WIDTH {
        return Err(err(format!(
            "input length {input_len} is out of range 1..={MAX_WIDTH}"
        )));
    }
    if layer_count == 0 || layer_count > MAX_LAYERS {
        return Err(err(format!(
            "layer count {layer_count} is out of range 1..={MAX_LAYERS}"
        )));
    }
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
        let mut reserved = [0u8; 3];
        t.read_exact(&mut reserved).expect("table length checked");
        if outputs == 0 || outputs > MAX_WIDTH {
            return Err(err(format!(
                "layer {} has {outputs} neurons, out of range 1..={MAX_WIDTH}",
                i + 1
            )));
        }
        let last = i + 1 == layer_count;
        let want = if last { KIND_SCORES } else { KIND_SIGN };
        if kind != want || reserved != [0; 3] {
            return Err(err(format!(
                "layer {} has an invalid kind or reserved bytes",
                i + 1
            )));
        }
        let outputs = u64::from(outputs);
        let per_neuron = if last { 4 } else { 5 };
        let words = words_for(inputs as usize) as u64;
        expected = outputs
            .checked_mul(words * 8 + per_neuron)
            .and_then(|layer| expected.checked_add(layer))
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| err("layer sizes overflow the largest accepted file".into()))?;
        entries.push(LayerEntry {
            outputs: outputs as usize,
            kind,
        });
        inputs = outputs;
    }
    let actual = bytes.len() as u64;
    if actual < expected {
        return Err(err(format!(
            "truncated: {actual} bytes, the header describes {expected}"
        )));
    }
    if actual > expected {
        return Err(err(format!(
            "{} bytes of trailing data after the {expected} bytes the header describes",
            actual - expected
        )));
    }
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&bytes[..body_end]);
    if stored != computed {
        return Err(err(format!(
            "checksum mismatch (stored {stored:08x}, computed {computed:08x}): the file is corrupt"
        )));
    }

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut description = vec![0u8; description_len as usize];
    r.read_exact(&mut description).expect("size checked");
    let description =
        String::from_utf8(description).map_err(|_| err("description is not valid UTF-8".into()))?;
    let mut layers = Vec::with_capacity(entries.len());
    let mut inputs = input_len as usize;
    for (i, entry) in entries.iter().enumerate() {
        let n = entry.outputs * words_for(inputs);
        let mut words = vec![0u64; n];
        r.read_u64_into::<LE>(&mut words).expect("size checked");
        let weights = BitMatrix::from_words(entry.outputs, inputs, words)
            .map_err(|e| err(format!("layer {}: {e}", i + 1)))?;
        let transform = if entry.kind == KIND_SIGN {
            let mut values = vec![0i32; entry.outputs];
            r.read_i32_into::<LE>(&mut values).expect("size checked");
            let mut flips = vec![0u8; entry.outputs];
            r.read_exact(&mut flips).expect("size checked");
            if flips.iter().any(|&f| f > 1) {
                return Err(err(format!(
                    "layer {}: a flip flag is neither 0 nor 1",
                    i + 1
                )));
            }
            Transform::Sign(
                values
                    .into_iter()
                    .zip(flips)
                    .map(|(value, f)| Threshold {
                        value,
                        flip: f == 1,
                    })
                    .collect(),
            )
        } else {
            let mut bias = vec![0f32; entry.outputs];
            r.read_f32_into::<LE>(&mut bias).expect("size checked");
            Transform::Scores(bias)
        };
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

/// A path-less name for errors about in-memory bytes.
pub fn memory_path() -> PathBuf {
    PathBuf::from("<memory>")
}
