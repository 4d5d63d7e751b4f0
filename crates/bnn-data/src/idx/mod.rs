//! Checked reading and writing of IDX files, the format MNIST ships in.
//!
//! IDX is a big-endian header (magic number, then one `u32` per dimension)
//! followed by raw bytes. Nothing in the format protects against truncation
//! or a corrupt header, so every reader here checks the magic, rejects zero
//! or overflowing dimensions, and compares the size the header claims with
//! the bytes actually present, without ever allocating on the header's word
//! alone. Files may be raw or gzip-compressed; compression is detected from
//! the content, not the file name.

mod header;
mod read;
pub(crate) mod source;
mod stack;
mod stream;
mod write;

pub use read::{read_images, read_labels};
pub use stack::{read_image_stack, ImageStack};
pub use stream::ImageStream;
pub use write::{write_images, write_labels};

/// Magic number of an IDX file of unsigned bytes with three dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// What an IDX magic number declares, in words, when it is one: the format
/// puts two zero bytes, an element type code and the rank (the number of
/// dimensions) first. `None` for bytes that are no IDX magic at all.
///
/// bnn reads only unsigned bytes of rank 3 (images) and 1 (labels); this
/// lets a message say "an IDX of float32 elements and rank 3" rather than
/// "unrecognised first bytes" or a bare hexadecimal number.
pub fn describe_magic(magic: [u8; 4]) -> Option<String> {
    let [0, 0, code, rank] = magic else {
        return None;
    };
    let element = match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "int16",
        0x0C => "int32",
        0x0D => "float32",
        0x0E => "float64",
        _ => return None,
    };
    (rank > 0).then(|| format!("an IDX of element type {element} and rank {rank}"))
}

/// A stack of greyscale images, as stored in an IDX3 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// Pixels, image after image, each image row-major: `count * rows * cols`
    /// bytes.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Bytes per image (`rows * cols`).
    pub fn image_len(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `index`.
    ///
    /// # Panics
    /// If `index >= count`.
    pub fn image(&self, index: usize) -> &[u8] {
        let len = self.image_len();
        &self.pixels[index * len..(index + 1) * len]
    }
}

/// Class labels, as stored in an IDX1 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// One byte per item.
    pub labels: Vec<u8>,
}
