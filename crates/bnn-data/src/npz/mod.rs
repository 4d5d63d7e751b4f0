//! Reading NumPy `.npz` files without NumPy or ndarray.
//!
//! The seed network's weights are published as an `.npz` (a zip of `.npy`
//! arrays). Only a handful of small arrays are needed, so a compact, fully
//! checked parser is preferable to a heavy dependency: every size is checked
//! against the archive before anything is allocated, and unsupported
//! layouts are rejected with a message naming the array.

mod archive;
mod data;
mod dense;
mod images;
mod npy;
mod pydict;

pub use archive::NpzArchive;
pub use data::NpyData;
pub use dense::{read_seed_layers, DenseParams};
pub use images::NpyImages;
pub(crate) use npy::{read_npy_limited, shape_str};

/// One array from a `.npy` file, in row-major (C) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements, `shape.iter().product()` of them.
    pub data: NpyData,
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.len() == 0
    }

    /// The elements converted to `f64` (see [`NpyData::to_f64`]).
    pub fn to_f64(&self) -> Vec<f64> {
        self.data.to_f64()
    }

    /// Parses one whole `.npy` held in memory (an upload, a request body)
    /// with the checks a file gets: the header first, then exactly the
    /// bytes the shape needs, at most `max_elements` values. Errors are
    /// plain descriptions; the caller names where the bytes came from.
    pub fn from_bytes(bytes: &[u8], max_elements: u64) -> Result<NpyArray, String> {
        let mut reader = std::io::Cursor::new(bytes);
        read_npy_limited(&mut reader, bytes.len() as u64, max_elements)
    }
}
