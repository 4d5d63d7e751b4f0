//! What the first layer sees: the input encoding and the input shape.
//!
//! A binary-input model turns each pixel into one ±1 bit at a threshold
//! before its first XNOR layer, which throws away most of what a pixel says.
//! A u8-input model keeps the pixel: its first layer ([`crate::PixelDense`])
//! multiplies the value 0..=255 by ±1 weights, and only its outputs are
//! bits. The shape is recorded so that layers which care where a pixel sits
//! (convolutions) can be added without a new file format.

use crate::error::{Error, Result};

/// How pixels enter the first layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputEncoding {
    /// Each pixel is +1 when `p >= threshold`, else −1 (every v1 model).
    Binary {
        /// The smallest pixel value that reads as +1.
        threshold: u8,
    },
    /// Each pixel enters as its integer value `p` in 0..=255.
    U8,
}

impl InputEncoding {
    /// A short name for reports: `binary>=128` or `u8`.
    pub fn describe(self) -> String {
        match self {
            InputEncoding::Binary { threshold } => format!("binary (pixel >= {threshold} is +1)"),
            InputEncoding::U8 => "u8 (pixel value 0..=255 times ±1 weights)".into(),
        }
    }

    /// Whether pixels enter as values (a pixel first layer) rather than bits.
    pub fn is_u8(self) -> bool {
        self == InputEncoding::U8
    }
}

/// Height × width × channels of one input, row-major with channels last
/// (HWC), so that pixel `(y, x, c)` is input `(y·W + x)·C + c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InputShape {
    /// Rows (`H`); 1 for a plain vector.
    pub height: u32,
    /// Columns (`W`); 1 for a plain vector.
    pub width: u32,
    /// Values per position (`C`): 1 for grey, 3 for RGB, `n` for a vector.
    pub channels: u32,
}

impl InputShape {
    /// `height × width × channels`, unchecked: [`InputShape::check`] holds
    /// it against the model's input length.
    pub const fn new(height: u32, width: u32, channels: u32) -> Self {
        InputShape {
            height,
            width,
            channels,
        }
    }

    /// A plain vector of `n` inputs: `1×1×n`.
    pub const fn flat(n: u32) -> Self {
        InputShape::new(1, 1, n)
    }

    /// Whether the shape is a plain vector (`1×1×n`), with no positions a
    /// convolution could use.
    pub fn is_flat(self) -> bool {
        self.height == 1 && self.width == 1
    }

    /// The number of inputs, or `None` when the product overflows.
    pub fn len(self) -> Option<usize> {
        (self.height as usize)
            .checked_mul(self.width as usize)?
            .checked_mul(self.channels as usize)
    }

    /// Whether the shape holds no inputs (a side is 0).
    pub fn is_empty(self) -> bool {
        self.len() == Some(0)
    }

    /// Checks that the shape holds exactly `input_len` inputs.
    pub fn check(self, input_len: usize) -> Result<()> {
        if self.is_empty() || self.len() != Some(input_len) {
            return Err(Error::InvalidModel(format!(
                "input shape {self} does not hold {input_len} inputs"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for InputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}
