//! The FP32 model file (see `docs/FP32_FORMAT.md`): a fixed little-endian
//! header, a table of layers, each layer's f32 parameters, and a CRC-32 of
//! everything before it. An MLP is written as version 1, a network with
//! convolutions as version 2 (the input's shape and a richer layer table),
//! so that every MLP file stays what earlier builds wrote and read.
//!
//! Loading never trusts the header: the size it implies is computed with
//! checked arithmetic and compared with the real file length before any
//! buffer is sized from it, so a corrupt header is an error, not a
//! multi-gigabyte allocation.

use std::io::Cursor;
use std::path::Path;

use bnn_core::format::Parse;
use bnn_core::DecisionRule;
use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use crate::conv::{ConvF32, MapShape, Padding};
use crate::error::Fp32Error;
use crate::model::{DenseF32, Fp32Model, Hidden, InputTransform};

/// The first eight bytes: a non-ASCII byte, the name, and a line feed that
/// reveals text-mode corruption.
pub const MAGIC: [u8; 8] = *b"\x89BNNF32\n";
/// The version of MLP files.
pub const VERSION: u16 = 1;
/// The version of files with convolutions.
pub const CONV_VERSION: u16 = 2;
/// Fixed header bytes before the layer table (version 1; version 2 adds
/// the input shape, [`SHAPE_LEN`] bytes).
pub const HEADER_LEN: usize = 24;
/// Version 2's input shape: height, width, channels.
pub const SHAPE_LEN: usize = 12;
/// Bytes per version-2 layer-table entry.
pub const ENTRY_LEN: usize = 12;
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
const KIND_DENSE: u8 = 0;
const KIND_CONV: u8 = 1;
const PAD_SAME: u8 = 0;
const PAD_VALID: u8 = 1;

/// The size of a model's file: header, layer table, parameters, checksum.
pub fn encoded_len(model: &Fp32Model) -> usize {
    let layers = model.convs().len() + model.layers().len();
    let table = if model.convs().is_empty() {
        4 * layers
    } else {
        SHAPE_LEN + ENTRY_LEN * layers
    };
    HEADER_LEN + table + model.weight_bytes() + 4
}

/// Serialises a model.
pub fn to_bytes(model: &Fp32Model) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(model));
    out.extend_from_slice(&MAGIC);
    // Writes into a Vec cannot fail.
    let w = &mut out;
    let conv = !model.convs().is_empty();
    w.write_u16::<LE>(if conv { CONV_VERSION } else { VERSION })
        .unwrap();
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
    let layers = model.convs().len() + model.layers().len();
    w.write_u32::<LE>(layers as u32).unwrap();
    if let Some(shape) = model.input_shape() {
        for d in [shape.height, shape.width, shape.channels] {
            w.write_u32::<LE>(d as u32).unwrap();
        }
        for c in model.convs() {
            w.write_u8(KIND_CONV).unwrap();
            w.write_u8(c.kernel as u8).unwrap();
            // The pad value, stored below, says what a padded position
            // reads: zero padding is `same` with 0.
            w.write_u8(match c.padding {
                Padding::Same | Padding::Zero => PAD_SAME,
                Padding::Valid => PAD_VALID,
            })
            .unwrap();
            w.write_u8(u8::from(c.pool)).unwrap();
            w.write_u32::<LE>(c.outputs as u32).unwrap();
            w.write_f32::<LE>(c.pad_value).unwrap();
        }
        for layer in model.layers() {
            w.write_u8(KIND_DENSE).unwrap();
            w.extend_from_slice(&[0; 3]);
            w.write_u32::<LE>(layer.outputs as u32).unwrap();
            w.write_f32::<LE>(0.0).unwrap();
        }
    } else {
        for layer in model.layers() {
            w.write_u32::<LE>(layer.outputs as u32).unwrap();
        }
    }
    for c in model.convs() {
        for &v in c.weights.iter().chain(&c.scale).chain(&c.bias) {
            w.write_f32::<LE>(v).unwrap();
        }
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
        let layers = self.convs().len() + self.layers().len();
        if layers > MAX_LAYERS as usize {
            return Err(format_error(
                path,
                format!("{layers} layers exceed the format's limit of {MAX_LAYERS}"),
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

    /// Reads and checks a model file, reading no further than its header
    /// says it reaches (see [`bnn_io::read::read_file`]).
    pub fn load(path: &Path) -> Result<Fp32Model, Fp32Error> {
        use bnn_io::read::{read_file, ReadFailure};
        let bytes = read_file(path, MAX_FILE, wanted).map_err(|failure| match failure {
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

/// What the header and width table say, checked, before any value is read.
struct Layout {
    input: InputTransform,
    hidden: Hidden,
    rule: DecisionRule,
    /// The convolutions' shape fields (parameters still empty).
    convs: Vec<ConvF32>,
    /// (inputs, outputs) per dense layer.
    shapes: Vec<(usize, usize)>,
    table_end: usize,
    /// The whole file's size, checksum included.
    expected: u64,
}

/// How much of an FP32 model file a staged read needs next, judged from the
/// bytes so far (see [`bnn_io::read::read_file`]).
pub fn wanted(bytes: &[u8]) -> bnn_io::read::Want {
    bnn_core::format::want(layout(bytes), |l| l.expected)
}

fn layout(bytes: &[u8]) -> Result<Layout, Parse> {
    bnn_core::format::check_start(bytes, &MAGIC, "an FP32 model file", HEADER_LEN)?;
    let bad = |problem: String| Parse::Bad(problem);
    let header = header(bytes)?;
    let (input_len, layer_count) = (header.input_len, header.layer_count);
    let (shape, entry) = if header.version == VERSION {
        (None, 4)
    } else {
        (Some(input_shape(bytes, input_len)?), ENTRY_LEN)
    };
    let table_start = HEADER_LEN + if shape.is_some() { SHAPE_LEN } else { 0 };
    let table_end = table_start + entry * layer_count as usize;
    if bytes.len() < table_end {
        let reason = format!("the table of {layer_count} layers ends at {table_end}");
        return Err(Parse::short(bytes.len(), table_end as u64, reason));
    }

    // The layer table, and from it the exact file size, before allocating.
    let mut t = Cursor::new(&bytes[table_start..table_end]);
    let mut convs: Vec<ConvF32> = Vec::new();
    let mut shapes = Vec::with_capacity(layer_count as usize);
    let mut expected = table_end as u64 + 4;
    let mut inputs = u64::from(input_len);
    let mut map = shape;
    for i in 0..layer_count {
        let n = i as usize + 1;
        let e = read_entry(&mut t, shape.is_some());
        if e.outputs == 0 || e.outputs > MAX_WIDTH {
            let what = if e.kind == KIND_CONV {
                "channels"
            } else {
                "neurons"
            };
            return Err(bad(format!(
                "layer {n} has {} {what}, out of range 1..={MAX_WIDTH}",
                e.outputs
            )));
        }
        let params = match e.kind {
            KIND_CONV => {
                let spec = conv_entry(n, &e, map)?;
                let out = spec.output();
                map = Some(out);
                inputs = out.values().expect("checked with the layer") as u64;
                // window ≤ 2^26 (the im2col limit) and outputs ≤ 2^24.
                let params = u64::from(e.outputs) * (spec.window() as u64 + 2);
                convs.push(spec);
                params
            }
            KIND_DENSE => {
                check_dense_entry(n, &e, shape.is_some())?;
                map = None;
                let o = u64::from(e.outputs);
                shapes.push((inputs as usize, o as usize));
                inputs = o;
                // Both factors are at most 2^24, so the product cannot overflow.
                o * (shapes.last().unwrap().0 as u64 + 1)
            }
            other => return Err(bad(format!("layer {n} has unknown kind code {other}"))),
        };
        expected = params
            .checked_mul(4)
            .and_then(|layer| expected.checked_add(layer))
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| bad("layer sizes exceed the largest accepted file".into()))?;
    }
    if shapes.is_empty() {
        return Err(bad("the last layer is not a dense layer".into()));
    }
    Ok(Layout {
        input: header.input,
        hidden: header.hidden,
        rule: header.rule,
        convs,
        shapes,
        table_end,
        expected,
    })
}

/// The fixed header after the magic, its codes and counts checked.
struct Header {
    version: u16,
    input: InputTransform,
    hidden: Hidden,
    rule: DecisionRule,
    input_len: u32,
    layer_count: u32,
}

/// Reads the fixed header of a file whose first [`HEADER_LEN`] bytes are
/// there, checking each field in file order so that the first bad one is
/// the one named.
fn header(bytes: &[u8]) -> Result<Header, Parse> {
    let bad = |problem: String| Parse::Bad(problem);
    let mut r = Cursor::new(&bytes[MAGIC.len()..HEADER_LEN]);
    let mut read_u8 = || r.read_u8().expect("header length checked");
    let (v0, v1) = (read_u8(), read_u8());
    let version = u16::from_le_bytes([v0, v1]);
    if version != VERSION && version != CONV_VERSION {
        return Err(bad(format!(
            "unsupported FP32 format version {version} (this build reads {VERSION} and {CONV_VERSION})"
        )));
    }
    let input = match (read_u8(), read_u8()) {
        (INPUT_NORMALIZE, 0) => InputTransform::Normalize,
        (INPUT_NORMALIZE, t) => {
            return Err(bad(format!(
                "normalized input with a nonzero threshold byte {t}"
            )))
        }
        (INPUT_BINARIZE, threshold) => InputTransform::Binarize { threshold },
        (INPUT_PIXEL, 0) => InputTransform::Pixel,
        (INPUT_PIXEL, t) => {
            return Err(bad(format!(
                "pixel-value input with a nonzero threshold byte {t}"
            )))
        }
        (other, _) => return Err(bad(format!("unknown input transform code {other}"))),
    };
    let hidden = match read_u8() {
        HIDDEN_RELU => Hidden::Relu,
        HIDDEN_SIGN => Hidden::Sign,
        other => return Err(bad(format!("unknown hidden activation code {other}"))),
    };
    let rule = match read_u8() {
        RULE_SCORES => DecisionRule::Scores,
        RULE_SEED => DecisionRule::Seed,
        other => return Err(bad(format!("unknown decision rule code {other}"))),
    };
    if (read_u8(), read_u8()) != (0, 0) {
        return Err(bad("reserved header bytes are not zero".into()));
    }
    let input_len = r.read_u32::<LE>().expect("header length checked");
    let layer_count = r.read_u32::<LE>().expect("header length checked");
    bnn_core::format::check_counts(input_len, layer_count).map_err(bad)?;
    Ok(Header {
        version,
        input,
        hidden,
        rule,
        input_len,
        layer_count,
    })
}

/// One layer-table entry as stored. A version-1 entry holds only the
/// outputs (every layer is dense); the other fields then read as zero.
struct Entry {
    kind: u8,
    kernel: u8,
    padding: u8,
    pool: u8,
    outputs: u32,
    pad_value: f32,
}

/// Reads the next entry of a table whose length has been checked.
fn read_entry(t: &mut Cursor<&[u8]>, version_2: bool) -> Entry {
    if !version_2 {
        let outputs = t.read_u32::<LE>().expect("table length checked");
        return Entry {
            kind: KIND_DENSE,
            kernel: 0,
            padding: 0,
            pool: 0,
            outputs,
            pad_value: 0.0,
        };
    }
    let mut b = [0u8; 4];
    std::io::Read::read_exact(t, &mut b).expect("table length checked");
    let outputs = t.read_u32::<LE>().expect("table length checked");
    let pad_value = t.read_f32::<LE>().expect("table length checked");
    Entry {
        kind: b[0],
        kernel: b[1],
        padding: b[2],
        pool: b[3],
        outputs,
        pad_value,
    }
}

/// The shape of the convolution that entry `n` describes, over the map
/// `map` the layers before it produce (`None` after a dense layer), its
/// parameters still empty.
fn conv_entry(n: usize, e: &Entry, map: Option<MapShape>) -> Result<ConvF32, Parse> {
    let bad = |problem: String| Parse::Bad(problem);
    let Some(input) = map else {
        return Err(bad(format!(
            "layer {n} is a convolution after a dense layer"
        )));
    };
    let padding = match e.padding {
        PAD_SAME => Padding::Same,
        PAD_VALID => Padding::Valid,
        other => return Err(bad(format!("layer {n} has unknown padding code {other}"))),
    };
    if e.pool > 1 {
        return Err(bad(format!(
            "layer {n} has pool flag {}, not 0 or 1",
            e.pool
        )));
    }
    if !e.pad_value.is_finite() {
        return Err(bad(format!("layer {n} pad value is {}", e.pad_value)));
    }
    let spec = ConvF32 {
        input,
        kernel: usize::from(e.kernel),
        outputs: e.outputs as usize,
        padding,
        pad_value: e.pad_value,
        pool: e.pool == 1,
        weights: Vec::new(),
        scale: Vec::new(),
        bias: Vec::new(),
    };
    spec.check_shape(n).map_err(bad)?;
    Ok(spec)
}

/// Checks that dense entry `n` uses none of a convolution's fields, and
/// that a version-2 file (`version_2`) does not start with it.
fn check_dense_entry(n: usize, e: &Entry, version_2: bool) -> Result<(), Parse> {
    if n == 1 && version_2 {
        return Err(Parse::Bad(
            "a version-2 file starts with a convolution (an MLP is version 1)".into(),
        ));
    }
    if (e.kernel, e.padding, e.pool, e.pad_value.to_bits()) != (0, 0, 0, 0) {
        return Err(Parse::Bad(format!(
            "dense layer {n} has nonzero kernel, padding, pool or pad fields"
        )));
    }
    Ok(())
}

/// Version 2's input shape, which must describe `input_len` values.
fn input_shape(bytes: &[u8], input_len: u32) -> Result<MapShape, Parse> {
    let end = HEADER_LEN + SHAPE_LEN;
    if bytes.len() < end {
        return Err(Parse::short(
            bytes.len(),
            end as u64,
            "the input shape ends at 36",
        ));
    }
    let mut r = Cursor::new(&bytes[HEADER_LEN..end]);
    let mut d = [0u32; 3];
    r.read_u32_into::<LE>(&mut d).expect("length checked");
    let product = d.iter().try_fold(1u64, |p, &v| p.checked_mul(u64::from(v)));
    if product != Some(u64::from(input_len)) {
        return Err(Parse::Bad(format!(
            "input shape {}×{}×{} does not hold the input length {input_len}",
            d[0], d[1], d[2]
        )));
    }
    Ok(MapShape::new(d[0] as usize, d[1] as usize, d[2] as usize))
}

/// Parses a model from bytes; `path` only names the source in errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Fp32Model, Fp32Error> {
    let err = |problem: String| format_error(path, problem);
    let layout = layout(bytes).map_err(|p| err(p.into_problem()))?;
    let (shapes, table_end) = (layout.shapes, layout.table_end);
    let body_end = bnn_core::format::check_length_and_crc(bytes, layout.expected).map_err(err)?;

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut read = |n: usize| {
        let mut v = vec![0f32; n];
        r.read_f32_into::<LE>(&mut v).expect("size checked");
        v
    };
    let mut convs = layout.convs;
    for c in &mut convs {
        c.weights = read(c.outputs * c.window());
        c.scale = read(c.outputs);
        c.bias = read(c.outputs);
    }
    let mut layers = Vec::with_capacity(shapes.len());
    for &(inputs, outputs) in &shapes {
        let weights = read(inputs * outputs);
        let bias = read(outputs);
        layers.push(DenseF32 {
            inputs,
            outputs,
            weights,
            bias,
        });
    }
    // The constructor names any NaN or infinity with its layer and place.
    Fp32Model::with_convs(layout.input, layout.hidden, convs, layers, layout.rule)
        .map_err(|e| err(e.to_string()))
}
