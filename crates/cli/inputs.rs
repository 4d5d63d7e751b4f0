//! What `bnn classify` reads: IDX image files (streamed in bounded chunks),
//! and PNG or PGM images, given as files or as directories of them.
//!
//! Images must have exactly as many pixels as the model has inputs (28×28
//! for MNIST models). PNGs are decoded with the `png` crate: palette and
//! low-bit-depth images are expanded, 16-bit samples reduced to 8, an alpha
//! channel ignored, and colour converted to luma (0.299 R + 0.587 G +
//! 0.114 B). PGMs (binary P5 or text P2) are scaled to 0..=255 by their
//! maxval. MNIST's convention applies: bright ink on a dark background.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// One input, in the order given.
#[derive(Debug, Clone)]
pub enum Source {
    /// An IDX3 image file, raw or gzip.
    Idx(PathBuf),
    /// One PNG or PGM image.
    Image(PathBuf),
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Expands directories (their PNG/PGM files, sorted by name) and recognises
/// each file by its content.
pub fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    for path in inputs {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            let mut images: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("{}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            matches!(e.to_ascii_lowercase().as_str(), "png" | "pgm")
                        })
                })
                .collect();
            if images.is_empty() {
                bail!("{}: directory has no .png or .pgm images", path.display());
            }
            images.sort();
            sources.extend(images.into_iter().map(Source::Image));
        } else {
            sources.push(sniff(path)?);
        }
    }
    Ok(sources)
}

fn sniff(path: &Path) -> anyhow::Result<Source> {
    let mut head = [0u8; 8];
    let mut file = File::open(path).with_context(|| format!("{}", path.display()))?;
    let n = read_up_to(&mut file, &mut head).with_context(|| format!("{}", path.display()))?;
    let head = &head[..n];
    if head.starts_with(PNG_SIGNATURE) || head.starts_with(b"P5") || head.starts_with(b"P2") {
        Ok(Source::Image(path.to_path_buf()))
    } else if head.starts_with(&[0, 0, 8, 3]) || head.starts_with(&[0x1f, 0x8b]) {
        Ok(Source::Idx(path.to_path_buf()))
    } else {
        bail!(
            "{}: not an IDX image file, PNG or PGM (unrecognised first bytes)",
            path.display()
        )
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads one image as 8-bit grayscale with exactly `pixels` pixels.
pub fn read_image(path: &Path, pixels: usize) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let (w, h, gray) = if bytes.starts_with(PNG_SIGNATURE) {
        decode_png(&bytes, pixels).with_context(|| format!("{}: invalid PNG", path.display()))?
    } else {
        decode_pgm(&bytes).with_context(|| format!("{}: invalid PGM", path.display()))?
    };
    if w * h != pixels {
        bail!(
            "{}: image is {w}x{h}; the model needs {pixels} pixels{}",
            path.display(),
            if pixels == 784 {
                " (28x28 grayscale)"
            } else {
                ""
            }
        );
    }
    Ok(gray)
}

/// Decodes only an image of `pixels` pixels: the frame buffer follows the
/// header's claim, which a few bytes can make tens of megabytes. For any
/// other size the pixels come back empty and the caller reports the size.
fn decode_png(bytes: &[u8], pixels: usize) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let mut decoder = png::Decoder::new(BufReader::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info()?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    // The png crate panics expanding a palette of partial or extra entries.
    if let Some(palette) = &reader.info().palette {
        if palette.len() % 3 != 0 || palette.len() > 3 * 256 {
            bail!(
                "palette of {} bytes is not 1 to 256 RGB entries",
                palette.len()
            );
        }
    }
    // Refuse absurd sizes before allocating the frame.
    if w.saturating_mul(h) > 1 << 24 {
        bail!("{w}x{h} is far too large for an image classifier input");
    }
    if w.saturating_mul(h) != pixels {
        return Ok((w, h, Vec::new()));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf)?;
    let data = &buf[..frame.buffer_size()];
    let channels = match frame.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => bail!("palette image was not expanded"),
    };
    let stride = frame.line_size;
    let mut gray = Vec::with_capacity(w * h);
    for row in data.chunks(stride).take(h) {
        for px in row[..w * channels].chunks_exact(channels) {
            gray.push(match channels {
                1 | 2 => px[0],
                _ => {
                    (0.299 * f32::from(px[0]) + 0.587 * f32::from(px[1]) + 0.114 * f32::from(px[2]))
                        .round() as u8
                }
            });
        }
    }
    Ok((w, h, gray))
}

fn decode_pgm(bytes: &[u8]) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let binary = match bytes.get(..2) {
        Some(b"P5") => true,
        Some(b"P2") => false,
        _ => bail!("missing P5/P2 magic"),
    };
    let mut pos = 2;
    let mut fields = [0usize; 3];
    for f in &mut fields {
        *f = next_number(bytes, &mut pos)?;
    }
    let [w, h, maxval] = fields;
    if w == 0 || h == 0 || maxval == 0 || maxval > 65535 {
        bail!("bad header: width {w}, height {h}, maxval {maxval}");
    }
    let n = w
        .checked_mul(h)
        .filter(|&n| n <= 1 << 24)
        .context("image too large")?;
    let scale = |v: usize| -> anyhow::Result<u8> {
        if v > maxval {
            bail!("sample {v} exceeds maxval {maxval}");
        }
        Ok(((v * 255 + maxval / 2) / maxval) as u8)
    };
    let mut gray = Vec::with_capacity(n);
    if binary {
        pos += 1; // the single whitespace byte after maxval
        let size = if maxval < 256 { 1 } else { 2 };
        let data = bytes.get(pos..pos + n * size).with_context(|| {
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
    } else {
        for _ in 0..n {
            gray.push(scale(next_number(bytes, &mut pos)?)?);
        }
    }
    Ok((w, h, gray))
}

/// The next decimal number of a PGM header or text body, skipping
/// whitespace and `#` comments.
fn next_number(bytes: &[u8], pos: &mut usize) -> anyhow::Result<usize> {
    loop {
        match bytes.get(*pos) {
            Some(b'#') => {
                while bytes.get(*pos).is_some_and(|&b| b != b'\n') {
                    *pos += 1;
                }
            }
            Some(b) if b.is_ascii_whitespace() => *pos += 1,
            Some(b) if b.is_ascii_digit() => break,
            Some(b) => bail!("unexpected byte {b:#04x} at offset {pos}"),
            None => bail!("truncated header"),
        }
    }
    let start = *pos;
    while bytes.get(*pos).is_some_and(|b| b.is_ascii_digit()) {
        *pos += 1;
    }
    std::str::from_utf8(&bytes[start..*pos])?
        .parse::<usize>()
        .ok()
        .filter(|&v| v <= 1 << 24)
        .with_context(|| format!("number out of range at offset {start}"))
}
