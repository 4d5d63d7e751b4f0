//! x86-64 kernels of a u8 convolution (see `rows.rs` for the reference
//! loop). Per listed output position, every group of 4 pixels of its window
//! (zero groups too: no branch on the image), read from the padded image,
//! are broadcast against 4 blocks of 16 filters whose sums stay in
//! registers, then compared with the cuts: no im2col copy, no per-row
//! call, list or store of sums.
//!
//! As in `x86_64.rs`, the dispatching method has checked the CPU features
//! and asserted every slice length the `// SAFETY:` lines rely on.

use std::arch::x86_64::*;

use super::rows::BLOCKS_PER_WORD;
use super::{PixelRows, PIXEL_GROUP, PIXEL_LANES};

/// Bytes of one weight line: 4 pixels' weights for one block of 16.
const LINE: usize = PIXEL_LANES * PIXEL_GROUP;

/// Every spot's output words, 4 blocks (one word) at a time through `$word`
/// (`unsafe fn(&PixelRows, [window start; P], first block) -> [u64; P]`,
/// monomorphised for the number of blocks left), `$p` spots at a time and
/// then one by one; one body for both instruction sets, each compiled with
/// its own target features. The spots share each weight load, and their
/// sums are independent chains of multiply-adds that overlap: one position
/// alone waits on its chain's latency. A group's spots need not be
/// neighbours: the list skips blank positions (see `crate::blank`).
macro_rules! spots_loop {
    ($a:expr, $out:expr, $word:ident, $p:literal) => {
        let mut groups = $a.spots.chunks_exact($p);
        for group in &mut groups {
            let bases: [usize; $p] = std::array::from_fn(|i| group[i].base as usize);
            for word in 0..$a.out_wpr {
                let b0 = word * BLOCKS_PER_WORD;
                // SAFETY: b0 + N <= blocks for the N chosen; the windows at
                // `bases` lie in the image (asserted by the caller).
                let bits = unsafe {
                    match $a.blocks - b0 {
                        4.. => $word::<4, $p>($a, bases, b0),
                        3 => $word::<3, $p>($a, bases, b0),
                        2 => $word::<2, $p>($a, bases, b0),
                        _ => $word::<1, $p>($a, bases, b0),
                    }
                };
                for (spot, b) in group.iter().zip(bits) {
                    $out[spot.row as usize * $a.out_wpr + word] = b;
                }
            }
        }
        for spot in groups.remainder() {
            let base = [spot.base as usize];
            for word in 0..$a.out_wpr {
                let b0 = word * BLOCKS_PER_WORD;
                // SAFETY: as above, for one window.
                let [bits] = unsafe {
                    match $a.blocks - b0 {
                        4.. => $word::<4, 1>($a, base, b0),
                        3 => $word::<3, 1>($a, base, b0),
                        2 => $word::<2, 1>($a, base, b0),
                        _ => $word::<1, 1>($a, base, b0),
                    }
                };
                $out[spot.row as usize * $a.out_wpr + word] = bits;
            }
        }
    };
}

/// Where group `g`'s weights for blocks `b0..` start. Each group's
/// offset is computed from the base, not stepped from the one before: a
/// step past the last group would leave the allocation, which is undefined
/// behaviour even if the pointer is never read.
#[inline(always)]
fn group_line(a: &PixelRows<'_>, g: usize, b0: usize) -> *const i8 {
    let at = (g * a.blocks + b0) * LINE;
    // Indexing keeps the offset inside the weights (`b0 < blocks` and
    // `g < groups`, asserted by the dispatch: never out of bounds).
    a.weights[at..].as_ptr()
}

pub fn pixel_rows_fire_vnni(a: &PixelRows<'_>, out: &mut [u64]) {
    // SAFETY: the caller checked avx512f + avx512vnni and asserted the
    // lengths of pixels, weights, cuts, flips and out.
    unsafe { rows_vnni(a, out) }
}

/// # Safety
/// The CPU has the features this function enables, and the lengths of `a` and `out` are those `Kernel::pixel_rows_fire` asserts.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn rows_vnni(a: &PixelRows<'_>, out: &mut [u64]) {
    spots_loop!(a, out, word_vnni, 4);
}

/// The output bits of blocks `b0..b0 + N` for the `P` windows at `bases`.
///
/// # Safety
/// The CPU has the features this function enables; `b0 < blocks`, `b0 + N <= blocks`, and each window at `bases` lies in the image, as `Kernel::pixel_rows_fire` asserts.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn word_vnni<const N: usize, const P: usize>(
    a: &PixelRows<'_>,
    bases: [usize; P],
    b0: usize,
) -> [u64; P] {
    let mut sums = [[_mm512_setzero_si512(); N]; P];
    for ky in 0..a.runs {
        for gx in 0..a.run_groups {
            let at = ky * a.line + gx * PIXEL_GROUP;
            let w = group_line(a, ky * a.run_groups + gx, b0);
            // SAFETY: group (ky, gx)'s line of blocks b0..b0 + N lies in
            // the groups·blocks·64 weight bytes.
            let ws: [__m512i; N] =
                std::array::from_fn(|j| unsafe { _mm512_loadu_si512(w.add(j * LINE).cast()) });
            for (base, sums) in bases.iter().zip(sums.iter_mut()) {
                // SAFETY: each window's runs lie in the image (asserted by
                // the caller).
                let four = unsafe {
                    a.pixels
                        .as_ptr()
                        .add(base + at)
                        .cast::<i32>()
                        .read_unaligned()
                };
                let x = _mm512_set1_epi32(four);
                for (s, w) in sums.iter_mut().zip(ws) {
                    *s = _mm512_dpbusd_epi32(*s, x, w);
                }
            }
        }
    }
    let mut bits = [0u64; P];
    for (sums, bits) in sums.into_iter().zip(bits.iter_mut()) {
        for (j, s) in sums.into_iter().enumerate() {
            let b = b0 + j;
            // SAFETY: b < blocks: the 16 cuts at b·16 lie inside cuts.
            let cut = unsafe { _mm512_loadu_si512(a.cuts.as_ptr().add(b * PIXEL_LANES).cast()) };
            let mask = _mm512_cmpge_epi32_mask(s, cut) ^ a.flips[b];
            *bits |= u64::from(mask) << (PIXEL_LANES * j);
        }
    }
    bits
}

pub fn pixel_rows_fire_avx2(a: &PixelRows<'_>, out: &mut [u64]) {
    // SAFETY: the caller checked avx2 and asserted the lengths.
    unsafe { rows_avx2(a, out) }
}

/// # Safety
/// The CPU has the features this function enables, and the lengths of `a` and `out` are those `Kernel::pixel_rows_fire` asserts.
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(a: &PixelRows<'_>, out: &mut [u64]) {
    spots_loop!(a, out, word_avx2, 2);
}

/// As [`word_vnni`], with `VPMADDUBSW` (u8 × i8 pairs to i16, at most
/// 2·255: no saturation) and `VPMADDWD` against ones, 8 filters a half.
///
/// # Safety
/// The CPU has the features this function enables; `b0 < blocks`, `b0 + N <= blocks`, and each window at `bases` lies in the image, as `Kernel::pixel_rows_fire` asserts.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn word_avx2<const N: usize, const P: usize>(
    a: &PixelRows<'_>,
    bases: [usize; P],
    b0: usize,
) -> [u64; P] {
    let ones = _mm256_set1_epi16(1);
    let mut sums = [[[_mm256_setzero_si256(); 2]; N]; P];
    for ky in 0..a.runs {
        for gx in 0..a.run_groups {
            let at = ky * a.line + gx * PIXEL_GROUP;
            let w = group_line(a, ky * a.run_groups + gx, b0);
            for (base, sums) in bases.iter().zip(sums.iter_mut()) {
                // SAFETY: each window's runs lie in the image (asserted by
                // the caller).
                let four = unsafe {
                    a.pixels
                        .as_ptr()
                        .add(base + at)
                        .cast::<i32>()
                        .read_unaligned()
                };
                let x = _mm256_set1_epi32(four);
                for (j, s) in sums.iter_mut().enumerate() {
                    for (h, half) in s.iter_mut().enumerate() {
                        // SAFETY: group (ky, gx)'s line of block b0 + j
                        // lies in the weights; h·32 + 32 <= its 64 bytes.
                        let w = unsafe { _mm256_loadu_si256(w.add(j * LINE + h * 32).cast()) };
                        let pairs = _mm256_maddubs_epi16(x, w);
                        *half = _mm256_add_epi32(*half, _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
        }
    }
    let mut bits = [0u64; P];
    for (sums, bits) in sums.into_iter().zip(bits.iter_mut()) {
        for (j, s) in sums.into_iter().enumerate() {
            let b = b0 + j;
            let mut mask = 0u16;
            for (h, half) in s.into_iter().enumerate() {
                // SAFETY: b < blocks: the 8 cuts at b·16 + h·8 lie inside cuts.
                let cut = unsafe {
                    _mm256_loadu_si256(a.cuts.as_ptr().add(b * PIXEL_LANES + h * 8).cast())
                };
                // dot >= cut is not (cut > dot).
                let below = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(cut, half)));
                mask |= u16::from(!(below as u8)) << (8 * h);
            }
            *bits |= u64::from(mask ^ a.flips[b]) << (PIXEL_LANES * j);
        }
    }
    bits
}
