//! The reference loop of a u8 convolution: every listed position's window,
//! read as runs from the padded image, against every filter, thresholded
//! to bits. The SIMD kernels keep the same structure, four blocks of 16
//! filters (one output word) at a time, but take every group, zero or not,
//! for several listed positions at once (see `x86_64_rows.rs`).

use super::{PixelRows, PIXEL_GROUP, PIXEL_LANES};

/// Blocks of 16 filters per output word.
pub const BLOCKS_PER_WORD: usize = 64 / PIXEL_LANES;

impl PixelRows<'_> {
    /// Calls `add(group, pixels)` for each of the window's groups of 4
    /// pixels that are not all zero (the 4 pixels in a little-endian
    /// `u32`), run after run: plain nested loops, which compile tighter than
    /// an iterator chain in the kernels' inner loop.
    #[inline(always)]
    pub fn for_nonzero_groups(&self, base: usize, mut add: impl FnMut(usize, u32)) {
        let bytes = self.run_groups * PIXEL_GROUP;
        for ky in 0..self.runs {
            let run = &self.pixels[base + ky * self.line..][..bytes];
            for (g, four) in run.chunks_exact(PIXEL_GROUP).enumerate() {
                let four = u32::from_le_bytes(four.try_into().expect("4 bytes"));
                if four != 0 {
                    add(ky * self.run_groups + g, four);
                }
            }
        }
    }
}

pub fn pixel_rows_fire(a: &PixelRows<'_>, out: &mut [u64]) {
    let line = a.blocks * PIXEL_LANES * PIXEL_GROUP;
    for spot in a.spots {
        let (r, base) = (spot.row as usize, spot.base as usize);
        for word in 0..a.out_wpr {
            let b0 = word * BLOCKS_PER_WORD;
            let nb = BLOCKS_PER_WORD.min(a.blocks - b0);
            let mut acc = [0i32; 64];
            a.for_nonzero_groups(base, |g, four| {
                let w = &a.weights[g * line + b0 * PIXEL_LANES * PIXEL_GROUP..];
                for (s, w) in acc[..nb * PIXEL_LANES]
                    .iter_mut()
                    .zip(w.chunks_exact(PIXEL_GROUP))
                {
                    *s += four
                        .to_le_bytes()
                        .iter()
                        .zip(w)
                        .map(|(&p, &w)| i32::from(p) * i32::from(w))
                        .sum::<i32>();
                }
            });
            let mut bits = 0u64;
            for b in 0..nb {
                let mut mask = 0u16;
                for l in 0..PIXEL_LANES {
                    let j = (b0 + b) * PIXEL_LANES + l;
                    mask |= u16::from(acc[b * PIXEL_LANES + l] >= a.cuts[j]) << l;
                }
                bits |= u64::from(mask ^ a.flips[b0 + b]) << (PIXEL_LANES * b);
            }
            out[r * a.out_wpr + word] = bits;
        }
    }
}
