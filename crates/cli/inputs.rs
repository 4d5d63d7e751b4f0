//! What `bnn classify` reads: IDX image files and `.npy` uint8 arrays
//! (both streamed in bounded chunks), and PNG or PGM images, given as files
//! or as directories of them.
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
use bnn_data::idx::ImageStream;
use bnn_data::npz::NpyImages;
use bnn_io::read::{read_bounded, read_full};

/// One input, in the order given.
pub enum Source {
    /// An IDX3 image file, raw or gzip, whose header has been read.
    Idx {
        path: PathBuf,
        count: usize,
        rows: usize,
        cols: usize,
        /// Kept open when the input cannot be opened again (a pipe, a FIFO,
        /// `/dev/stdin`); `None` for a regular file, reopened in its turn so
        /// that many inputs do not hold many open files.
        stream: Option<ImageStream>,
    },
    /// A `.npy` uint8 array of shape (N, inputs) or (N, H, W[, C]) whose
    /// header has been read; `stream` as for IDX.
    Npy {
        path: PathBuf,
        count: usize,
        image_len: usize,
        shape: String,
        stream: Option<NpyImages>,
    },
    /// One PNG or PGM image.
    Image {
        path: PathBuf,
        /// Its bytes when they were read from a stream while recognising
        /// it; `None` for a regular file, read in its turn.
        bytes: Option<Vec<u8>>,
    },
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Largest accepted image file. An image the model can take is at most
/// 2^24 pixels, and even a text PGM of that spends under 16 bytes a pixel.
const MAX_IMAGE_BYTES: u64 = 1 << 28;

/// Expands directories (their PNG/PGM files, sorted by name) and recognises
/// each file by its content, opening each input once.
///
/// In a directory, every entry named `*.png` or `*.pgm` (any case) must be a
/// regular image file, links followed: a broken or looping link, a FIFO, a
/// device or a subdirectory under such a name is an error naming it, as an
/// unreadable or corrupt image is. Other entries are ignored.
pub fn expand(inputs: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    for path in inputs {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            let mut images: Vec<PathBuf> = Vec::new();
            for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
                let entry = entry.with_context(|| format!("{}", path.display()))?;
                let p = entry.path();
                let named_image = p
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "pgm"));
                if named_image {
                    check_entry(&p)?;
                    images.push(p);
                }
            }
            if images.is_empty() {
                bail!("{}: directory has no .png or .pgm images", path.display());
            }
            images.sort();
            sources.extend(
                images
                    .into_iter()
                    .map(|path| Source::Image { path, bytes: None }),
            );
        } else {
            sources.push(open(path)?);
        }
    }
    Ok(sources)
}

/// A directory entry named like an image must be a regular file.
fn check_entry(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink());
            if link {
                bail!(
                    "{}: broken or looping symbolic link, not an image ({e})",
                    path.display()
                );
            }
            return Err(e).with_context(|| format!("{}", path.display()));
        }
    };
    if !meta.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let kind = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        bail!(
            "{}: {kind}, not an image file (a directory's .png and .pgm entries must be regular files)",
            path.display()
        );
    }
    Ok(())
}

/// Opens an input once and recognises it from its first bytes, which are
/// then read again from a buffer rather than by seeking or reopening, so
/// that pipes and FIFOs work like files.
fn open(path: &Path) -> anyhow::Result<Source> {
    let name = || format!("{}", path.display());
    let mut file = File::open(path).with_context(name)?;
    let regular = file.metadata().with_context(name)?.is_file();
    let mut head = [0u8; 8];
    let n = read_full(&mut file, &mut head).with_context(name)?;
    let head = &head[..n];
    let is_image =
        head.starts_with(PNG_SIGNATURE) || head.starts_with(b"P5") || head.starts_with(b"P2");
    if is_image {
        let bytes = if regular {
            None
        } else {
            let rest = std::io::Cursor::new(head.to_vec()).chain(file);
            Some(read_limited(rest, path)?)
        };
        return Ok(Source::Image {
            path: path.to_path_buf(),
            bytes,
        });
    }
    if head.starts_with(NPY_MAGIC) {
        let len = regular
            .then(|| file.metadata().map(|m| m.len()))
            .transpose();
        let len = len.with_context(name)?;
        let whole = std::io::Cursor::new(head.to_vec()).chain(file);
        let stream = NpyImages::from_reader(path, whole, len)?;
        return Ok(Source::Npy {
            path: path.to_path_buf(),
            count: stream.count(),
            image_len: stream.image_len(),
            shape: stream.shape_text(),
            stream: if regular { None } else { Some(stream) },
        });
    }
    if head.starts_with(&[0, 0, 8, 3]) || head.starts_with(&[0x1f, 0x8b]) {
        let whole = std::io::Cursor::new(head.to_vec()).chain(file);
        let stream = ImageStream::from_reader(path, whole)?;
        let (count, rows, cols) = (stream.count(), stream.rows(), stream.cols());
        return Ok(Source::Idx {
            path: path.to_path_buf(),
            count,
            rows,
            cols,
            stream: if regular { None } else { Some(stream) },
        });
    }
    bail!(
        "{}: not an IDX image file, PNG or PGM, nor a .npy array (unrecognised first bytes)",
        path.display()
    )
}

/// All of an image file's bytes, refusing more than [`MAX_IMAGE_BYTES`].
fn read_limited(mut reader: impl Read, path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let n = read_bounded(&mut reader, MAX_IMAGE_BYTES, &mut bytes)
        .with_context(|| format!("{}", path.display()))?;
    if n > MAX_IMAGE_BYTES {
        bail!(
            "{}: larger than the {MAX_IMAGE_BYTES} bytes accepted for one image",
            path.display()
        );
    }
    Ok(bytes)
}

/// Reads one image as 8-bit grayscale with exactly `pixels` pixels, from
/// `bytes` when the input was a stream, else from `path`.
pub fn read_image(path: &Path, bytes: Option<Vec<u8>>, pixels: usize) -> anyhow::Result<Vec<u8>> {
    let bytes = match bytes {
        Some(bytes) => bytes,
        None => read_limited(
            File::open(path).with_context(|| format!("{}", path.display()))?,
            path,
        )?,
    };
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

/// Decodes only an image of `pixels` pixels: the frame buffer follows the
/// header's claim, which a few bytes can make tens of megabytes. For any
/// other size the pixels come back empty and the caller reports the size.
fn decode_png(bytes: &[u8], pixels: usize) -> anyhow::Result<(usize, usize, Vec<u8>)> {
    let mut decoder = png::Decoder::new(BufReader::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| anyhow::anyhow!(png_message(&e)))?;
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
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| anyhow::anyhow!(png_message(&e)))?;
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
        *f = next_number(bytes, &mut pos, "header")?;
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
        for i in 0..n {
            let v = next_number(bytes, &mut pos, "pixel data")
                .with_context(|| format!("{w}x{h} needs {n} samples, found {i}"))?;
            gray.push(scale(v)?);
        }
    }
    Ok((w, h, gray))
}

/// The next decimal number of a PGM header or text body (`part` names
/// which, for a file that ends early), skipping whitespace and `#` comments.
fn next_number(bytes: &[u8], pos: &mut usize, part: &str) -> anyhow::Result<usize> {
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
            None => bail!("truncated {part}"),
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
