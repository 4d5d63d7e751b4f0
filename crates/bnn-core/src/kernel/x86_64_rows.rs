//! x86-64 kernels of a u8 convolution (see `rows.rs` for the reference
//! loop). Per output position, the non-zero groups of 4 pixels of its
//! window, read from the padded image, are broadcast against 4 blocks of 16
//! filters whose sums stay in registers, then compared with the cuts: no
//! im2col copy, no per-row call, list or store of sums.
//!
//! As in `x86_64.rs`, the dispatching method has checked the CPU features
//! and asserted every slice length the `// SAFETY:` lines rely on.

use std::arch::x86_64::*;

use super::rows::BLOCKS_PER_WORD;
use super::{PixelRows, PIXEL_GROUP, PIXEL_LANES};

/// Bytes of one weight line: 4 pixels' weights for one block of 16.
const LINE: usize = PIXEL_LANES * PIXEL_GROUP;

/// Every row's output words, 4 blocks (one word) at a time through `$word`
/// (`unsafe fn(&PixelRows, window start, first block) -> u64`, monomorphised for the
/// number of blocks left); one body for both instruction sets, each
/// compiled with its own target features.
macro_rules! rows_loop {
    ($a:expr, $out:expr, $word:ident) => {
        for oy in 0..$a.rows / $a.wo {
            for ox in 0..$a.wo {
                let (r, base) = (oy * $a.wo + ox, $a.window(oy, ox));
                for word in 0..$a.out_wpr {
                    let b0 = word * BLOCKS_PER_WORD;
                    // SAFETY: b0 + N <= blocks for the N chosen; the window
                    // at `base` lies in the image (asserted by the caller).
                    $out[r * $a.out_wpr + word] = unsafe {
                        match $a.blocks - b0 {
                            4.. => $word::<4>($a, base, b0),
                            3 => $word::<3>($a, base, b0),
                            2 => $word::<2>($a, base, b0),
                            _ => $word::<1>($a, base, b0),
                        }
                    };
                }
            }
        }
    };
}

pub fn pixel_rows_fire_vnni(a: &PixelRows<'_>, out: &mut [u64]) {
    // SAFETY: the caller checked avx512f + avx512vnni and asserted the
    // lengths of pixels, weights, cuts, flips and out.
    unsafe { rows_vnni(a, out) }
}

#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn rows_vnni(a: &PixelRows<'_>, out: &mut [u64]) {
    rows_loop!(a, out, word_vnni);
}

/// The output bits of blocks `b0..b0 + N` for the window at `base`.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn word_vnni<const N: usize>(a: &PixelRows<'_>, base: usize, b0: usize) -> u64 {
    let mut sums = [_mm512_setzero_si512(); N];
    let line = a.blocks * LINE;
    a.for_nonzero_groups(base, |g, four| {
        let x = _mm512_set1_epi32(four as i32);
        for (j, s) in sums.iter_mut().enumerate() {
            // SAFETY: g < groups and b0 + j < blocks: the line lies inside
            // the groups·blocks·64 weight bytes.
            let w = unsafe {
                _mm512_loadu_si512(a.weights.as_ptr().add(g * line + (b0 + j) * LINE).cast())
            };
            *s = _mm512_dpbusd_epi32(*s, x, w);
        }
    });
    let mut bits = 0u64;
    for (j, s) in sums.into_iter().enumerate() {
        let b = b0 + j;
        // SAFETY: b < blocks: the 16 cuts at b·16 lie inside cuts.
        let cut = unsafe { _mm512_loadu_si512(a.cuts.as_ptr().add(b * PIXEL_LANES).cast()) };
        let mask = _mm512_cmpge_epi32_mask(s, cut) ^ a.flips[b];
        bits |= u64::from(mask) << (PIXEL_LANES * j);
    }
    bits
}

pub fn pixel_rows_fire_avx2(a: &PixelRows<'_>, out: &mut [u64]) {
    // SAFETY: the caller checked avx2 and asserted the lengths.
    unsafe { rows_avx2(a, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(a: &PixelRows<'_>, out: &mut [u64]) {
    rows_loop!(a, out, word_avx2);
}

/// As [`word_vnni`], with `VPMADDUBSW` (u8 × i8 pairs to i16, at most
/// 2·255: no saturation) and `VPMADDWD` against ones, 8 filters a half.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn word_avx2<const N: usize>(a: &PixelRows<'_>, base: usize, b0: usize) -> u64 {
    let ones = _mm256_set1_epi16(1);
    let mut sums = [[_mm256_setzero_si256(); 2]; N];
    let line = a.blocks * LINE;
    a.for_nonzero_groups(base, |g, four| {
        let x = _mm256_set1_epi32(four as i32);
        for (j, s) in sums.iter_mut().enumerate() {
            for (h, half) in s.iter_mut().enumerate() {
                // SAFETY: as in `word_vnni`; h·32 + 32 <= the 64-byte line.
                let w = unsafe {
                    _mm256_loadu_si256(
                        a.weights
                            .as_ptr()
                            .add(g * line + (b0 + j) * LINE + h * 32)
                            .cast(),
                    )
                };
                let pairs = _mm256_maddubs_epi16(x, w);
                *half = _mm256_add_epi32(*half, _mm256_madd_epi16(pairs, ones));
            }
        }
    });
    let mut bits = 0u64;
    for (j, s) in sums.into_iter().enumerate() {
        let b = b0 + j;
        let mut mask = 0u16;
        for (h, half) in s.into_iter().enumerate() {
            // SAFETY: b < blocks: the 8 cuts at b·16 + h·8 lie inside cuts.
            let cut =
                unsafe { _mm256_loadu_si256(a.cuts.as_ptr().add(b * PIXEL_LANES + h * 8).cast()) };
            // dot >= cut is not (cut > dot).
            let below = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(cut, half)));
            mask |= u16::from(!(below as u8)) << (8 * h);
        }
        bits |= u64::from(mask ^ a.flips[b]) << (PIXEL_LANES * j);
    }
    bits
}
