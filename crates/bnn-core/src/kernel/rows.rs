//! The reference loop of a u8 convolution's pixel rows: every im2col row
//! (one output position) against every filter, thresholded to bits. The
//! SIMD kernels keep the same structure, four blocks of 16 filters (one
//! output word) at a time.

use super::{PixelRows, PIXEL_GROUP, PIXEL_LANES};

/// Blocks of 16 filters per output word.
pub const BLOCKS_PER_WORD: usize = 64 / PIXEL_LANES;

pub fn pixel_rows_fire(a: &PixelRows<'_>, out: &mut [u64]) {
    let stride = a.stride;
    let line = a.blocks * PIXEL_LANES * PIXEL_GROUP;
    for r in 0..a.rows {
        let row = &a.pixels[r * stride..][..a.groups * PIXEL_GROUP];
        for word in 0..a.out_wpr {
            let b0 = word * BLOCKS_PER_WORD;
            let nb = BLOCKS_PER_WORD.min(a.blocks - b0);
            let mut acc = [0i32; 64];
            for (g, four) in row.chunks_exact(PIXEL_GROUP).enumerate() {
                if four == [0; PIXEL_GROUP] {
                    continue;
                }
                let w = &a.weights[g * line + b0 * PIXEL_LANES * PIXEL_GROUP..];
                for (s, w) in acc[..nb * PIXEL_LANES]
                    .iter_mut()
                    .zip(w.chunks_exact(PIXEL_GROUP))
                {
                    *s += four
                        .iter()
                        .zip(w)
                        .map(|(&p, &w)| i32::from(p) * i32::from(w))
                        .sum::<i32>();
                }
            }
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
