//! Version 3's tagged metadata sections: what a model says about itself
//! beyond the network (class names, a feature encoding, zero padding, a
//! per-class score scale), in a list a reader can walk, so that later
//! additions need a new tag, not a new version.
//!
//! Each section is a 4-byte tag (ASCII capitals and digits), `u16` flags,
//! a zero `u16`, a `u32` payload length and the payload. Flag bit 0 marks a
//! section *required*: a reader that does not know its tag must refuse the
//! file (a feature encoding is required: a model over encoded features must
//! not run on raw bytes), while an unknown optional section is kept whole
//! and written back on save. Sections are in strictly ascending tag order,
//! so a file has one spelling and loads and saves back byte for byte.

use byteorder::{LittleEndian as LE, WriteBytesExt};

use crate::conv::Padding;
use crate::encoding::{FeatureEncoding, MAX_LEVELS};
use crate::format::MAX_LAYERS;
use crate::model::{check_class_names, check_score_scale, Model, RawSection, MAX_CLASS_NAME};

/// Bytes before a section's payload: tag, flags, reserved, length.
pub const SECTION_HEADER_LEN: usize = 12;
/// The most sections a file may hold.
pub const MAX_SECTIONS: usize = 64;
/// Flag bit 0: a reader that does not know the tag must refuse the file.
pub const FLAG_REQUIRED: u16 = 1;

/// Class names: `u32` count (the output width), then each name as a `u16`
/// length and UTF-8.
pub const TAG_NAMES: [u8; 4] = *b"NAME";
/// The feature encoding (required).
pub const TAG_ENCODING: [u8; 4] = *b"ENCD";
/// The convolutions padded with zeros rather than −1 (required): `u32`
/// count, then each one's layer number (from 1, in the layer table) as a
/// `u32`, strictly ascending. The table gives them `same` padding, the
/// geometry zero padding shares; a reader that ignored the section would
/// run them with −1 at the border, so it must refuse the file.
pub const TAG_ZERO_PADDING: [u8; 4] = *b"ZPAD";

/// The score layer's per-class scale (required): `u32` count (the
/// output width), then one `f32` per class, each finite and non-negative;
/// class `k` scores `(dot_k as f32) · scale_k + bias_k`. A reader that
/// ignored it would score `dot + bias` and could pick other classes, so it
/// must refuse the file.
pub const TAG_SCORE_SCALE: [u8; 4] = *b"SCAL";

const ENCODING_MIN_MAX: u8 = 0;
const ENCODING_THERMOMETER: u8 = 1;
/// Kind, reserved byte, `u16` levels, `u32` features.
const ENCODING_HEAD: usize = 8;

/// One section as a report lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SectionInfo {
    /// The four-byte tag as text (e.g. `CLAS`).
    pub tag: String,
    /// Whether a reader that does not know the tag must refuse the file.
    pub required: bool,
    /// Payload bytes.
    pub len: u64,
    /// Whether this build reads the section (else it was skipped and kept).
    pub known: bool,
}

/// What the sections of a file hold.
#[derive(Default)]
pub(super) struct Sections {
    pub names: Option<Vec<String>>,
    pub encoding: Option<FeatureEncoding>,
    /// Layer numbers (from 1) of the zero-padded convolutions, checked
    /// ascending but not yet against the layers.
    pub zero_padded: Vec<usize>,
    pub score_scale: Option<Vec<f32>>,
    pub unknown: Vec<RawSection>,
    pub listed: Vec<SectionInfo>,
}

/// The sections a model is saved with, in tag order: empty for a model
/// with no metadata, which is then saved in version 1 or 2.
pub(super) fn of_model(model: &Model) -> Vec<RawSection> {
    let mut out = model.unknown_sections().to_vec();
    if let Some(e) = model.feature_encoding() {
        out.push(RawSection {
            tag: TAG_ENCODING,
            flags: FLAG_REQUIRED,
            payload: encoding_payload(e),
        });
    }
    if let Some(names) = model.class_names() {
        let mut p = Vec::new();
        p.write_u32::<LE>(names.len() as u32).unwrap();
        for name in names {
            // Checked at most MAX_CLASS_NAME bytes when set.
            p.write_u16::<LE>(name.len() as u16).unwrap();
            p.extend_from_slice(name.as_bytes());
        }
        out.push(RawSection {
            tag: TAG_NAMES,
            flags: 0,
            payload: p,
        });
    }
    if let Some(scale) = model.score_scale() {
        let mut p = Vec::with_capacity(4 + 4 * scale.len());
        p.write_u32::<LE>(scale.len() as u32).unwrap();
        for &v in scale {
            p.write_f32::<LE>(v).unwrap();
        }
        out.push(RawSection {
            tag: TAG_SCORE_SCALE,
            flags: FLAG_REQUIRED,
            payload: p,
        });
    }
    let zero = zero_padded_layers(model);
    if !zero.is_empty() {
        let mut p = Vec::new();
        p.write_u32::<LE>(zero.len() as u32).unwrap();
        for n in zero {
            p.write_u32::<LE>(n as u32).unwrap();
        }
        out.push(RawSection {
            tag: TAG_ZERO_PADDING,
            flags: FLAG_REQUIRED,
            payload: p,
        });
    }
    out.sort_by_key(|s| s.tag);
    out
}

/// The layer numbers (from 1, as the file's layer table counts them: each
/// convolution, then its pool) of the zero-padded convolutions.
fn zero_padded_layers(model: &Model) -> Vec<usize> {
    let mut n = 1 + usize::from(model.pixel_layer().is_some());
    let mut out = Vec::new();
    for stage in model.convs() {
        if stage.conv().padding() == Padding::Zero {
            out.push(n);
        }
        n += 1 + usize::from(stage.pooled());
    }
    out
}

/// The sections' bytes, as [`of_model`] gives them.
pub(super) fn write(out: &mut Vec<u8>, sections: &[RawSection]) {
    for s in sections {
        out.extend_from_slice(&s.tag);
        out.write_u16::<LE>(s.flags).unwrap();
        out.write_u16::<LE>(0).unwrap();
        out.write_u32::<LE>(s.payload.len() as u32).unwrap();
        out.extend_from_slice(&s.payload);
    }
}

/// The total bytes [`write`] writes.
pub(super) fn total_len(sections: &[RawSection]) -> usize {
    sections
        .iter()
        .map(|s| SECTION_HEADER_LEN + s.payload.len())
        .sum()
}

fn encoding_payload(e: &FeatureEncoding) -> Vec<u8> {
    let mut p = Vec::new();
    let (kind, levels, values): (u8, u16, Vec<f32>) = match e {
        FeatureEncoding::MinMax { min, max } => (ENCODING_MIN_MAX, 0, [&min[..], max].concat()),
        // Levels are checked at most MAX_LEVELS when set.
        FeatureEncoding::Thermometer { levels, cuts } => {
            (ENCODING_THERMOMETER, *levels as u16, cuts.clone())
        }
    };
    p.extend_from_slice(&[kind, 0]);
    p.write_u16::<LE>(levels).unwrap();
    p.write_u32::<LE>(e.features() as u32).unwrap();
    for v in values {
        p.write_f32::<LE>(v).unwrap();
    }
    p
}

/// A tag as a message shows it: the text when it is printable ASCII, else
/// its bytes in hex.
fn show_tag(tag: &[u8]) -> String {
    if tag.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(tag).into_owned()
    } else {
        let hex: Vec<String> = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{}", hex.join(""))
    }
}

/// Parses the sections region of a version-3 file, whose length the header
/// gave and the caller checked. `classes` and `input_len` are the model's,
/// which the names and the encoding must fit.
pub(super) fn parse(
    bytes: &[u8],
    classes: usize,
    input_len: usize,
) -> std::result::Result<Sections, String> {
    let mut out = Sections::default();
    let mut pos = 0usize;
    let mut previous: Option<[u8; 4]> = None;
    let mut n = 0usize;
    while pos < bytes.len() {
        n += 1;
        if n > MAX_SECTIONS {
            return Err(format!("more than {MAX_SECTIONS} sections"));
        }
        let left = bytes.len() - pos;
        if left < SECTION_HEADER_LEN {
            return Err(format!(
                "section {n}: {left} bytes left of the sections, too few for a {SECTION_HEADER_LEN}-byte section header"
            ));
        }
        let head = &bytes[pos..pos + SECTION_HEADER_LEN];
        let tag: [u8; 4] = head[..4].try_into().expect("4 bytes");
        let flags = u16::from_le_bytes([head[4], head[5]]);
        let reserved = u16::from_le_bytes([head[6], head[7]]);
        let len = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) as usize;
        let shown = show_tag(&tag);
        if !tag
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(format!(
                "section {n} has tag {shown} (tags are 4 ASCII capitals or digits)"
            ));
        }
        if flags & !FLAG_REQUIRED != 0 || reserved != 0 {
            return Err(format!(
                "section {shown}: flags {flags:#06x} or reserved bytes {reserved:#06x} set beyond bit 0 (required)"
            ));
        }
        pos += SECTION_HEADER_LEN;
        if len > bytes.len() - pos {
            return Err(format!(
                "section {shown}: payload of {len} bytes overruns the sections ({} bytes left)",
                bytes.len() - pos
            ));
        }
        let payload = &bytes[pos..pos + len];
        pos += len;
        if let Some(prev) = previous {
            if prev == tag {
                return Err(format!("duplicate section {shown}"));
            }
            if prev > tag {
                return Err(format!(
                    "section {shown} after {}: sections are in ascending tag order",
                    show_tag(&prev)
                ));
            }
        }
        previous = Some(tag);
        let required = flags & FLAG_REQUIRED != 0;
        let known = match tag {
            TAG_NAMES => {
                if required {
                    return Err("section NAME is marked required (class names are optional)".into());
                }
                out.names = Some(parse_names(payload, classes)?);
                true
            }
            TAG_ENCODING => {
                if !required {
                    return Err(
                        "section ENCD is not marked required (a reader that skipped it would run the model on raw bytes)"
                            .into(),
                    );
                }
                out.encoding = Some(parse_encoding(payload, input_len)?);
                true
            }
            TAG_ZERO_PADDING => {
                if !required {
                    return Err(
                        "section ZPAD is not marked required (a reader that skipped it would pad those convolutions with -1)"
                            .into(),
                    );
                }
                out.zero_padded = parse_zero_padding(payload)?;
                true
            }
            TAG_SCORE_SCALE => {
                if !required {
                    return Err(
                        "section SCAL is not marked required (a reader that skipped it would score dot + bias and could pick other classes)"
                            .into(),
                    );
                }
                out.score_scale = Some(parse_score_scale(payload, classes)?);
                true
            }
            _ if required => {
                return Err(format!(
                    "unknown required section {shown}: this build cannot use the model (it reads ENCD, NAME, SCAL and ZPAD)"
                ));
            }
            _ => {
                out.unknown.push(RawSection {
                    tag,
                    flags,
                    payload: payload.to_vec(),
                });
                false
            }
        };
        out.listed.push(SectionInfo {
            tag: shown,
            required,
            len: len as u64,
            known,
        });
    }
    if n == 0 {
        return Err(
            "a version-3 file with no sections (a model without metadata is written as version 1 or 2)"
                .into(),
        );
    }
    Ok(out)
}

fn parse_names(p: &[u8], classes: usize) -> std::result::Result<Vec<String>, String> {
    let bad = |m: String| format!("section NAME: {m}");
    if p.len() < 4 {
        return Err(bad(format!("{} bytes, too few for the count", p.len())));
    }
    let count = u32::from_le_bytes(p[..4].try_into().expect("4 bytes")) as usize;
    if count != classes {
        return Err(bad(format!(
            "{count} class names for a model of {classes} classes"
        )));
    }
    // Each name takes at least its 2-byte length: the payload bounds the
    // allocation, whatever the model's width.
    let mut names = Vec::with_capacity(count.min((p.len() - 4) / 2));
    let mut pos = 4;
    for i in 0..count {
        if p.len() - pos < 2 {
            return Err(bad(format!("name {i} is cut off by the section's end")));
        }
        let len = usize::from(u16::from_le_bytes([p[pos], p[pos + 1]]));
        pos += 2;
        if len > MAX_CLASS_NAME {
            return Err(bad(format!(
                "class name {i} is {len} bytes long, more than {MAX_CLASS_NAME}"
            )));
        }
        if p.len() - pos < len {
            return Err(bad(format!("name {i} is cut off by the section's end")));
        }
        let name = std::str::from_utf8(&p[pos..pos + len])
            .map_err(|_| bad(format!("class name {i} is not valid UTF-8")))?;
        names.push(name.to_string());
        pos += len;
    }
    if pos != p.len() {
        return Err(bad(format!("{} bytes after the last name", p.len() - pos)));
    }
    check_class_names(&names, classes).map_err(bad)?;
    Ok(names)
}

fn parse_score_scale(p: &[u8], classes: usize) -> std::result::Result<Vec<f32>, String> {
    let bad = |m: String| format!("section SCAL: {m}");
    if p.len() < 4 {
        return Err(bad(format!("{} bytes, too few for the count", p.len())));
    }
    let count = u32::from_le_bytes(p[..4].try_into().expect("4 bytes")) as usize;
    if count != classes {
        return Err(bad(format!(
            "{count} scales for a model of {classes} classes"
        )));
    }
    // The count is the model's width (at most 2^24): no overflow in u64.
    let want = 4 + 4 * count as u64;
    if p.len() as u64 != want {
        return Err(bad(format!(
            "{} bytes, where {count} scales need {want}",
            p.len()
        )));
    }
    let scale: Vec<f32> = p[4..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    check_score_scale(&scale, classes).map_err(bad)?;
    if scale.iter().all(|&s| s == 1.0) {
        return Err(bad(
            "every scale is 1 (a model without per-class scales has no SCAL section)".into(),
        ));
    }
    Ok(scale)
}

fn parse_zero_padding(p: &[u8]) -> std::result::Result<Vec<usize>, String> {
    let bad = |m: String| format!("section ZPAD: {m}");
    if p.len() < 4 {
        return Err(bad(format!("{} bytes, too few for the count", p.len())));
    }
    let count = u32::from_le_bytes(p[..4].try_into().expect("4 bytes"));
    if count == 0 || count > MAX_LAYERS {
        return Err(bad(format!(
            "{count} layers listed, out of range 1..={MAX_LAYERS}"
        )));
    }
    let want = 4 + 4 * u64::from(count);
    if p.len() as u64 != want {
        return Err(bad(format!(
            "{} bytes, where {count} layer numbers need {want}",
            p.len()
        )));
    }
    let layers: Vec<usize> = p[4..]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .collect();
    for pair in layers.windows(2) {
        if pair[0] >= pair[1] {
            return Err(bad(format!(
                "layer {} listed after layer {} (the list is strictly ascending)",
                pair[1], pair[0]
            )));
        }
    }
    Ok(layers)
}

fn parse_encoding(p: &[u8], input_len: usize) -> std::result::Result<FeatureEncoding, String> {
    let bad = |m: String| format!("section ENCD: {m}");
    if p.len() < ENCODING_HEAD {
        return Err(bad(format!(
            "{} bytes, too few for its {ENCODING_HEAD}-byte head",
            p.len()
        )));
    }
    let (kind, reserved) = (p[0], p[1]);
    let levels = usize::from(u16::from_le_bytes([p[2], p[3]]));
    let features = u32::from_le_bytes(p[4..8].try_into().expect("4 bytes")) as usize;
    if reserved != 0 {
        return Err(bad(format!("reserved byte 1 is {reserved}, not 0")));
    }
    let values = match kind {
        ENCODING_MIN_MAX if levels == 0 => 2,
        ENCODING_MIN_MAX => {
            return Err(bad(format!(
                "min-max encoding with {levels} levels (must be 0)"
            )))
        }
        ENCODING_THERMOMETER if (1..=MAX_LEVELS).contains(&levels) => levels,
        ENCODING_THERMOMETER => {
            return Err(bad(format!(
                "thermometer of {levels} levels, out of range 1..={MAX_LEVELS}"
            )))
        }
        other => {
            return Err(bad(format!(
                "unknown encoding kind {other} (0 = min-max, 1 = thermometer)"
            )))
        }
    };
    // At most 2^32 features times 255: no overflow in u64.
    let want = features as u64 * values as u64 * 4 + ENCODING_HEAD as u64;
    if want != p.len() as u64 {
        return Err(bad(format!(
            "{} bytes, where {features} features need {want}",
            p.len()
        )));
    }
    let floats: Vec<f32> = p[ENCODING_HEAD..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let encoding = if kind == ENCODING_MIN_MAX {
        let (min, max) = floats.split_at(features);
        FeatureEncoding::MinMax {
            min: min.to_vec(),
            max: max.to_vec(),
        }
    } else {
        FeatureEncoding::Thermometer {
            levels,
            cuts: floats,
        }
    };
    encoding.check().map_err(|e| bad(e.to_string()))?;
    if encoding.encoded_len() != input_len {
        return Err(bad(format!(
            "{} gives {} values, where the model takes {input_len}",
            encoding.describe(),
            encoding.encoded_len()
        )));
    }
    Ok(encoding)
}
