//! The architecture grammar of convolutional models: comma-separated
//! `cKxN` (a K×K convolution to N channels, stride 1), `p2` (2×2 max pool,
//! stride 2, an odd last row or column dropped) and `dN` (a dense layer of N
//! neurons), for example `c3x32,p2,c3x64,p2,d256,d10`.
//!
//! The rules make every accepted string a network the engine can run: a
//! convolution first, pools only directly after a convolution, no
//! convolution after a dense layer (the flatten before the first dense
//! layer is implicit, in NHWC order), and a final dense layer of 10 classes.
//! The shape checks that need the padding live in [`Arch::maps`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::CLASSES;
use crate::error::{Result, TrainError};

/// Largest accepted kernel side: far beyond any useful MNIST kernel, small
/// enough that a typo fails at once.
pub const MAX_KERNEL: usize = 15;
/// Largest accepted channel count of a convolution.
pub const MAX_CHANNELS: usize = 4096;
/// Largest accepted dense width (as for `--hidden`).
pub const MAX_WIDTH: usize = 1 << 16;
/// Largest accepted im2col row block per image (positions × k·k·C_in), so
/// that a batch's float buffers stay within memory.
pub const MAX_IM2COL: usize = 1 << 21;
/// Largest accepted weight count of one dense layer.
pub const MAX_DENSE_WEIGHTS: usize = 1 << 28;

/// One element of the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArchLayer {
    /// `cKxN`: a `K×K` stride-1 convolution with `N` output channels.
    Conv {
        /// The kernel side `K` (odd).
        kernel: usize,
        /// Output channels `N`.
        channels: usize,
    },
    /// `p2`: a 2×2, stride-2 max pool after the preceding convolution.
    Pool,
    /// `dN`: a dense layer of `N` neurons (the last one is the output).
    Dense(usize),
}

/// How a convolution treats the border.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Padding {
    /// (k−1)/2 on each side; the output keeps the input's height and width.
    #[default]
    Same,
    /// No padding; the output shrinks by k−1.
    Valid,
}

impl Padding {
    /// Positions padded on each side for a `kernel × kernel` window.
    pub fn margin(self, kernel: usize) -> usize {
        match self {
            Padding::Same => (kernel - 1) / 2,
            Padding::Valid => 0,
        }
    }
}

/// A parsed `--arch` string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    /// The layers in order, input side first.
    pub layers: Vec<ArchLayer>,
}

/// One convolution in place: its input map, its output map before and
/// after the optional pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    /// The kernel side (odd).
    pub kernel: usize,
    /// Padding margin on each side.
    pub pad: usize,
    /// Rows of the input map.
    pub in_h: usize,
    /// Columns of the input map.
    pub in_w: usize,
    /// Channels of the input map.
    pub in_c: usize,
    /// The convolution's output map.
    pub out_h: usize,
    /// Columns of the convolution's output, before the pool.
    pub out_w: usize,
    /// Output channels: the number of filters.
    pub out_c: usize,
    /// Whether a 2×2 max pool follows.
    pub pool: bool,
}

impl ConvShape {
    /// The length of one im2col row (= of one output channel's weights).
    pub fn patch(&self) -> usize {
        self.kernel * self.kernel * self.in_c
    }

    /// Height and width after the pool, if any.
    pub fn pooled(&self) -> (usize, usize) {
        if self.pool {
            (self.out_h / 2, self.out_w / 2)
        } else {
            (self.out_h, self.out_w)
        }
    }

    /// Values per image leaving this layer.
    pub fn outputs(&self) -> usize {
        let (h, w) = self.pooled();
        h * w * self.out_c
    }
}

fn bad(m: String) -> TrainError {
    TrainError::Config(m)
}

impl FromStr for Arch {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self> {
        let mut layers = Vec::new();
        for (i, item) in s.split(',').enumerate() {
            let item = item.trim();
            let at = |m: &str| bad(format!("architecture item {} '{item}': {m}", i + 1));
            let number = |text: &str, what: &str| -> Result<usize> {
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(at(&format!("{what} '{text}' is not a whole number")));
                }
                text.parse::<usize>()
                    .map_err(|_| at(&format!("{what} '{text}' is too large")))
            };
            let layer = if let Some(rest) = item.strip_prefix('c') {
                let (k, n) = rest
                    .split_once('x')
                    .ok_or_else(|| at("a convolution is cKxN, e.g. c3x32"))?;
                let (kernel, channels) = (number(k, "kernel size")?, number(n, "channel count")?);
                if kernel == 0 || kernel % 2 == 0 || kernel > MAX_KERNEL {
                    return Err(at(&format!(
                        "the kernel size must be odd, 1 to {MAX_KERNEL}"
                    )));
                }
                if channels == 0 || channels > MAX_CHANNELS {
                    return Err(at(&format!(
                        "the channel count must be 1 to {MAX_CHANNELS}"
                    )));
                }
                ArchLayer::Conv { kernel, channels }
            } else if let Some(rest) = item.strip_prefix('p') {
                if rest != "2" {
                    return Err(at("the only pool is p2 (2×2, stride 2)"));
                }
                ArchLayer::Pool
            } else if let Some(rest) = item.strip_prefix('d') {
                let width = number(rest, "width")?;
                if width == 0 || width > MAX_WIDTH {
                    return Err(at(&format!("the width must be 1 to {MAX_WIDTH}")));
                }
                ArchLayer::Dense(width)
            } else {
                return Err(at("expected cKxN (convolution), p2 (pool) or dN (dense)"));
            };
            match (layers.last(), layer) {
                (None, ArchLayer::Pool) => return Err(at("a pool cannot come first")),
                (Some(ArchLayer::Pool), ArchLayer::Pool) => {
                    return Err(at("a pool must follow a convolution directly"))
                }
                (Some(ArchLayer::Dense(_)), ArchLayer::Pool | ArchLayer::Conv { .. }) => {
                    return Err(at("convolutions and pools must come before dense layers"))
                }
                _ => {}
            }
            layers.push(layer);
        }
        match layers.first() {
            Some(ArchLayer::Conv { .. }) => {}
            _ => {
                return Err(bad(format!(
                    "architecture '{s}' has no convolution first (a dense-only network is --hidden)"
                )))
            }
        }
        // Its width is the class count, checked against the data's by
        // `TrainConfig::validate`.
        match layers.last() {
            Some(&ArchLayer::Dense(_)) => {}
            _ => {
                return Err(bad(format!(
                    "architecture '{s}' has no final dense layer (end it with d and the class count, d{CLASSES} for MNIST)"
                )))
            }
        }
        Ok(Arch { layers })
    }
}

impl Arch {
    /// The width of the last (output) layer; `None` where the last layer
    /// is not dense (which parsing refuses, but a stored configuration
    /// may hold).
    pub fn output_width(&self) -> Option<usize> {
        match self.layers.last() {
            Some(&ArchLayer::Dense(n)) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .layers
            .iter()
            .map(|l| match l {
                ArchLayer::Conv { kernel, channels } => format!("c{kernel}x{channels}"),
                ArchLayer::Pool => "p2".into(),
                ArchLayer::Dense(n) => format!("d{n}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

impl FromStr for Padding {
    type Err = TrainError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "same" => Ok(Padding::Same),
            "valid" => Ok(Padding::Valid),
            other => Err(bad(format!(
                "unknown padding '{other}' (known: same, valid)"
            ))),
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        })
    }
}

impl Arch {
    /// The convolutions in place on an `h`×`w`×`c` input, and the dense
    /// widths after them (the flattened features first, the classes last),
    /// or why the maps do not chain.
    pub fn maps(
        &self,
        padding: Padding,
        (h, w, c): (usize, usize, usize),
    ) -> Result<(Vec<ConvShape>, Vec<usize>)> {
        let mut convs: Vec<ConvShape> = Vec::new();
        let mut dense = Vec::new();
        let (mut h, mut w, mut c) = (h, w, c);
        for (i, layer) in self.layers.iter().enumerate() {
            match *layer {
                ArchLayer::Conv { kernel, channels } => {
                    let pad = padding.margin(kernel);
                    if h + 2 * pad < kernel || w + 2 * pad < kernel {
                        return Err(bad(format!(
                            "architecture item {} c{kernel}x{channels}: a {h}x{w} map is smaller than the kernel with {padding} padding",
                            i + 1
                        )));
                    }
                    let shape = ConvShape {
                        kernel,
                        pad,
                        in_h: h,
                        in_w: w,
                        in_c: c,
                        out_h: h + 2 * pad - kernel + 1,
                        out_w: w + 2 * pad - kernel + 1,
                        out_c: channels,
                        pool: false,
                    };
                    if shape.out_h * shape.out_w * shape.patch() > MAX_IM2COL {
                        return Err(bad(format!(
                            "architecture item {} c{kernel}x{channels}: {} patch values per image exceed {MAX_IM2COL}",
                            i + 1,
                            shape.out_h * shape.out_w * shape.patch()
                        )));
                    }
                    (h, w, c) = (shape.out_h, shape.out_w, channels);
                    convs.push(shape);
                }
                ArchLayer::Pool => {
                    if h < 2 || w < 2 {
                        return Err(bad(format!(
                            "architecture item {}: p2 on a {h}x{w} map leaves nothing",
                            i + 1
                        )));
                    }
                    convs
                        .last_mut()
                        .expect("the grammar puts a conv first")
                        .pool = true;
                    (h, w) = (h / 2, w / 2);
                }
                ArchLayer::Dense(n) => {
                    if dense.is_empty() {
                        dense.push(h * w * c);
                    }
                    let inputs = *dense.last().expect("pushed");
                    if inputs * n > MAX_DENSE_WEIGHTS {
                        return Err(bad(format!(
                            "architecture item {} d{n}: {inputs}x{n} weights exceed {MAX_DENSE_WEIGHTS}",
                            i + 1
                        )));
                    }
                    dense.push(n);
                }
            }
        }
        Ok((convs, dense))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_shape_parses_and_prints_back() {
        let s = "c3x32,p2,c3x64,p2,d256,d10";
        let a: Arch = s.parse().unwrap();
        assert_eq!(a.to_string(), s);
        let (convs, dense) = a.maps(Padding::Same, (28, 28, 1)).unwrap();
        assert_eq!(convs.len(), 2);
        assert_eq!(
            (convs[0].out_h, convs[0].patch(), convs[0].pool),
            (28, 9, true)
        );
        assert_eq!(
            (convs[1].in_h, convs[1].in_c, convs[1].patch()),
            (14, 32, 288)
        );
        assert_eq!(dense, vec![7 * 7 * 64, 256, 10]);
        // Valid padding shrinks by k − 1; the pool drops an odd last row.
        let (convs, dense) = a.maps(Padding::Valid, (28, 28, 1)).unwrap();
        assert_eq!(
            (convs[0].out_h, convs[1].in_h, convs[1].out_h),
            (26, 13, 11)
        );
        assert_eq!(dense, vec![5 * 5 * 64, 256, 10]);
    }

    #[test]
    fn bad_strings_get_one_line_naming_the_item() {
        for (s, says) in [
            ("c0x3,d10", "kernel size must be odd"),
            ("c4x3,d10", "kernel size must be odd"),
            ("c3x0,d10", "channel count must be 1"),
            ("c3x99999,d10", "channel count must be 1"),
            ("c3,d10", "cKxN"),
            ("c3x32,p3,d10", "only pool is p2"),
            ("c3x32,d0", "width must be 1"),
            ("p2,c3x32,d10", "cannot come first"),
            ("c3x32,p2,p2,d10", "follow a convolution directly"),
            ("c3x32,d64,c3x8,d10", "before dense layers"),
            ("c3x32,p2", "no final dense layer"),
            ("d256,d10", "no convolution first"),
            ("c3x32,,d10", "expected cKxN"),
            ("c3x-2,d10", "not a whole number"),
            ("c99999999999999999999x2,d10", "too large"),
        ] {
            let e = s.parse::<Arch>().unwrap_err().to_string();
            assert!(e.contains(says), "{s}: {e}");
            assert!(!e.contains('\n'), "{s}: {e}");
        }
    }

    #[test]
    fn maps_that_do_not_chain_are_refused() {
        let a: Arch = "c5x8,p2,c5x8,p2,c5x8,d10".parse().unwrap();
        let conv = |side: usize, in_c: usize, pool: bool| ConvShape {
            kernel: 5,
            pad: 2,
            in_h: side,
            in_w: side,
            in_c,
            out_h: side,
            out_w: side,
            out_c: 8,
            pool,
        };
        assert_eq!(
            a.maps(Padding::Same, (28, 28, 1)).unwrap(),
            (
                vec![conv(28, 1, true), conv(14, 8, true), conv(7, 8, false)],
                vec![7 * 7 * 8, 10]
            )
        );
        let e = a.maps(Padding::Valid, (28, 28, 1)).unwrap_err().to_string();
        assert!(e.contains("smaller than the kernel"), "{e}");
        let a: Arch = "c3x8,p2,c3x8,p2,c3x8,p2,c3x8,p2,c3x8,p2,d10"
            .parse()
            .unwrap();
        let e = a.maps(Padding::Same, (28, 28, 1)).unwrap_err().to_string();
        assert!(e.contains("p2 on a 1x1 map"), "{e}");
        let a: Arch = "c3x4096,c3x4096,d10".parse().unwrap();
        let e = a.maps(Padding::Same, (28, 28, 1)).unwrap_err().to_string();
        assert!(e.contains("patch values per image"), "{e}");
        let a: Arch = "c3x1024,d65536,d10".parse().unwrap();
        let e = a.maps(Padding::Same, (28, 28, 1)).unwrap_err().to_string();
        assert!(e.contains("weights exceed"), "{e}");
    }
}
