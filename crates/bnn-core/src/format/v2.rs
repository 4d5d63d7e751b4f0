//! Version 2 of the `.bnn` file: the input encoding (binary at a threshold,
//! or u8), the input shape `H×W×C`, and a layer table whose entries name
//! their kind: dense, convolution (kernel size and padding in its parameter
//! bytes) or 2×2 max pooling. Flatten needs no entry: a dense layer after a
//! map takes it in NHWC order. Dense and convolution bodies are those of
//! version 1 (a convolution is stored as its filters, one row of `k·k·C`
//! weights per output channel); pooling has no body.
//!
//! Version 3 is version 2 with metadata: a `u32` at offset 36 gives the
//! length of the tagged sections (see [`super::sections`]) that follow the
//! layer bodies, so the file's size still follows from the header and the
//! layer table alone. A model without metadata is never written as 3.

use std::io::{Cursor, Read};
use std::path::Path;

use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use super::sections::{self, SectionInfo};
use super::{
    check_length_and_crc, format_error, layer_body_bytes, read_layer_body, table_bounds,
    threshold_width, write_layer_body, ModelFile, Parse, MAGIC, MAX_FILE, MAX_WIDTH,
};
use crate::conv::{Conv2d, Layer, Padding, Shapes};
use crate::error::Result;
use crate::input::{InputEncoding, InputShape};
use crate::layer::{BinaryDense, Transform};
use crate::model::{DecisionRule, Model};
use crate::pixel::PixelDense;

/// The version field of a file whose model version 1 cannot express (a
/// pixel layer, a map input shape, convolutions) and that has no sections.
pub const VERSION: u16 = 2;
/// Version 2 with metadata sections.
pub const VERSION_3: u16 = 3;
/// Fixed header bytes before the layer table.
pub const HEADER_LEN: usize = 36;
/// Fixed header bytes of version 3: version 2's, then the sections' length.
pub const HEADER_LEN_3: usize = 40;
/// Bytes per layer-table entry.
pub const LAYER_ENTRY_LEN: usize = 16;

const ENCODING_BINARY: u8 = 0;
const ENCODING_U8: u8 = 1;
/// Dense, over the previous layer's bits or map (or over the input,
/// encoded as the header says, for the first layer).
const KIND_DENSE: u8 = 0;
/// A convolution; parameter byte 0 is the kernel size, byte 1 the padding.
const KIND_CONV: u8 = 1;
/// 2×2 max pooling, stride 2; parameter byte 0 is the window side, 2.
const KIND_POOL: u8 = 2;
const PAD_SAME: u8 = 0;
const PAD_VALID: u8 = 1;
const POOL_SIDE: u8 = 2;
const OUTPUT_SIGN: u8 = 0;
const OUTPUT_SCORES: u8 = 1;

/// Whether version 1 cannot express the model.
pub fn needed(model: &Model) -> bool {
    model.pixel_layer().is_some() || !model.input_shape().is_flat() || model.is_convolutional()
}

/// Writes version 2, or version 3 when the model carries metadata.
pub fn to_bytes(model: &Model, description: &str) -> Vec<u8> {
    let sections = sections::of_model(model);
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    // Writes into a Vec cannot fail.
    let w = &mut out;
    let version = if sections.is_empty() {
        VERSION
    } else {
        VERSION_3
    };
    w.write_u16::<LE>(version).unwrap();
    w.write_u8(match model.rule() {
        DecisionRule::Scores => 0,
        DecisionRule::Seed => 1,
    })
    .unwrap();
    match model.input_encoding() {
        InputEncoding::Binary { threshold } => w.extend_from_slice(&[ENCODING_BINARY, threshold]),
        InputEncoding::U8 => w.extend_from_slice(&[ENCODING_U8, 0]),
    }
    w.extend_from_slice(&[0; 3]);
    let shape = model.input_shape();
    for v in [shape.height, shape.width, shape.channels] {
        w.write_u32::<LE>(v).unwrap();
    }
    w.write_u32::<LE>(model.layer_count() as u32).unwrap();
    w.write_u32::<LE>(description.len() as u32).unwrap();
    if !sections.is_empty() {
        w.write_u32::<LE>(sections::total_len(&sections) as u32)
            .unwrap();
    }
    let layers = all_layers(model);
    for layer in &layers {
        let (kind, outputs, transform, params) = match layer {
            Written::Dense(outputs, transform, _) => {
                (KIND_DENSE, *outputs, Some(*transform), [0; 8])
            }
            Written::Conv(conv) => {
                // Zero padding has `same`'s geometry; the ZPAD section
                // says which convolutions read 0 at the border.
                let pad = match conv.padding() {
                    Padding::Same | Padding::Zero => PAD_SAME,
                    Padding::Valid => PAD_VALID,
                };
                let params = [conv.k() as u8, pad, 0, 0, 0, 0, 0, 0];
                (
                    KIND_CONV,
                    conv.out_channels(),
                    Some(conv.transform()),
                    params,
                )
            }
            Written::Pool(channels) => {
                (KIND_POOL, *channels, None, [POOL_SIDE, 0, 0, 0, 0, 0, 0, 0])
            }
        };
        let (output, width) = match transform {
            Some(Transform::Sign(t)) => (OUTPUT_SIGN, threshold_width(t)),
            Some(Transform::Scores(_)) => (OUTPUT_SCORES, 0),
            None => (OUTPUT_SIGN, 0),
        };
        w.extend_from_slice(&[kind, output, width, 0]);
        w.write_u32::<LE>(outputs as u32).unwrap();
        w.extend_from_slice(&params);
    }
    w.extend_from_slice(description.as_bytes());
    for layer in &layers {
        match layer {
            Written::Dense(_, transform, weights) => write_layer_body(w, weights, transform),
            Written::Conv(conv) => write_layer_body(w, &conv.weights(), conv.transform()),
            Written::Pool(_) => {}
        }
    }
    sections::write(w, &sections);
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).unwrap();
    out
}

/// One entry of the layer table, as written.
enum Written<'a> {
    Dense(usize, &'a Transform, crate::bits::BitMatrix),
    Conv(&'a Conv2d),
    /// The channels pooled.
    Pool(usize),
}

/// Every layer in file order: the pixel layer, each convolution and its
/// pool, the dense layers.
fn all_layers(model: &Model) -> Vec<Written<'_>> {
    let mut out = Vec::new();
    if let Some(l) = model.pixel_layer() {
        out.push(Written::Dense(l.outputs(), l.transform(), l.weights()));
    }
    for stage in model.convs() {
        out.push(Written::Conv(stage.conv()));
        if stage.pooled() {
            out.push(Written::Pool(stage.conv().out_channels()));
        }
    }
    for l in model.layers() {
        out.push(Written::Dense(l.outputs(), l.transform(), l.weights()));
    }
    out
}

enum EntryKind {
    Dense,
    Conv {
        k: usize,
        padding: Padding,
        in_channels: usize,
    },
    Pool,
}

struct Entry {
    kind: EntryKind,
    outputs: usize,
    /// Weights per neuron or filter.
    inputs: usize,
    scores: bool,
    width: u8,
}

/// What a version-2 header and layer table say, checked, before any weight
/// is read.
pub(super) struct Layout {
    rule: DecisionRule,
    encoding: InputEncoding,
    shape: InputShape,
    input_len: u32,
    description_len: u32,
    /// Bytes of metadata sections before the checksum (0 in version 2).
    sections_len: u32,
    entries: Vec<Entry>,
    table_end: usize,
    /// The whole file's size, checksum included.
    pub(super) expected: u64,
}

/// Parses the header and layer table of a version-2 or version-3 file (the
/// magic and version already checked), or says how many bytes it needs to
/// go on.
pub(super) fn layout(bytes: &[u8]) -> std::result::Result<Layout, Parse> {
    let err = Parse::Bad;
    let version = u16::from_le_bytes([bytes[MAGIC.len()], bytes[MAGIC.len() + 1]]);
    let header_len = if version == VERSION_3 {
        HEADER_LEN_3
    } else {
        HEADER_LEN
    };
    if bytes.len() < header_len {
        let reason = format!("the version-{version} header alone needs {header_len}");
        return Err(Parse::short(bytes.len(), header_len as u64, reason));
    }
    let header = header(&bytes[MAGIC.len() + 2..header_len], version)?;
    let (layer_count, sections_len) = (header.layer_count, header.sections_len);
    let (table_end, expected) = table_bounds(
        bytes,
        (header_len, LAYER_ENTRY_LEN),
        header.input_len,
        layer_count,
        header.description_len,
    )?;
    let mut expected = expected
        .checked_add(u64::from(sections_len))
        .filter(|&e| e <= MAX_FILE)
        .ok_or_else(|| {
            err(format!(
                "sections of {sections_len} bytes exceed the largest accepted file"
            ))
        })?;

    // The layer table, and from it the exact file size, before allocating.
    let mut entries = Vec::with_capacity(layer_count as usize);
    let mut t = Cursor::new(&bytes[header_len..table_end]);
    let mut shapes = Shapes::new(header.shape);
    for i in 0..layer_count {
        let raw = RawEntry::read(&mut t, i + 1, i + 1 == layer_count);
        let (n, last, width) = (raw.n, raw.last, raw.width);
        let entry = match raw.kind {
            KIND_DENSE => raw.dense(&mut shapes)?,
            KIND_CONV => raw.conv(&mut shapes)?,
            KIND_POOL => raw.pool(&mut shapes)?,
            other => {
                return Err(err(format!(
                    "layer {n} has unknown kind {other} (this build reads 0 = dense, 1 = convolution, 2 = max pool)"
                )))
            }
        };
        if last && !entry.scores {
            return Err(err(format!(
                "layer {n}, the last, must be a dense layer emitting scores"
            )));
        }
        if !matches!(entry.kind, EntryKind::Pool) {
            let (m, inputs) = (entry.outputs as u64, entry.inputs as u64);
            expected = expected
                .checked_add(layer_body_bytes(m, inputs, entry.scores, width))
                .filter(|&e| e <= MAX_FILE)
                .ok_or_else(|| err("layer sizes overflow the largest accepted file".into()))?;
        }
        entries.push(entry);
    }
    Ok(Layout {
        rule: header.rule,
        encoding: header.encoding,
        shape: header.shape,
        input_len: header.input_len,
        description_len: header.description_len,
        sections_len,
        entries,
        table_end,
        expected,
    })
}

/// The fixed header after the magic and version, its fields checked.
struct Header {
    rule: DecisionRule,
    encoding: InputEncoding,
    shape: InputShape,
    input_len: u32,
    layer_count: u32,
    description_len: u32,
    /// 0 in version 2, which has no sections.
    sections_len: u32,
}

/// Reads the header fields after the version (`fields`, all there), in file
/// order so that the first bad one is the one named.
fn header(fields: &[u8], version: u16) -> std::result::Result<Header, Parse> {
    let err = Parse::Bad;
    let mut r = Cursor::new(fields);
    let rule = match r.read_u8().expect("header length checked") {
        0 => DecisionRule::Scores,
        1 => DecisionRule::Seed,
        other => return Err(err(format!("unknown decision rule code {other}"))),
    };
    let encoding = match (
        r.read_u8().expect("header length checked"),
        r.read_u8().expect("header length checked"),
    ) {
        (ENCODING_BINARY, threshold) => InputEncoding::Binary { threshold },
        (ENCODING_U8, 0) => InputEncoding::U8,
        (ENCODING_U8, t) => {
            return Err(err(format!(
                "input threshold {t} given for u8 input (must be 0)"
            )))
        }
        (other, _) => {
            return Err(err(format!(
                "unknown input encoding code {other} (0 = binary, 1 = u8)"
            )))
        }
    };
    let mut reserved = [0u8; 3];
    r.read_exact(&mut reserved).expect("header length checked");
    if reserved != [0; 3] {
        return Err(err("reserved header bytes 13..16 are not zero".into()));
    }
    let mut dims = [0u32; 3];
    r.read_u32_into::<LE>(&mut dims)
        .expect("header length checked");
    let shape = InputShape::new(dims[0], dims[1], dims[2]);
    let input_len = dims
        .iter()
        .try_fold(1u64, |acc, &d| (d > 0).then(|| acc * u64::from(d)).filter(|&p| p <= u64::from(MAX_WIDTH)))
        .ok_or_else(|| {
            err(format!(
                "input shape {shape} is out of range (each side at least 1, at most {MAX_WIDTH} inputs in all)"
            ))
        })? as u32;
    if encoding.is_u8() && input_len as usize > PixelDense::MAX_INPUTS {
        return Err(err(format!(
            "u8 input of {input_len} pixels exceeds {}",
            PixelDense::MAX_INPUTS
        )));
    }
    let layer_count = r.read_u32::<LE>().expect("header length checked");
    let description_len = r.read_u32::<LE>().expect("header length checked");
    let sections_len = if version == VERSION_3 {
        r.read_u32::<LE>().expect("header length checked")
    } else {
        0
    };
    Ok(Header {
        rule,
        encoding,
        shape,
        input_len,
        layer_count,
        description_len,
        sections_len,
    })
}

/// One layer-table entry as stored, before its kind's checks.
struct RawEntry {
    /// The layer's number, from 1.
    n: u32,
    last: bool,
    kind: u8,
    output: u8,
    width: u8,
    reserved: u8,
    outputs: u32,
    params: [u8; 8],
}

impl RawEntry {
    /// Reads the next entry of a table whose length has been checked.
    fn read(t: &mut Cursor<&[u8]>, n: u32, last: bool) -> RawEntry {
        let mut head = [0u8; 4];
        t.read_exact(&mut head).expect("table length checked");
        let [kind, output, width, reserved] = head;
        let outputs = t.read_u32::<LE>().expect("table length checked");
        let mut params = [0u8; 8];
        t.read_exact(&mut params).expect("table length checked");
        RawEntry {
            n,
            last,
            kind,
            output,
            width,
            reserved,
            outputs,
            params,
        }
    }

    /// Whether the output code and threshold width are a hidden layer's.
    fn hidden_width(&self) -> bool {
        self.output == OUTPUT_SIGN && (self.width == 2 || self.width == 4)
    }

    /// A dense layer: hidden, or the last (scores).
    fn dense(&self, shapes: &mut Shapes) -> std::result::Result<Entry, Parse> {
        let err = Parse::Bad;
        let RawEntry {
            n,
            last,
            output,
            width,
            reserved,
            outputs,
            params,
            ..
        } = *self;
        if outputs == 0 || outputs > MAX_WIDTH {
            return Err(err(format!(
                "layer {n} has {outputs} neurons, out of range 1..={MAX_WIDTH}"
            )));
        }
        let valid = if last {
            output == OUTPUT_SCORES && width == 0
        } else {
            self.hidden_width()
        };
        if !valid {
            return Err(err(format!(
                        "layer {n} has output code {output} and threshold width {width} (hidden layers: 0 with width 2 or 4; the last: 1 with width 0)"
                    )));
        }
        if reserved != 0 || params != [0; 8] {
            return Err(err(format!(
                "layer {n}: reserved or parameter bytes of a dense layer are not zero"
            )));
        }
        let inputs = shapes.dense(outputs as usize).map_err(err)?;
        Ok(Entry {
            kind: EntryKind::Dense,
            outputs: outputs as usize,
            inputs,
            scores: last,
            width,
        })
    }

    /// A convolution: its kernel size and padding in the parameter bytes.
    fn conv(&self, shapes: &mut Shapes) -> std::result::Result<Entry, Parse> {
        let err = Parse::Bad;
        let RawEntry {
            n,
            output,
            width,
            reserved,
            outputs,
            params,
            ..
        } = *self;
        if !self.hidden_width() {
            return Err(err(format!(
                        "layer {n}: a convolution has output code {output} and threshold width {width} (must be 0 with width 2 or 4)"
                    )));
        }
        let padding = match params[1] {
            PAD_SAME => Padding::Same,
            PAD_VALID => Padding::Valid,
            other => {
                return Err(err(format!(
                    "layer {n}: unknown padding code {other} (0 = same, 1 = valid)"
                )))
            }
        };
        if reserved != 0 || params[2..] != [0; 6] {
            return Err(err(format!(
                "layer {n}: reserved or parameter bytes 2..8 of a convolution are not zero"
            )));
        }
        let k = usize::from(params[0]);
        let (map, window) = shapes.conv(k, padding, outputs as usize).map_err(err)?;
        Ok(Entry {
            kind: EntryKind::Conv {
                k,
                padding,
                in_channels: map.channels as usize,
            },
            outputs: outputs as usize,
            inputs: window,
            scores: false,
            width,
        })
    }

    /// A 2×2 max pool, over the channels of the convolution before it.
    fn pool(&self, shapes: &mut Shapes) -> std::result::Result<Entry, Parse> {
        let err = Parse::Bad;
        let RawEntry {
            n,
            output,
            width,
            reserved,
            outputs,
            params,
            ..
        } = *self;
        let want = [POOL_SIDE, 0, 0, 0, 0, 0, 0, 0];
        if output != 0 || width != 0 || reserved != 0 || params != want {
            // What the file holds, not only what it should.
            let found = [
                (output != 0).then(|| format!("output code {output}")),
                (width != 0).then(|| format!("width {width}")),
                (reserved != 0).then(|| format!("reserved byte {reserved}")),
                (params != want).then(|| format!("parameters {params:?}")),
            ];
            let found: Vec<String> = found.into_iter().flatten().collect();
            return Err(err(format!(
                        "layer {n}: a max pool has output code 0, width 0 and parameters [2, 0, ...], not {}",
                        found.join(", ")
                    )));
        }
        shapes.pool().map_err(err)?;
        let crate::conv::Flow::Map(map) = shapes.flow() else {
            unreachable!("pooling keeps a map")
        };
        if outputs != map.channels {
            return Err(err(format!(
                "layer {n}: a max pool of {outputs} channels follows a convolution of {}",
                map.channels
            )));
        }
        Ok(Entry {
            kind: EntryKind::Pool,
            outputs: outputs as usize,
            inputs: 0,
            scores: false,
            width,
        })
    }
}

/// Gives zero padding to the convolutions that a ZPAD section lists by
/// layer number: each must be a `same`-padded convolution (the geometry
/// zero padding shares).
fn mark_zero_padded(entries: &mut [Entry], layers: &[usize]) -> std::result::Result<(), String> {
    let count = entries.len();
    for &n in layers {
        let Some(entry) = n.checked_sub(1).and_then(|i| entries.get_mut(i)) else {
            return Err(format!(
                "section ZPAD: layer {n} is out of range (the model has {count} layers)"
            ));
        };
        match &mut entry.kind {
            EntryKind::Conv { padding, .. } if *padding == Padding::Same => {
                *padding = Padding::Zero;
            }
            EntryKind::Conv { padding, .. } => {
                return Err(format!(
                    "section ZPAD: layer {n} is a {padding} convolution (zero padding has same's geometry, padding code 0)"
                ));
            }
            EntryKind::Dense => {
                return Err(format!(
                    "section ZPAD: layer {n} is a dense layer, not a convolution"
                ))
            }
            EntryKind::Pool => {
                return Err(format!(
                    "section ZPAD: layer {n} is a max pool, not a convolution"
                ))
            }
        }
    }
    Ok(())
}

/// Parses a version-2 model from bytes; `path` only names the source in
/// errors.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ModelFile> {
    let err = |problem: String| format_error(path, problem);
    let Layout {
        rule,
        encoding,
        shape,
        input_len,
        description_len,
        sections_len,
        entries,
        table_end,
        expected,
    } = layout(bytes).map_err(|p| err(p.into_problem()))?;
    let body_end = check_length_and_crc(bytes, expected).map_err(err)?;

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut description = vec![0u8; description_len as usize];
    r.read_exact(&mut description).expect("size checked");
    let description =
        String::from_utf8(description).map_err(|_| err("description is not valid UTF-8".into()))?;
    let version = u16::from_le_bytes([bytes[MAGIC.len()], bytes[MAGIC.len() + 1]]);
    // The sections first: ZPAD changes how convolutions are built.
    let found = if version == VERSION_3 {
        let start = body_end - sections_len as usize;
        let classes = entries.last().expect("at least one layer").outputs;
        let found =
            sections::parse(&bytes[start..body_end], classes, input_len as usize).map_err(err)?;
        Some(found)
    } else {
        None
    };
    let mut entries = entries;
    if let Some(found) = &found {
        mark_zero_padded(&mut entries, &found.zero_padded).map_err(err)?;
    }
    let convolutional = entries
        .iter()
        .any(|e| matches!(e.kind, EntryKind::Conv { .. }));
    let mut first = None;
    let mut layers = Vec::with_capacity(entries.len());
    let mut list = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let layer_err = |e: crate::Error| err(format!("layer {}: {e}", i + 1));
        if let EntryKind::Pool = entry.kind {
            list.push(Layer::MaxPool);
            continue;
        }
        let (weights, transform) = read_layer_body(
            &mut r,
            entry.outputs,
            entry.inputs,
            entry.scores,
            entry.width,
            i,
        )
        .map_err(err)?;
        match entry.kind {
            EntryKind::Conv {
                k,
                padding,
                in_channels,
            } => {
                let crate::layer::Transform::Sign(thresholds) = transform else {
                    unreachable!("convolutions are hidden")
                };
                let conv =
                    Conv2d::new(k, in_channels, padding, weights, thresholds).map_err(layer_err)?;
                list.push(Layer::Conv(conv));
            }
            _ if i == 0 && encoding.is_u8() && !convolutional => {
                first = Some(PixelDense::new(weights, transform).map_err(layer_err)?);
            }
            _ if convolutional => {
                list.push(Layer::Dense(
                    BinaryDense::new(weights, transform).map_err(layer_err)?,
                ));
            }
            _ => layers.push(BinaryDense::new(weights, transform).map_err(layer_err)?),
        }
    }
    let mut model = match (encoding, first) {
        _ if convolutional => Model::from_layers(shape, encoding, list, rule),
        (InputEncoding::Binary { threshold }, _) => {
            Model::new(input_len as usize, threshold, layers, rule)
        }
        (InputEncoding::U8, Some(first)) => Model::with_pixel_layer(first, layers, rule),
        (InputEncoding::U8, None) => unreachable!("a u8 model's first layer is a pixel layer"),
    }
    .map_err(|e| err(e.to_string()))?;
    model
        .set_input_shape(shape)
        .map_err(|e| err(e.to_string()))?;
    let mut listed: Vec<SectionInfo> = Vec::new();
    if let Some(found) = found {
        debug_assert_eq!(
            r.position() as usize + table_end,
            body_end - sections_len as usize
        );
        if let Some(names) = found.names {
            model = model
                .with_class_names(names)
                .map_err(|e| err(e.to_string()))?;
        }
        if let Some(encoding) = found.encoding {
            model = model
                .with_feature_encoding(encoding)
                .map_err(|e| err(e.to_string()))?;
        }
        if let Some(scale) = found.score_scale {
            model = model
                .with_score_scale(scale)
                .map_err(|e| err(format!("section SCAL: {e}")))?;
        }
        model.set_unknown_sections(found.unknown);
        listed = found.listed;
    }
    Ok(ModelFile {
        model,
        description,
        file_bytes: bytes.len() as u64,
        version,
        sections: listed,
    })
}
