//! What `bnn classify` reads: IDX image files and `.npy` uint8 arrays
//! (both streamed in bounded chunks), and PNG or PGM images, given as files
//! or as directories of them.
//!
//! Images must have the model's input shape ([`check_fits`]): a model that
//! records its shape (every convolutional model, and u8-input MLPs) takes
//! only images of exactly that height × width × channels, and a
//! convolutional model takes no flat vectors; a model that records none
//! takes any input of as many values as it has inputs (28×28 for MNIST
//! models). PNGs are decoded with the `png` crate: palette and
//! low-bit-depth images are expanded, 16-bit samples reduced to 8, an alpha
//! channel ignored, and colour converted to luma (0.299 R + 0.587 G +
//! 0.114 B). PGMs (binary P5 or text P2) are scaled to 0..=255 by their
//! maxval. MNIST's convention applies: bright ink on a dark background.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bnn_core::InputShape;
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
        /// One image's shape, from the array's.
        given: Given,
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
            given: Given::of_npy(stream.shape()),
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
    if let Some(what) = head
        .first_chunk::<4>()
        .and_then(|m| bnn_data::idx::describe_magic(*m))
    {
        bail!(
            "{}: {what}, not an IDX image file (unsigned bytes, rank 3), the only IDX classify reads",
            path.display()
        );
    }
    bail!(
        "{}: not an IDX image file, PNG or PGM, nor a .npy array (unrecognised first bytes)",
        path.display()
    )
}

/// What a model takes, as the input checks need it: the number of inputs,
/// the shape it records, and whether that shape is binding for every input
/// (a convolution reads pixels by position, so it is).
#[derive(Clone, Copy, Debug)]
pub struct Takes {
    pub len: usize,
    pub shape: InputShape,
    pub convolutional: bool,
}

impl Takes {
    pub fn of(model: &bnn_core::Model) -> Takes {
        Takes {
            len: model.input_len(),
            shape: model.input_shape(),
            convolutional: model.is_convolutional(),
        }
    }

    /// "the convolutional model takes images of 28x28x1 (HxWxC)", or "the
    /// model takes 784 inputs" for a model that records no shape.
    fn wanted(&self) -> String {
        if self.shape.is_flat() {
            let mnist = if self.len == 784 {
                " (28x28 grayscale)"
            } else {
                ""
            };
            format!("the model takes {} inputs{mnist}", self.len)
        } else {
            let kind = if self.convolutional {
                "convolutional model"
            } else {
                "model"
            };
            format!("the {kind} takes images of {} (HxWxC)", self.shape)
        }
    }

    /// The `.npy` shape to save for this model, for a hint.
    fn npy_shape(&self) -> String {
        let s = self.shape;
        if s.channels == 1 {
            format!("(N, {}, {})", s.height, s.width)
        } else {
            format!("(N, {}, {}, {})", s.height, s.width, s.channels)
        }
    }
}

/// The shape of one input as its file gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Given {
    /// A vector of this many values and no shape: a `.npy` (N, values).
    Flat(usize),
    /// An image of height × width × channels.
    Image(usize, usize, usize),
}

impl Given {
    /// One image of a `.npy` image array of `shape` (N first).
    pub fn of_npy(shape: &[usize]) -> Given {
        match shape {
            [_, h, w] => Given::Image(*h, *w, 1),
            [_, h, w, c] => Given::Image(*h, *w, *c),
            // (N, inputs); `NpyImages` accepts no other rank.
            _ => Given::Flat(shape[1..].iter().product()),
        }
    }

    /// What an array of `shape` (as Python writes it) holds, for
    /// [`check_fits`]: "array of shape (10, 28, 28) holds images of".
    pub fn npy_subject(self, shape: &str) -> String {
        match self {
            Given::Flat(_) => format!("array of shape {shape} holds"),
            Given::Image(..) => format!("array of shape {shape} holds images of"),
        }
    }

    fn len(self) -> Option<usize> {
        match self {
            Given::Flat(n) => Some(n),
            Given::Image(h, w, c) => h.checked_mul(w)?.checked_mul(c),
        }
    }
}

impl std::fmt::Display for Given {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Given::Flat(n) => write!(f, "flat vectors of {n} values"),
            Given::Image(h, w, c) => write!(f, "{h}x{w}x{c} (HxWxC)"),
        }
    }
}

/// Checks that inputs of shape `given` fit the model: as many values as it
/// has inputs, and, when the model records a shape, that very shape (or,
/// for a model without convolutions, a flat vector of that length). A
/// 56×14 image has as many pixels as a 28×28 one, but read as 28×28 it is
/// another picture, and a convolution would classify it without a word.
/// `subject` says what holds the inputs ("holds images of", "is an image
/// of", "array of shape (10, 784) holds").
pub fn check_fits(path: &Path, subject: &str, given: Given, takes: &Takes) -> anyhow::Result<()> {
    let fail = |hint: &str| {
        bail!(
            "{}: {subject} {given} but {}{hint}",
            path.display(),
            takes.wanted()
        )
    };
    if given.len() != Some(takes.len) {
        return fail("");
    }
    let fits = match given {
        Given::Flat(_) => !takes.convolutional,
        Given::Image(h, w, c) => {
            let s = takes.shape;
            s.is_flat() || (h, w, c) == (s.height as usize, s.width as usize, s.channels as usize)
        }
    };
    if fits {
        return Ok(());
    }
    match given {
        Given::Flat(_) => fail(&format!(": save the array as {}", takes.npy_shape())),
        Given::Image(..) => fail(""),
    }
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

/// Reads one image as 8-bit grayscale of the shape `takes` asks for (see
/// [`check_fits`]), from `bytes` when the input was a stream, else from
/// `path`. A file named like an image is recognised by its content: one
/// that is neither PNG nor PGM is named as such.
pub fn read_image(path: &Path, bytes: Option<Vec<u8>>, takes: &Takes) -> anyhow::Result<Vec<u8>> {
    let bytes = match bytes {
        Some(bytes) => bytes,
        None => read_limited(
            File::open(path).with_context(|| format!("{}", path.display()))?,
            path,
        )?,
    };
    let (w, h, gray) = if bytes.starts_with(PNG_SIGNATURE) {
        decode_png(&bytes, takes.len).with_context(|| format!("{}: invalid PNG", path.display()))?
    } else if bytes.starts_with(b"P5") || bytes.starts_with(b"P2") {
        decode_pgm(&bytes).with_context(|| format!("{}: invalid PGM", path.display()))?
    } else {
        bail!(
            "{}: not a PNG or PGM image (its first bytes are neither the PNG signature nor P5/P2)",
            path.display()
        );
    };
    check_fits(path, "is an image of", Given::Image(h, w, 1), takes)?;
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
    if let Some(end) = png_end(bytes)?.filter(|&end| end < bytes.len()) {
        bail!(
            "trailing data: {} bytes after the IEND chunk that ends the image at byte {end}",
            bytes.len() - end
        );
    }
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

/// Where a PNG's IEND chunk ends, walking the chunks' lengths; `None` when
/// the chunks do not reach one (the decoder reports that). The walk also
/// checks what the decoder never reads, since it stops at the image data:
/// the CRC of every chunk, that IEND is empty, and that no chunk is an
/// unknown critical one (which the PNG specification has a decoder refuse,
/// as the image cannot be shown right without it; the decoder passes over
/// those before the image data too).
fn png_end(bytes: &[u8]) -> anyhow::Result<Option<usize>> {
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
            bail!("CRC error in the {name} chunk at byte {pos}");
        }
        let critical = kind[0].is_ascii_uppercase();
        if critical && !matches!(kind, b"IHDR" | b"PLTE" | b"IDAT" | b"IEND") {
            bail!("unknown critical chunk {name} at byte {pos}");
        }
        if kind == b"IEND" {
            if len != 0 {
                bail!("IEND chunk at byte {pos} holds {len} bytes; it must be empty");
            }
            return Ok(Some(end));
        }
        pos = end;
    }
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
        pos += data.len();
    } else {
        for i in 0..n {
            let v = next_number(bytes, &mut pos, "pixel data")
                .with_context(|| format!("{w}x{h} needs {n} samples, found {i}"))?;
            gray.push(scale(v)?);
        }
        // Whitespace and comments may end a text file.
        skip_space(bytes, &mut pos);
    }
    // One image a file: a second image or appended bytes would otherwise
    // be ignored without a word.
    if pos < bytes.len() {
        bail!(
            "trailing data: {} bytes after the {w}x{h} image, from offset {pos} (a file holds one image)",
            bytes.len() - pos
        );
    }
    Ok((w, h, gray))
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
fn next_number(bytes: &[u8], pos: &mut usize, part: &str) -> anyhow::Result<usize> {
    skip_space(bytes, pos);
    match bytes.get(*pos) {
        Some(b) if b.is_ascii_digit() => {}
        Some(b) => bail!("unexpected byte {b:#04x} at offset {pos}"),
        None => bail!("truncated {part}"),
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
