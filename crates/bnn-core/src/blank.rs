//! Blank fields: the convolution outputs an image's zero pixels fix.
//!
//! A convolution's output at one position is a function of its window
//! alone: the input values there, and the padding, which is the same for
//! every image. A 2×2 pool's output is a function of its four inputs. So,
//! by induction over the stages, wherever a position's *receptive field*
//! (every input pixel it depends on, through every stage before it) holds
//! only zero pixels, its output equals the output at the same position for
//! the blank image, whose pixels are all zero. The model runs the blank
//! image once when it is built and keeps each convolution's output map
//! (`ConvStage::blank`); each image then computes only the positions whose
//! field touches a non-zero pixel (*live* ones) and copies the others. The
//! result is exact by construction, bit for bit, for every input encoding:
//! a zero pixel gives the blank image's input value at its position
//! whether the input is u8 or thresholded to a bit.
//!
//! Handwritten digits are mostly background. Over the 10,000 MNIST test
//! digits, the share of positions that stay live is 32 % for a 3×3 first
//! convolution and 62 % for a 3×3 second one after a 2×2 pool (`cnn-small`),
//! 44 % and 89 % with 5×5 kernels (`cnn`).
//!
//! The live positions are tracked as one `u64` mask per map row, so a
//! stage costs a few shifts and ORs a row: a map wider than 64 positions
//! keeps every position live (no skipping, the same results).

use crate::bits::or_bits;
use crate::kernel::{Kernel, Spot};

/// Which positions of a map may differ from the blank image's: bit `x` of
/// `rows[y]` for position `(y, x)`, or every position (`all`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Live {
    rows: Vec<u64>,
    width: usize,
    all: bool,
    /// Scratch for the horizontal pass of [`Live::convolve`].
    spare: Vec<u64>,
    /// Scratch for the packed pixels of [`Live::of_pixels`].
    packed: Vec<u64>,
}

/// Widest map tracked by masks.
const MAX_WIDTH: usize = 64;

/// Most words of blank maps a model keeps per kernel (64 MiB): a model
/// with more computes every position rather than hold them.
const MAX_BLANK_WORDS: usize = 1 << 23;

/// Whether a model skips blank fields: its input is at most
/// [`MAX_WIDTH`] positions wide and its convolutions' maps (before
/// pooling) total at most [`MAX_BLANK_WORDS`] words.
pub(crate) fn applies(width: usize, words: usize) -> bool {
    width <= MAX_WIDTH && words <= MAX_BLANK_WORDS
}

/// The low `n` bits (`n` ≤ 64).
fn low_bits(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// The bits of `v` at even positions, gathered into the low half: bit
/// `2i` goes to bit `i`.
fn even_bits(v: u64) -> u64 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | x >> 1) & 0x3333_3333_3333_3333;
    x = (x | x >> 2) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | x >> 4) & 0x00FF_00FF_00FF_00FF;
    x = (x | x >> 8) & 0x0000_FFFF_0000_FFFF;
    (x | x >> 16) & 0x0000_0000_FFFF_FFFF
}

impl Live {
    /// Every position live: the blank image's own run, or a map too wide.
    pub fn everything(&mut self) {
        self.all = true;
    }

    /// The positions of an `h×w×c` image with a non-zero pixel in any
    /// channel.
    pub fn of_pixels(&mut self, kernel: Kernel, pixels: &[u8], (h, w, c): (usize, usize, usize)) {
        self.all = w > MAX_WIDTH;
        if self.all {
            return;
        }
        self.width = w;
        self.rows.clear();
        if c == 1 {
            // Pixel ≥ 1 is a non-zero pixel: the packing kernel's compare.
            self.packed.clear();
            self.packed.resize(crate::bits::words_for(pixels.len()), 0);
            kernel.pack_pixels(pixels, 1, &mut self.packed);
            let packed = &self.packed;
            self.rows.extend((0..h).map(|y| {
                let mut row = [0u64];
                or_bits(packed, y * w, &mut row, 0, w);
                row[0]
            }));
        } else {
            // The OR of a position's channels, with no branch a channel,
            // which colour noise would mispredict.
            self.rows
                .extend(pixels.chunks_exact(w * c).take(h).map(|row| {
                    row.chunks_exact(c).enumerate().fold(0u64, |m, (x, p)| {
                        m | u64::from(p.iter().fold(0, |a, &v| a | v) != 0) << x
                    })
                }));
        }
    }

    /// Moves the mask through a `k×k` convolution with `pad` positions of
    /// padding before each side, onto its `ho×wo` output: an output
    /// position is live when any position of its window is.
    pub fn convolve(&mut self, k: usize, pad: usize, (ho, wo): (usize, usize)) {
        if self.all {
            return;
        }
        let h = self.rows.len();
        let keep = low_bits(wo);
        // Horizontal: bit x of the result ORs bits x - pad .. x - pad + k - 1.
        self.spare.clear();
        self.spare.extend(self.rows.iter().map(|&r| {
            (0..k).fold(0u64, |m, kx| {
                let d = kx as isize - pad as isize;
                m | if d >= 0 { r >> d } else { r << -d }
            }) & keep
        }));
        // Vertical: output row oy ORs input rows oy - pad .. oy - pad + k - 1.
        self.rows.clear();
        self.rows.extend((0..ho).map(|oy| {
            let lo = oy.saturating_sub(pad);
            let hi = (oy + k).saturating_sub(pad).min(h);
            self.spare[lo.min(hi)..hi].iter().fold(0, |m, &r| m | r)
        }));
        self.width = wo;
    }

    /// Moves the mask through a 2×2 max pool, stride 2: a pooled position
    /// is live when any of its four is (an odd last row or column drops
    /// out, as in the pool).
    pub fn pool(&mut self) {
        if self.all {
            return;
        }
        let wp = self.width / 2;
        let pooled = self.rows.chunks_exact(2).map(|pair| {
            let both = pair[0] | pair[1];
            even_bits(both | both >> 1) & low_bits(wp)
        });
        self.spare.clear();
        self.spare.extend(pooled);
        std::mem::swap(&mut self.rows, &mut self.spare);
        self.width = wp;
    }

    /// Lists the live positions of an `ho×wo` map, row by row, in the
    /// first entries of `out` (the count is returned): output row
    /// `oy·wo + ox` and the window start `base(oy, ox)`. `out` keeps room
    /// for every position from call to call, so listing writes each spot
    /// by index with no capacity check and no clearing.
    pub fn spots(
        &self,
        (ho, wo): (usize, usize),
        base: impl Fn(usize, usize) -> usize,
        out: &mut Vec<Spot>,
    ) -> usize {
        if out.len() < ho * wo {
            out.resize(ho * wo, Spot::default());
        }
        let spot = |oy: usize, ox: usize| Spot {
            row: (oy * wo + ox) as u32,
            base: base(oy, ox) as u32,
        };
        if self.all {
            for (i, at) in out.iter_mut().take(ho * wo).enumerate() {
                *at = spot(i / wo, i % wo);
            }
            return ho * wo;
        }
        let mut n = 0;
        for (oy, &mask) in self.rows.iter().enumerate().take(ho) {
            let mut m = mask;
            while m != 0 {
                out[n] = spot(oy, m.trailing_zeros() as usize);
                n += 1;
                m &= m - 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious forms, position by position.
    fn dilate(
        live: &[Vec<bool>],
        k: usize,
        pad: usize,
        (ho, wo): (usize, usize),
    ) -> Vec<Vec<bool>> {
        let (h, w) = (live.len(), live[0].len());
        (0..ho)
            .map(|oy| {
                (0..wo)
                    .map(|ox| {
                        (0..k).any(|ky| {
                            (0..k).any(|kx| {
                                let (y, x) = (oy + ky, ox + kx);
                                y >= pad
                                    && x >= pad
                                    && y - pad < h
                                    && x - pad < w
                                    && live[y - pad][x - pad]
                            })
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn masks(live: &[Vec<bool>]) -> Vec<u64> {
        live.iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold(0, |m, (x, &b)| m | u64::from(b) << x)
            })
            .collect()
    }

    #[test]
    fn masks_follow_convolutions_and_pools() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..300 {
            let h = 1 + (next() % 40) as usize;
            let w = 1 + (next() % 64) as usize;
            let k = [1, 3, 5, 7][case % 4];
            let same = next() % 2 == 0;
            if !same && (h < k || w < k) {
                continue;
            }
            let pad = if same { (k - 1) / 2 } else { 0 };
            let (ho, wo) = (h + 2 * pad - k + 1, w + 2 * pad - k + 1);
            let density = next() % 16;
            let pixels: Vec<u8> = (0..h * w)
                .map(|_| {
                    if next() % 16 < density {
                        1 + (next() % 255) as u8
                    } else {
                        0
                    }
                })
                .collect();
            let truth: Vec<Vec<bool>> = pixels
                .chunks(w)
                .map(|r| r.iter().map(|&p| p != 0).collect())
                .collect();
            for kernel in crate::kernel::available() {
                let mut live = Live::default();
                live.of_pixels(kernel, &pixels, (h, w, 1));
                assert_eq!(live.rows, masks(&truth), "pixels {h}×{w}");
                live.convolve(k, pad, (ho, wo));
                let conv = dilate(&truth, k, pad, (ho, wo));
                assert_eq!(live.rows, masks(&conv), "k {k} pad {pad} on {h}×{w}");
                live.pool();
                let pooled: Vec<Vec<bool>> = (0..ho / 2)
                    .map(|y| {
                        (0..wo / 2)
                            .map(|x| {
                                conv[2 * y][2 * x]
                                    || conv[2 * y][2 * x + 1]
                                    || conv[2 * y + 1][2 * x]
                                    || conv[2 * y + 1][2 * x + 1]
                            })
                            .collect()
                    })
                    .collect();
                assert_eq!(live.rows, masks(&pooled), "pool of {ho}×{wo}");
                let mut spots = vec![Spot::default(); 7];
                let n = live.spots((ho / 2, wo / 2), |y, x| 1000 * y + x, &mut spots);
                spots.truncate(n);
                let want: Vec<Spot> = (0..ho / 2)
                    .flat_map(|y| (0..wo / 2).map(move |x| (y, x)))
                    .filter(|&(y, x)| pooled[y][x])
                    .map(|(y, x)| Spot {
                        row: (y * (wo / 2) + x) as u32,
                        base: (1000 * y + x) as u32,
                    })
                    .collect();
                assert_eq!(spots, want);
            }
        }
    }

    #[test]
    fn channels_count_any_non_zero_value() {
        let mut live = Live::default();
        // 2×3 positions, 2 channels: live where either channel is non-zero.
        let pixels = [0, 0, 0, 9, 0, 0, /**/ 7, 0, 0, 0, 1, 1];
        live.of_pixels(Kernel::Scalar, &pixels, (2, 3, 2));
        assert_eq!(live.rows, vec![0b010, 0b101]);
    }

    #[test]
    fn wide_maps_keep_every_position() {
        let mut live = Live::default();
        live.of_pixels(Kernel::Scalar, &[0; 2 * 65], (2, 65, 1));
        live.convolve(3, 1, (2, 65));
        let mut spots = Vec::new();
        assert_eq!(live.spots((2, 65), |_, _| 0, &mut spots), 130);
    }
}
