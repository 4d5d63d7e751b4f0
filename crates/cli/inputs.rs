//! What `bnn classify` reads: IDX image files and `.npy` uint8 arrays
//! (both streamed in bounded chunks), and PNG or PGM images, given as files
//! or as directories of them.
//!
//! Images must have the model's input shape ([`check_fits`]): a model that
//! records its shape (every convolutional model, and u8-input MLPs) takes
//! only images of exactly that height × width × channels, and a
//! convolutional model takes no flat vectors; a model that records none
//! takes any input of as many values as it has inputs (28×28 for MNIST
//! models). PNGs and PGMs are decoded by [`bnn_data::image`], the decoder
//! the image-folder data sets are read with too, and colour converted to
//! luma (0.299 R + 0.587 G + 0.114 B). MNIST's convention applies: bright
//! ink on a dark background.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use bnn_core::InputShape;
use bnn_data::idx::ImageStream;
use bnn_data::image::{self, MAX_IMAGE_BYTES};
use bnn_data::npz::NpyImages;
use bnn_io::read::read_full;

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
    /// A data set read whole (a `.npz`, a CSV, a `.npy` of features for a
    /// model with a stored encoding, or a directory of class folders, CIFAR
    /// batches or IDX files), already the model's input: `count` samples.
    Set {
        path: PathBuf,
        pixels: Vec<u8>,
        count: usize,
    },
    /// One PNG or PGM image.
    Image {
        path: PathBuf,
        /// Its bytes when they were read from a stream while recognising
        /// it; `None` for a regular file, read in its turn.
        bytes: Option<Vec<u8>>,
    },
}

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Expands directories (their PNG/PGM files, sorted by name) and recognises
/// each file by its content, opening each input once.
///
/// In a directory, every entry named `*.png` or `*.pgm` (any case) must be a
/// regular image file, links followed: a broken or looping link, a FIFO, a
/// device or a subdirectory under such a name is an error naming it, as an
/// unreadable or corrupt image is. Other entries are ignored.
///
/// A directory without images of its own is a data set (class folders,
/// CIFAR batches, IDX files), and so is a `.npz` or a CSV; these, and any
/// `.npy` for a model with a stored feature encoding, are read whole by
/// `read_set`, which makes them the model's input.
pub fn expand(
    inputs: &[PathBuf],
    read_set: &dyn Fn(&Path) -> anyhow::Result<Source>,
    encoded: bool,
) -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    for path in inputs {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        let has_entries = meta.is_dir()
            && std::fs::read_dir(path)
                .with_context(|| format!("{}", path.display()))?
                .next()
                .is_some();
        if has_entries && !has_images(path)? {
            sources.push(read_set(path)?);
        } else if meta.is_dir() {
            let mut images: Vec<PathBuf> = Vec::new();
            for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
                let entry = entry.with_context(|| format!("{}", path.display()))?;
                let p = entry.path();
                if image::named_image(&p) {
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
            sources.push(open(path, read_set, encoded)?);
        }
    }
    Ok(sources)
}

/// Whether `dir` holds an entry named like a PNG or PGM image.
fn has_images(dir: &Path) -> anyhow::Result<bool> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let entry = entry.with_context(|| format!("{}", dir.display()))?;
        if image::named_image(&entry.path()) {
            return Ok(true);
        }
    }
    Ok(false)
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
fn open(
    path: &Path,
    read_set: &dyn Fn(&Path) -> anyhow::Result<Source>,
    encoded: bool,
) -> anyhow::Result<Source> {
    let name = || format!("{}", path.display());
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if csv {
        return read_set(path);
    }
    let mut file = File::open(path).with_context(name)?;
    let regular = file.metadata().with_context(name)?.is_file();
    let mut head = [0u8; 8];
    let n = read_full(&mut file, &mut head).with_context(name)?;
    let head = &head[..n];
    let is_image = image::sniff(head).is_some();
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
    let zip = head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06");
    if zip || (encoded && head.starts_with(NPY_MAGIC)) {
        // Read whole, from the start: a pipe has given its first bytes.
        if !regular {
            bail!(
                "{}: a .npz, or a .npy of features, must be a regular file, not a pipe or device",
                path.display()
            );
        }
        drop(file);
        return read_set(path);
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
        "{}: not an IDX image file, PNG or PGM, .npy, .npz nor .csv (unrecognised first bytes)",
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
fn read_limited(reader: impl Read, path: &Path) -> anyhow::Result<Vec<u8>> {
    match image::read_limited(reader) {
        Ok(bytes) => Ok(bytes),
        Err(image::ReadFailure::Io(e)) => Err(e).with_context(|| format!("{}", path.display())),
        Err(image::ReadFailure::TooLarge) => bail!(
            "{}: larger than the {MAX_IMAGE_BYTES} bytes accepted for one image",
            path.display()
        ),
    }
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
    let decoded = match image::sniff(&bytes) {
        Some(image::Format::Png) => image::decode_png(&bytes, Some(takes.len))
            .map_err(|e| anyhow::anyhow!("{}: invalid PNG: {e}", path.display()))?,
        Some(image::Format::Pgm) => image::decode_pgm(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: invalid PGM: {e}", path.display()))?,
        None => bail!(
            "{}: not a PNG or PGM image (its first bytes are neither the PNG signature nor P5/P2)",
            path.display()
        ),
    };
    let (w, h) = (decoded.width, decoded.height);
    check_fits(path, "is an image of", Given::Image(h, w, 1), takes)?;
    Ok(decoded.into_gray())
}
