//! The FP32 model file (see `docs/FP32_FORMAT.md`): a fixed little-endian
//! header, a table of layer widths, each layer's f32 weights and biases, and
//! a CRC-32 of everything before it.
//!
//! Loading never trusts the header: the size it implies is computed with
//! checked arithmetic and compared with the real file length before any
//! buffer is sized from it, so a corrupt header is an error, not a
//! multi-gigabyte allocation.

use std::io::Cursor;
use std::path::Path;

use bnn_core::DecisionRule;
use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use crate::error::Fp32Error;
use crate::model::{DenseF32, Fp32Model, Hidden, InputTransform};

/// The first eight bytes: a non-ASCII byte, the name, and a line feed that
/// reveals text-mode corruption.
pub const MAGIC: [u8; 8] = *b"\x89BNNF32\n";
/// The one version this build reads and writes.
pub const VERSION: u16 = 1;
/// Fixed header bytes before the layer table.
pub const HEADER_LEN: usize = 24;
/// Largest accepted layer width or input length.
pub const MAX_WIDTH: u32 = bnn_core::format::MAX_WIDTH;
/// Largest accepted number of layers.
pub const MAX_LAYERS: u32 = bnn_core::format::MAX_LAYERS;
/// Largest accepted file.
pub const MAX_FILE: u64 = 1 << 32;

const INPUT_NORMALIZE: u8 = 0;
const INPUT_BINARIZE: u8 = 1;
const INPUT_PIXEL: u8 = 2;
const HIDDEN_RELU: u8 = 0;
const HIDDEN_SIGN: u8 = 1;
/// Same codes as the `.bnn` file.
const RULE_SCORES: u8 = 0;
const RULE_SEED: u8 = 1;

/// The size of a model's file: header, width table, parameters, checksum.
pub fn encoded_len(model: &Fp32Model) -> usize {
    HEADER_LEN + 4 * model.layers().len() + model.weight_bytes() + 4
}

/// Serialises a model.
pub fn to_bytes(model: &Fp32Model) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(model));
    out.extend_from_slice(&MAGIC);
    // Writes into a Vec cannot fail.
    let w = &mut out;
    w.write_u16::<LE>(VERSION).unwrap();
    let (input, threshold) = match model.input() {
        InputTransform::Normalize => (INPUT_NORMALIZE, 0),
        InputTransform::Binarize { threshold } => (INPUT_BINARIZE, threshold),
        InputTransform::Pixel => (INPUT_PIXEL, 0),
    };
    w.write_u8(input).unwrap();
    w.write_u8(threshold).unwrap();
    w.write_u8(match model.hidden() {
        Hidden::Relu => HIDDEN_RELU,
        Hidden::Sign => HIDDEN_SIGN,
    })
    .unwrap();
    w.write_u8(match model.rule() {
        DecisionRule::Scores => RULE_SCORES,
        DecisionRule::Seed => RULE_SEED,
    })
    .unwrap();
    w.write_u16::<LE>(0).unwrap();
    w.write_u32::<LE>(model.input_len() as u32).unwrap();
    w.write_u32::<LE>(model.layers().len() as u32).unwrap();
    for layer in model.layers() {
        w.write_u32::<LE>(layer.outputs as u32).unwrap();
    }
    for layer in model.layers() {
        for &v in layer.weights.iter().chain(&layer.bias) {
            w.write_f32::<LE>(v).unwrap();
        }
    }
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).unwrap();
    out
}

impl Fp32Model {
    /// Writes the model atomically: an existing file is replaced whole or
    /// not at all.
    pub fn save(&self, path: &Path) -> Result<(), Fp32Error> {
        if let Some(w) = self.shape().into_iter().find(|&w| w > MAX_WIDTH as usize) {
            return Err(format_error(
                path,
                format!("a layer of width {w} exceeds the format's limit of {MAX_WIDTH}"),
            ));
        }
        if self.layers().len() > MAX_LAYERS as usize {
            return Err(format_error(
                path,
                format!(
                    "{} layers exceed the format's limit of {MAX_LAYERS}",
                    self.layers().len()
                ),
            ));
        }
        let size = encoded_len(self);
        if size as u64 > MAX_FILE {
            return Err(format_error(
                path,
                format!("{size} bytes exceed the format's limit of {MAX_FILE}"),
            ));
        }
        bnn_io::write::write_file(path, &to_bytes(self)).map_err(|source| Fp32Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Fp32Model, Fp32Error> {
        use bnn_io::read::{read_file, ReadFailure};
        let bytes = read_file(path, MAX_FILE).map_err(|failure| match failure {
            ReadFailure::Io(source) => Fp32Error::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadFailure::Problem(problem) => format_error(path, problem),
        })?;
        from_bytes(&bytes, path)
    }
}

fn format_error(path: &Path, problem: impl Into<String>) -> Fp32Error {
    Fp32Error::Format {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Parses a model from bytes; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Fp32Model, Fp32Error> {
    let err = |problem: String| format_error(path, problem);
    if bytes.len() < MAGIC.len() {
        return Err(err(if MAGIC.starts_with(bytes) {
            format!("truncated: {} bytes, shorter than the magic", bytes.len())
        } else {
            "not an FP32 model file (wrong magic bytes)".into()
        }));
    }
    if bytes[..MAGIC.len()] != MAGIC {
        return Err(err("not an FP32 model file (wrong magic bytes)".into()));
    }
    if bytes.len() < HEADER_LEN {
        return Err(err(format!(
            "truncated: {} bytes, the header alone needs {HEADER_LEN}",
            bytes.len()
        )));
    }
    let mut r = Cursor::new(&bytes[MAGIC.len()..HEADER_LEN]);
    let mut read_u8 = || r.read_u8().expect("header length checked");
    let (v0, v1) = (read_u8(), read_u8());
    let version = u16::from_le_bytes([v0, v1]);
    if version != VERSION {
        return Err(err(format!(
            "unsupported FP32 format version {version} (this build reads {VERSION})"
        )));
    }
    let input = match (read_u8(), read_u8()) {
        (INPUT_NORMALIZE, 0) => InputTransform::Normalize,
        (INPUT_NORMALIZE, t) => {
            return Err(err(format!(
                "normalized input with a nonzero threshold byte {t}"
            )))
        }
        (INPUT_BINARIZE, threshold) => InputTransform::Binarize { threshold },
        (INPUT_PIXEL, 0) => InputTransform::Pixel,
        (INPUT_PIXEL, t) => {
            return Err(err(format!(
                "pixel-value input with a nonzero threshold byte {t}"
            )))
        }
        (other, _) => return Err(err(format!("unknown input transform code {other}"))),
    };
    let hidden = match read_u8() {
        HIDDEN_RELU => Hidden::Relu,
        HIDDEN_SIGN => Hidden::Sign,
        other => return Err(err(format!("unknown hidden activation code {other}"))),
    };
    let rule = match read_u8() {
        RULE_SCORES => DecisionRule::Scores,
        RULE_SEED => DecisionRule::Seed,
        other => return Err(err(format!("unknown decision rule code {other}"))),
    };
    if (read_u8(), read_u8()) != (0, 0) {
        return Err(err("reserved header bytes are not zero".into()));
    }
    let input_len = r.read_u32::<LE>().expect("header length checked");
    let layer_count = r.read_u32::<LE>().expect("header length checked");
    bnn_core::format::check_counts(input_len, layer_count).map_err(err)?;
    let table_end = HEADER_LEN + 4 * layer_count as usize;
    if bytes.len() < table_end {
        return Err(err(format!(
            "truncated: {} bytes, the table of {layer_count} layers ends at {table_end}",
            bytes.len()
        )));
    }

    // The layer table, and from it the exact file size, before allocating.
    let mut t = Cursor::new(&bytes[HEADER_LEN..table_end]);
    let mut shapes = Vec::with_capacity(layer_count as usize);
    let mut expected = table_end as u64 + 4;
    let mut inputs = u64::from(input_len);
    for i in 0..layer_count {
        let outputs = t.read_u32::<LE>().expect("table length checked");
        if outputs == 0 || outputs > MAX_WIDTH {
            return Err(err(format!(
                "layer {} has {outputs} neurons, out of range 1..={MAX_WIDTH}",
                i + 1
            )));
        }
        let outputs = u64::from(outputs);
        // Both factors are at most 2^24, so the product cannot overflow.
        expected = (outputs * (inputs + 1))
            .checked_mul(4)
            .and_then(|layer| expected.checked_add(layer))
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| err("layer sizes exceed the largest accepted file".into()))?;
        shapes.push((inputs as usize, outputs as usize));
        inputs = outputs;
    }
    let body_end = bnn_core::format::check_length_and_crc(bytes, expected).map_err(err)?;

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut layers = Vec::with_capacity(shapes.len());
    for (i, &(inputs, outputs)) in shapes.iter().enumerate() {
        let mut weights = vec![0f32; inputs * outputs];
        r.read_f32_into::<LE>(&mut weights).expect("size checked");
        let mut bias = vec![0f32; outputs];
        r.read_f32_into::<LE>(&mut bias).expect("size checked");
        if let Some(k) = weights.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "layer {} weight {k} (neuron {}, input {}) is {}",
                i + 1,
                k / inputs,
                k % inputs,
                weights[k]
            )));
        }
        if let Some(j) = bias.iter().position(|v| !v.is_finite()) {
            return Err(err(format!("layer {} bias {j} is {}", i + 1, bias[j])));
        }
        layers.push(DenseF32 {
            inputs,
            outputs,
            weights,
            bias,
        });
    }
    Fp32Model::new(input, hidden, layers, rule).map_err(|e| err(e.to_string()))
}
