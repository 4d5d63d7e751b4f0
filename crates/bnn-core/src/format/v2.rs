//! Version 2 of the `.bnn` file: the input encoding (binary at a threshold,
//! or u8), the input shape `H×W×C`, and a layer table whose entries name
//! their kind, so that layer kinds beyond dense (convolution, pooling,
//! flatten) fit in new kind codes and parameter bytes, without another
//! version. Layer bodies are those of version 1.

use std::io::{Cursor, Read};
use std::path::Path;

use byteorder::{LittleEndian as LE, ReadBytesExt, WriteBytesExt};

use super::{
    check_counts, check_length_and_crc, format_error, layer_body_bytes, read_layer_body,
    threshold_width, write_layer_body, ModelFile, MAGIC, MAX_DESCRIPTION, MAX_FILE, MAX_WIDTH,
};
use crate::error::Result;
use crate::input::{InputEncoding, InputShape};
use crate::layer::{BinaryDense, Transform};
use crate::model::{DecisionRule, Model};
use crate::pixel::PixelDense;

pub const VERSION: u16 = 2;
/// Fixed header bytes before the layer table.
pub const HEADER_LEN: usize = 36;
/// Bytes per layer-table entry.
pub const LAYER_ENTRY_LEN: usize = 16;

const ENCODING_BINARY: u8 = 0;
const ENCODING_U8: u8 = 1;
/// The one layer kind so far: dense, over the previous layer's bits (or over
/// the input, encoded as the header says, for the first layer).
const KIND_DENSE: u8 = 0;
const OUTPUT_SIGN: u8 = 0;
const OUTPUT_SCORES: u8 = 1;

/// Whether version 1 cannot express the model.
pub fn needed(model: &Model) -> bool {
    model.pixel_layer().is_some() || !model.input_shape().is_flat()
}

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
    let layers = all_layers(model);
    for (outputs, transform, _) in &layers {
        let (output, width) = match transform {
            Transform::Sign(t) => (OUTPUT_SIGN, threshold_width(t)),
            Transform::Scores(_) => (OUTPUT_SCORES, 0),
        };
        w.extend_from_slice(&[KIND_DENSE, output, width, 0]);
        w.write_u32::<LE>(*outputs as u32).unwrap();
        w.extend_from_slice(&[0; 8]);
    }
    w.extend_from_slice(description.as_bytes());
    for (_, transform, weights) in &layers {
        write_layer_body(w, weights, transform);
    }
    let crc = crc32fast::hash(&out);
    out.write_u32::<LE>(crc).unwrap();
    out
}

/// Every layer, the pixel layer first: width, transform and weights.
fn all_layers(model: &Model) -> Vec<(usize, &Transform, crate::bits::BitMatrix)> {
    model
        .pixel_layer()
        .map(|l| (l.outputs(), l.transform(), l.weights()))
        .into_iter()
        .chain(
            model
                .layers()
                .iter()
                .map(|l| (l.outputs(), l.transform(), l.weights())),
        )
        .collect()
}

struct Entry {
    outputs: usize,
    scores: bool,
    width: u8,
}

pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<ModelFile> {
    let err = |problem: String| format_error(path, problem);
    if bytes.len() < HEADER_LEN {
        return Err(err(format!(
            "truncated: {} bytes, the version-2 header alone needs {HEADER_LEN}",
            bytes.len()
        )));
    }
    let mut r = Cursor::new(&bytes[MAGIC.len() + 2..HEADER_LEN]);
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
        let n = i + 1;
        let mut head = [0u8; 4];
        t.read_exact(&mut head).expect("table length checked");
        let [kind, output, width, reserved] = head;
        let outputs = t.read_u32::<LE>().expect("table length checked");
        let params = t.read_u64::<LE>().expect("table length checked");
        if kind != KIND_DENSE {
            return Err(err(format!(
                "layer {n} has unknown kind {kind} (this build reads 0 = dense)"
            )));
        }
        if outputs == 0 || outputs > MAX_WIDTH {
            return Err(err(format!(
                "layer {n} has {outputs} neurons, out of range 1..={MAX_WIDTH}"
            )));
        }
        let last = n == layer_count;
        let valid = if last {
            output == OUTPUT_SCORES && width == 0
        } else {
            output == OUTPUT_SIGN && (width == 2 || width == 4)
        };
        if !valid {
            return Err(err(format!(
                "layer {n} has output code {output} and threshold width {width} (hidden layers: 0 with width 2 or 4; the last: 1 with width 0)"
            )));
        }
        if reserved != 0 || params != 0 {
            return Err(err(format!(
                "layer {n}: reserved or parameter bytes of a dense layer are not zero"
            )));
        }
        let m = u64::from(outputs);
        expected = expected
            .checked_add(layer_body_bytes(m, inputs, last, width))
            .filter(|&e| e <= MAX_FILE)
            .ok_or_else(|| err("layer sizes overflow the largest accepted file".into()))?;
        entries.push(Entry {
            outputs: outputs as usize,
            scores: last,
            width,
        });
        inputs = m;
    }
    let body_end = check_length_and_crc(bytes, expected).map_err(err)?;

    let mut r = Cursor::new(&bytes[table_end..body_end]);
    let mut description = vec![0u8; description_len as usize];
    r.read_exact(&mut description).expect("size checked");
    let description =
        String::from_utf8(description).map_err(|_| err("description is not valid UTF-8".into()))?;
    let mut first = None;
    let mut layers = Vec::with_capacity(entries.len());
    let mut inputs = input_len as usize;
    for (i, entry) in entries.iter().enumerate() {
        let (weights, transform) =
            read_layer_body(&mut r, entry.outputs, inputs, entry.scores, entry.width, i)
                .map_err(err)?;
        let layer_err = |e: crate::Error| err(format!("layer {}: {e}", i + 1));
        if i == 0 && encoding.is_u8() {
            first = Some(PixelDense::new(weights, transform).map_err(layer_err)?);
        } else {
            layers.push(BinaryDense::new(weights, transform).map_err(layer_err)?);
        }
        inputs = entry.outputs;
    }
    let mut model = match (encoding, first) {
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
    Ok(ModelFile {
        model,
        description,
        file_bytes: bytes.len() as u64,
    })
}
