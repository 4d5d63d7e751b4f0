//! PNG and PGM images: the one decoder that `bnn classify` and the
//! image-folder data sets both read with, so that a picture is turned into
//! pixels the same way when a model is trained as when it classifies.
//!
//! PNGs are decoded with the `png` crate: palette and low-bit-depth images
//! are expanded, 16-bit samples reduced to 8 and an alpha channel ignored.
//! PGMs (binary P5 or text P2) are scaled to 0..=255 by their maxval. The
//! result keeps its colour ([`Decoded::channels`] is 1 or 3); [`luma`] is
//! the one grey conversion (ITU-R BT.601: 0.299 R + 0.587 G + 0.114 B, in
//! integers, so that halves round up exactly).
//!
//! Errors are plain descriptions; the caller adds the file ("invalid PNG").

use std::io::{BufReader, Read};

use bnn_io::read::read_bounded;

/// The eight bytes every PNG starts with.
pub const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Largest accepted image file. An image is at most [`MAX_PIXELS`] pixels,
/// and even a text PGM of that spends under 16 bytes a pixel.
pub const MAX_IMAGE_BYTES: u64 = 1 << 28;

/// Most pixels in one image: far beyond any classifier's input.
pub const MAX_PIXELS: usize = 1 << 24;

/// Most bytes of decoded image per byte of PNG file, for
/// [`decode_png_bounded`]. Deflate expands at most 1032 to 1, so any 8-bit
/// image passes; a header that claims more than its data could hold is
/// refused before its frame is allocated.
const MAX_EXPANSION: usize = 1100;

/// Decoded bytes allowed on top of [`MAX_EXPANSION`], so that small images
/// of few bits per pixel always pass.
const EXPANSION_SLACK: usize = 16 << 10;

/// Which format a file's first bytes announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The PNG signature.
    Png,
    /// `P5` (binary) or `P2` (text) PGM.
    Pgm,
}

/// Whether `path` is named like an image this module reads: `*.png` or
/// `*.pgm`, in any case. Directories of images are listed by name (then
/// each entry is checked to be a regular image file), here and in
/// `bnn classify`.
pub fn named_image(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "pgm"))
}

/// The format `bytes` start with, if they are an image this module reads.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(PNG_SIGNATURE) {
        Some(Format::Png)
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        Some(Format::Pgm)
    } else {
        None
    }
}

/// One decoded image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Columns, in pixels.
    pub width: usize,
    /// Rows, in pixels.
    pub height: usize,
    /// 1 (grey) or 3 (RGB, from an RGB, RGBA or palette PNG).
    pub channels: usize,
    /// Row-major, `channels` bytes a pixel; empty when the decoder was
    /// asked for another size (see [`decode_png`]).
    pub pixels: Vec<u8>,
}

impl Decoded {
    /// The pixels as grey, one byte a pixel.
    pub fn into_gray(self) -> Vec<u8> {
        match self.channels {
            3 => self
                .pixels
                .chunks_exact(3)
                .map(|p| luma(p[0], p[1], p[2]))
                .collect(),
            _ => self.pixels,
        }
    }

    /// The pixels as RGB, three bytes a pixel (grey replicated).
    pub fn into_rgb(self) -> Vec<u8> {
        match self.channels {
            1 => self.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
            _ => self.pixels,
        }
    }
}

/// ITU-R BT.601 luma, `(299 R + 587 G + 114 B) / 1000` rounded half up.
/// Integers, not floats: in `f32` the sum of the three products falls just
/// below an exact half for 824 colours (R 4, G 40, B 16 is 26.5) and would
/// round down.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    let sum = 299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b);
    ((sum + 500) / 1000) as u8
}

/// Why an image file could not be read whole.
#[derive(Debug)]
pub enum ReadFailure {
    /// The reader failed; the caller names the file.
    Io(std::io::Error),
    /// More than [`MAX_IMAGE_BYTES`].
    TooLarge,
}

/// All of an image file's bytes, refusing more than [`MAX_IMAGE_BYTES`].
pub fn read_limited(mut reader: impl Read) -> Result<Vec<u8>, ReadFailure> {
    let mut bytes = Vec::new();
    let n = read_bounded(&mut reader, MAX_IMAGE_BYTES, &mut bytes).map_err(ReadFailure::Io)?;
    if n > MAX_IMAGE_BYTES {
        return Err(ReadFailure::TooLarge);
    }
    Ok(bytes)
}

/// The `png` crate's message with its chunk types written as their
/// four-letter names: it prints them with `Debug`
/// (`ChunkType { type: IDAT, critical: true, ... }`).
fn png_message(error: &png::DecodingError) -> String {
    const DEBUG: &str = "ChunkType { type: ";
    let mut text = error.to_string();
    while let Some(start) = text.find(DEBUG) {
        let rest = &text[start + DEBUG.len()..];
        let (Some(comma), Some(close)) = (rest.find(','), rest.find('}')) else {
            break;
        };
        let name = rest[..comma.min(close)].trim().to_string();
        let end = start + DEBUG.len() + close + 1;
        text.replace_range(start..end, &name);
    }
    text.trim_end_matches('.').to_string()
}

/// Decodes a PNG. With `only_pixels`, only an image of that many pixels is
/// decoded: the frame buffer follows the header's claim, which a few bytes
/// can make tens of megabytes, so for any other size the pixels come back
/// empty and the caller reports the size.
pub fn decode_png(bytes: &[u8], only_pixels: Option<usize>) -> Result<Decoded, String> {
    png_frame(bytes, only_pixels, false)
}

/// [`decode_png`] that also refuses a header claiming more than the file's
/// bytes could decompress to (over 1100 bytes a byte, past 16 KiB), before
/// the frame is allocated: for readers of many images of a size no model
/// fixed, where each image would otherwise cost what its header says.
pub fn decode_png_bounded(bytes: &[u8], only_pixels: Option<usize>) -> Result<Decoded, String> {
    png_frame(bytes, only_pixels, true)
}

fn png_frame(bytes: &[u8], only_pixels: Option<usize>, bounded: bool) -> Result<Decoded, String> {
    let mut decoder = png::Decoder::new(BufReader::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| png_message(&e))?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    // The png crate panics expanding a palette of partial or extra entries.
    if let Some(palette) = &reader.info().palette {
        if palette.len() % 3 != 0 || palette.len() > 3 * 256 {
            return Err(format!(
                "palette of {} bytes is not 1 to 256 RGB entries",
                palette.len()
            ));
        }
    }
    // Refuse absurd sizes before allocating the frame.
    if w.saturating_mul(h) > MAX_PIXELS {
        return Err(format!(
            "{w}x{h} is far too large for an image classifier input"
        ));
    }
    let empty = |channels| Decoded {
        width: w,
        height: h,
        channels,
        pixels: Vec::new(),
    };
    let (colour, _) = reader.output_color_type();
    let channels = match colour {
        png::ColorType::Rgb | png::ColorType::Rgba | png::ColorType::Indexed => 3,
        _ => 1,
    };
    if only_pixels.is_some_and(|pixels| w.saturating_mul(h) != pixels) {
        return Ok(empty(channels));
    }
    if bounded {
        let frame = reader.output_buffer_size();
        let most = bytes
            .len()
            .saturating_mul(MAX_EXPANSION)
            .saturating_add(EXPANSION_SLACK);
        if frame > most {
            return Err(format!(
                "header claims {w}x{h}, {frame} bytes decoded, more than {} bytes of PNG \
                 can hold",
                bytes.len()
            ));
        }
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(|e| png_message(&e))?;
    let data = &buf[..frame.buffer_size()];
    let stored = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err("palette image was not expanded".into()),
    };
    if let Some(end) = png_end(bytes)?.filter(|&end| end < bytes.len()) {
        return Err(format!(
            "trailing data: {} bytes after the IEND chunk that ends the image at byte {end}",
            bytes.len() - end
        ));
    }
    let channels = if stored >= 3 { 3 } else { 1 };
    let stride = frame.line_size;
    let mut pixels = Vec::with_capacity(w * h * channels);
    for row in data.chunks(stride).take(h) {
        for px in row[..w * stored].chunks_exact(stored) {
            pixels.extend_from_slice(&px[..channels]);
        }
    }
    Ok(Decoded {
        width: w,
        height: h,
        channels,
        pixels,
    })
}

/// Where a PNG's IEND chunk ends, walking the chunks' lengths; `None` when
/// the chunks do not reach one (the decoder reports that). The walk also
/// checks what the decoder never reads, since it stops at the image data:
/// the CRC of every chunk, that IEND is empty, and that no chunk is an
/// unknown critical one (which the PNG specification has a decoder refuse,
/// as the image cannot be shown right without it; the decoder passes over
/// those before the image data too).
fn png_end(bytes: &[u8]) -> Result<Option<usize>, String> {
    let mut pos = PNG_SIGNATURE.len();
    loop {
        let Some(head) = pos.checked_add(8).and_then(|e| bytes.get(pos..e)) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        // Length, type, data, CRC.
        let Some(end) = pos.checked_add(12).and_then(|p| p.checked_add(len)) else {
            return Ok(None);
        };
        if end > bytes.len() {
            return Ok(None);
        }
        let name = String::from_utf8_lossy(kind);
        let stored = u32::from_be_bytes([
            bytes[end - 4],
            bytes[end - 3],
            bytes[end - 2],
            bytes[end - 1],
        ]);
        if crc32fast::hash(&bytes[pos + 4..end - 4]) != stored {
            return Err(format!("CRC error in the {name} chunk at byte {pos}"));
        }
        let critical = kind[0].is_ascii_uppercase();
        if critical && !matches!(kind, b"IHDR" | b"PLTE" | b"IDAT" | b"IEND") {
            return Err(format!("unknown critical chunk {name} at byte {pos}"));
        }
        if kind == b"IEND" {
            if len != 0 {
                return Err(format!(
                    "IEND chunk at byte {pos} holds {len} bytes; it must be empty"
                ));
            }
            return Ok(Some(end));
        }
        pos = end;
    }
}

/// Decodes a binary (P5) or text (P2) PGM, one image a file.
pub fn decode_pgm(bytes: &[u8]) -> Result<Decoded, String> {
    let binary = match bytes.get(..2) {
        Some(b"P5") => true,
        Some(b"P2") => false,
        _ => return Err("missing P5/P2 magic".into()),
    };
    let mut pos = 2;
    let mut fields = [0usize; 3];
    for f in &mut fields {
        *f = next_number(bytes, &mut pos, "header")?;
    }
    let [w, h, maxval] = fields;
    if w == 0 || h == 0 || maxval == 0 || maxval > 65535 {
        return Err(format!(
            "bad header: width {w}, height {h}, maxval {maxval}"
        ));
    }
    let n = w
        .checked_mul(h)
        .filter(|&n| n <= MAX_PIXELS)
        .ok_or("image too large")?;
    let scale = |v: usize| -> Result<u8, String> {
        if v > maxval {
            return Err(format!("sample {v} exceeds maxval {maxval}"));
        }
        Ok(((v * 255 + maxval / 2) / maxval) as u8)
    };
    // Every sample takes at least a byte of the file: the capacity follows
    // the bytes present, not the header's claim.
    let mut gray = Vec::with_capacity(n.min(bytes.len()));
    if binary {
        pos += 1; // the single whitespace byte after maxval
        let size = if maxval < 256 { 1 } else { 2 };
        let data = bytes.get(pos..pos + n * size).ok_or_else(|| {
            format!(
                "truncated: {w}x{h} needs {} data bytes, file has {}",
                n * size,
                bytes.len().saturating_sub(pos)
            )
        })?;
        for s in data.chunks_exact(size) {
            let v = if size == 1 {
                usize::from(s[0])
            } else {
                usize::from(s[0]) << 8 | usize::from(s[1])
            };
            gray.push(scale(v)?);
        }
        pos += data.len();
    } else {
        for i in 0..n {
            let v = next_number(bytes, &mut pos, "pixel data")
                .map_err(|e| format!("{w}x{h} needs {n} samples, found {i}: {e}"))?;
            gray.push(scale(v)?);
        }
        // Whitespace and comments may end a text file.
        skip_space(bytes, &mut pos);
    }
    // One image a file: a second image or appended bytes would otherwise
    // be ignored without a word.
    if pos < bytes.len() {
        return Err(format!(
            "trailing data: {} bytes after the {w}x{h} image, from offset {pos} (a file holds one image)",
            bytes.len() - pos
        ));
    }
    Ok(Decoded {
        width: w,
        height: h,
        channels: 1,
        pixels: gray,
    })
}

/// Skips whitespace and `#` comments.
fn skip_space(bytes: &[u8], pos: &mut usize) {
    loop {
        match bytes.get(*pos) {
            Some(b'#') => {
                while bytes.get(*pos).is_some_and(|&b| b != b'\n') {
                    *pos += 1;
                }
            }
            Some(b) if b.is_ascii_whitespace() => *pos += 1,
            _ => return,
        }
    }
}

/// The next decimal number of a PGM header or text body (`part` names
/// which, for a file that ends early), skipping whitespace and `#` comments.
fn next_number(bytes: &[u8], pos: &mut usize, part: &str) -> Result<usize, String> {
    skip_space(bytes, pos);
    match bytes.get(*pos) {
        Some(b) if b.is_ascii_digit() => {}
        Some(b) => return Err(format!("unexpected byte {b:#04x} at offset {pos}")),
        None => return Err(format!("truncated {part}")),
    }
    let start = *pos;
    while bytes.get(*pos).is_some_and(|b| b.is_ascii_digit()) {
        *pos += 1;
    }
    std::str::from_utf8(&bytes[start..*pos])
        .ok()
        .and_then(|digits| digits.parse::<usize>().ok())
        .filter(|&v| v <= MAX_PIXELS)
        .ok_or_else(|| format!("number out of range at offset {start}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, colour: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(colour);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn luma_rounds_exact_halves_up() {
        // 0.299 * 4 + 0.587 * 40 + 0.114 * 16 = 26.5 exactly; in f32 the
        // sum falls below the half and rounded to 26.
        assert_eq!(luma(4, 40, 16), 27);
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(255, 0, 0), 76);
    }

    #[test]
    fn png_keeps_colour_and_converts_both_ways() {
        let rgb = png(2, 1, png::ColorType::Rgb, &[4, 40, 16, 255, 0, 0]);
        let d = decode_png_bounded(&rgb, None).unwrap();
        assert_eq!((d.width, d.height, d.channels), (2, 1, 3));
        assert_eq!(d.clone().into_gray(), [27, 76]);
        assert_eq!(d.into_rgb(), [4, 40, 16, 255, 0, 0]);
        let rgba = png(1, 1, png::ColorType::Rgba, &[1, 2, 3, 9]);
        assert_eq!(decode_png(&rgba, None).unwrap().pixels, [1, 2, 3]);
        let grey = png(2, 1, png::ColorType::Grayscale, &[7, 9]);
        let d = decode_png(&grey, Some(2)).unwrap();
        assert_eq!(d.channels, 1);
        assert_eq!(d.into_rgb(), [7, 7, 7, 9, 9, 9]);
        // Another size than asked for: not decoded.
        assert!(decode_png(&grey, Some(3)).unwrap().pixels.is_empty());
    }

    #[test]
    fn a_header_claiming_more_than_the_file_holds_is_refused_before_allocating() {
        // A valid 1x1 image whose header is rewritten to 4000x4000 (with
        // its CRC fixed): 48 MB of RGB from under 100 bytes.
        let mut bytes = png(1, 1, png::ColorType::Rgb, &[1, 2, 3]);
        bytes[16..20].copy_from_slice(&4000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&4000u32.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode_png_bounded(&bytes, None).unwrap_err();
        assert!(e.contains("header claims 4000x4000"), "{e}");
        let e = decode_png_bounded(&bytes, Some(16_000_000)).unwrap_err();
        assert!(e.contains("header claims 4000x4000"), "{e}");
    }

    #[test]
    fn pgm_binary_text_and_errors() {
        let d = decode_pgm(b"P5 2 1 255 \x00\xff").unwrap();
        assert_eq!(
            (d.width, d.height, d.channels, d.pixels),
            (2, 1, 1, vec![0, 255])
        );
        let d = decode_pgm(b"P2\n# c\n2 1\n4\n0 2\n").unwrap();
        assert_eq!(d.pixels, [0, 128]);
        let e = decode_pgm(b"P2 2 1 4 0").unwrap_err();
        assert_eq!(e, "2x1 needs 2 samples, found 1: truncated pixel data");
        let e = decode_pgm(b"P5 1 1 255 \x00\x00").unwrap_err();
        assert!(e.starts_with("trailing data: 1 bytes"), "{e}");
        assert_eq!(sniff(b"P5"), Some(Format::Pgm));
        assert_eq!(sniff(b"GIF8"), None);
    }
}
