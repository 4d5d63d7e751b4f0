//! AArch64 NEON kernels: the dense XNOR-popcount layer (`CNT` per byte,
//! byte sums widened by pairwise adds), the sparse bit-sliced layer (the
//! shared [`sliced_kernel!`](super::sliced::sliced_kernel) loop on 128-bit
//! vectors, a full adder's majority as one `BSL`), the u8 first layer
//! (`UDOT` where the CPU has the dot-product extension, widening
//! multiplies where it does not), the pixel layer's thresholds and the
//! output scores. What the x86 kernels do beyond that (packing pixels,
//! listing pixel groups and minority positions, the u8 convolutions) runs
//! the portable code, which compiles to plain AArch64 with its `CNT`,
//! `RBIT` and `CLZ`.
//!
//! As in `x86_64`, nothing here checks CPU features: `Kernel::checked` has
//! confirmed NEON (and the dispatch `dotprod` before the `UDOT` loop), and
//! the slice lengths were asserted by the dispatching method in `mod.rs`.
//! Those two facts are what every `// SAFETY:` line below relies on.
//!
//! # The u8 layer's sums
//!
//! `UDOT` multiplies unsigned bytes by unsigned bytes, and NEON's
//! mixed-sign `USDOT` needs the later I8MM extension (not in Cortex-A76 or
//! Neoverse N1). The weights, −1, 0 or +1, are therefore taken as `w + 1`
//! (0, 1 or 2, one `ADD` per 16 bytes): `Σ p·w = Σ p·(w + 1) − Σ p`, with
//! `Σ p` the pixels of the listed groups. That is exact for zero weights
//! too (padding pixels and neurons, and a convolution's window padding),
//! where the sign-bit form `Σ p − 2·Σ_{w=−1} p` would not be.

use std::arch::aarch64::*;
use std::arch::asm;

use crate::rule::DecisionRule;

use super::cpu::Level;
use super::TILE_BLOCKS;
use super::{FireArgs, OutputArgs, PixelGroups, SlicedArgs, LANES, PIXEL_GROUP, PIXEL_LANES};

/// Whether the u8 layer may use `UDOT` (detected, and not hidden by
/// `BNN_FEATURES_OFF=dotprod`).
pub fn has_dotprod() -> bool {
    Level::Dotprod.on()
}

// ------------------------------------------------------------ dense layers

pub fn xor_popcount_neon(a: &[u64], b: &[u64]) -> u32 {
    // SAFETY: the caller checked neon; a.len() == b.len().
    unsafe { xor_popcount_impl(a, b) }
}

/// Two words a step, byte counts added up for at most 31 steps (8 per
/// byte each, 248 < 256) before they are widened into the total.
///
/// # Safety
/// The CPU has the features this function enables, and `a` and `b` are equally long.
#[target_feature(enable = "neon")]
unsafe fn xor_popcount_impl(a: &[u64], b: &[u64]) -> u32 {
    let whole = a.len() / 2 * 2;
    let mut total = vdupq_n_u64(0);
    let mut i = 0;
    while i < whole {
        let stop = (i + 2 * 31).min(whole);
        let mut bytes = vdupq_n_u8(0);
        while i < stop {
            // SAFETY: i + 2 <= whole <= the length of both slices.
            let (va, vb) = unsafe { (vld1q_u64(a.as_ptr().add(i)), vld1q_u64(b.as_ptr().add(i))) };
            bytes = vaddq_u8(bytes, vcntq_u8(vreinterpretq_u8_u64(veorq_u64(va, vb))));
            i += 2;
        }
        total = vpadalq_u32(total, vpaddlq_u16(vpaddlq_u8(bytes)));
    }
    let tail: u32 = a[whole..]
        .iter()
        .zip(&b[whole..])
        .map(|(x, w)| (x ^ w).count_ones())
        .sum();
    vaddvq_u64(total) as u32 + tail
}

/// Popcounts of one row against one interleaved block of 8 neurons, two
/// neurons a vector: per input word one broadcast load, and per vector
/// `EOR`, `CNT` and a byte `ADD`; the byte counts are widened (three
/// pairwise adds) every 31 words, before they can overflow.
///
/// # Safety
/// The CPU has the features this function enables; `x` points to `wpr` words, and `w` to one interleaved block of `wpr·8` words.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn block_neon(x: *const u64, wpr: usize, w: *const u64) -> [uint64x2_t; 4] {
    let mut wide = [vdupq_n_u64(0); 4];
    let mut k = 0;
    while k < wpr {
        let stop = (k + 31).min(wpr);
        let mut bytes = [vdupq_n_u8(0); 4];
        while k < stop {
            // SAFETY: k < wpr: input word k, and word k of the block's 8
            // neurons (8 words at w + k·8).
            unsafe {
                let xv = vld1q_dup_u64(x.add(k));
                for (q, b) in bytes.iter_mut().enumerate() {
                    let wv = vld1q_u64(w.add(k * LANES + 2 * q));
                    *b = vaddq_u8(*b, vcntq_u8(vreinterpretq_u8_u64(veorq_u64(xv, wv))));
                }
            }
            k += 1;
        }
        for (acc, b) in wide.iter_mut().zip(bytes) {
            *acc = vpadalq_u32(*acc, vpaddlq_u16(vpaddlq_u8(b)));
        }
    }
    wide
}

pub fn block_popcounts_neon(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    // SAFETY: the caller checked neon and asserted xs ≥ rows·wpr, weights =
    // blocks·wpr·8 and out ≥ rows·blocks·8.
    unsafe { block_popcounts_impl(xs, rows, wpr, weights, blocks, out) }
}

/// # Safety
/// The CPU has the features this function enables; `xs` holds `rows·wpr` words, `weights` `blocks·wpr·8` and `out` `rows·blocks·8` counts.
#[target_feature(enable = "neon")]
unsafe fn block_popcounts_impl(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    for r in 0..rows {
        for b in 0..blocks {
            let o = &mut out[(r * blocks + b) * LANES..][..LANES];
            // SAFETY: r < rows and b < blocks, inside the lengths the
            // caller asserted; `o` holds the 8 counts the two stores write.
            unsafe {
                let [p0, p1, p2, p3] = block_neon(
                    xs.as_ptr().add(r * wpr),
                    wpr,
                    weights.as_ptr().add(b * wpr * LANES),
                );
                vst1q_u32(o.as_mut_ptr(), vcombine_u32(vmovn_u64(p0), vmovn_u64(p1)));
                vst1q_u32(
                    o.as_mut_ptr().add(4),
                    vcombine_u32(vmovn_u64(p2), vmovn_u64(p3)),
                );
            }
        }
    }
}

pub fn fire_neon(a: &FireArgs<'_>, out: &mut [u64]) {
    // SAFETY: the caller checked neon and asserted the lengths.
    unsafe { fire_impl(a, out) }
}

/// # Safety
/// The CPU has the features this function enables, and the lengths of `a` and `out` are those `Kernel::fire` asserts.
#[target_feature(enable = "neon")]
unsafe fn fire_impl(a: &FireArgs<'_>, out: &mut [u64]) {
    let wpr = a.wpr;
    // Bit `l` for neuron `l` of a block, two lanes a vector.
    let bits: [uint64x2_t; 4] = [0u64, 2, 4, 6].map(|l| {
        let pair = [1u64 << l, 2u64 << l];
        // SAFETY: `pair` holds the two words the load reads.
        unsafe { vld1q_u64(pair.as_ptr()) }
    });
    for tile in (0..a.blocks).step_by(TILE_BLOCKS) {
        let end = (tile + TILE_BLOCKS).min(a.blocks);
        for r in 0..a.rows {
            let mut word = 0u64;
            let row_at = a.limits_at(r);
            for b in tile..end {
                // SAFETY: r < rows and b < blocks (the caller's asserts), so
                // the row, the block's weights and its 8 limits in row r's
                // set (inside `limits`, asserted) are in bounds.
                let mask = unsafe {
                    let pops = block_neon(
                        a.xs.as_ptr().add(r * wpr),
                        wpr,
                        a.weights.as_ptr().add(b * wpr * LANES),
                    );
                    let lim = a.limits.as_ptr().add(row_at + b * LANES);
                    let mut set = vdupq_n_u64(0);
                    for (q, (p, bit)) in pops.into_iter().zip(bits).enumerate() {
                        let fires = vcleq_s64(vreinterpretq_s64_u64(p), vld1q_s64(lim.add(2 * q)));
                        set = vorrq_u64(set, vandq_u64(fires, bit));
                    }
                    vaddvq_u64(set) as u8 ^ a.flips[b]
                };
                word |= u64::from(mask) << (8 * (b - tile));
            }
            out[r * a.out_wpr + tile / TILE_BLOCKS] = word;
        }
    }
}

pub fn scores_classes_neon(a: &OutputArgs<'_>, scores: &mut [f32], classes: &mut [usize]) {
    // SAFETY: the caller checked neon, that 0 < bias.len() <= 16 and
    // bias.len() <= padded, pops ≥ rows·padded and scores = rows·bias.len().
    unsafe { scores_classes_impl(a, scores, classes) }
}

/// Up to 16 classes a row in four vectors. The arithmetic is the scalar
/// reference's, lane by lane (`SCVTF` rounds as `as f32` does, and the
/// scores are finite), so the scores are the same bits; the decision takes
/// the first class equal to the maximum (ties to the lowest class, as the
/// scalar compare-select does) or the first non-negative one. Lanes past
/// the classes hold −∞ and never decide.
///
/// # Safety
/// The CPU has the features this function enables; `0 < bias.len() <= 16`, `bias.len() <= padded`, `pops` holds `classes.len()·padded` counts and `scores` `classes.len()·bias.len()` values.
#[target_feature(enable = "neon")]
unsafe fn scores_classes_impl(a: &OutputArgs<'_>, scores: &mut [f32], classes: &mut [usize]) {
    let c = a.bias.len();
    let mut bias = [f32::NEG_INFINITY; 16];
    bias[..c].copy_from_slice(a.bias);
    let n = a.inputs as i32;
    // Bit `i` of the decision mask for class `4·q + i`.
    let lane_bits = [1u32, 2, 4, 8];
    // SAFETY: `lane_bits` holds the four values the load reads.
    let lane_bits = unsafe { vld1q_u32(lane_bits.as_ptr()) };
    let zero = vdupq_n_f32(0.0);
    for (r, class) in classes.iter_mut().enumerate() {
        let pops = &a.pops[r * a.padded..][..c];
        let mut row = [0u32; 16];
        row[..c].copy_from_slice(pops);
        let mut s = [vdupq_n_f32(0.0); 4];
        for (q, v) in s.iter_mut().enumerate() {
            // SAFETY: `row` and `bias` hold 16 values, 4·q + 4 <= 16.
            unsafe {
                let p = vreinterpretq_s32_u32(vld1q_u32(row.as_ptr().add(4 * q)));
                let d = vsubq_s32(vdupq_n_s32(n), vaddq_s32(p, p));
                *v = vaddq_f32(vcvtq_f32_s32(d), vld1q_f32(bias.as_ptr().add(4 * q)));
            }
        }
        let mut all = [0f32; 16];
        for (q, &v) in s.iter().enumerate() {
            // SAFETY: `all` holds 16 values, 4·q + 4 <= 16.
            unsafe { vst1q_f32(all.as_mut_ptr().add(4 * q), v) };
        }
        scores[r * c..(r + 1) * c].copy_from_slice(&all[..c]);
        let hits = match a.rule {
            DecisionRule::Scores => {
                let top = vmaxq_f32(vmaxq_f32(s[0], s[1]), vmaxq_f32(s[2], s[3]));
                let top = vdupq_n_f32(vmaxvq_f32(top));
                s.map(|v| vceqq_f32(v, top))
            }
            DecisionRule::Seed => s.map(|v| vcgeq_f32(v, zero)),
        };
        let mut mask = 0u32;
        for (q, h) in hits.into_iter().enumerate() {
            mask |= vaddvq_u32(vandq_u32(h, lane_bits)) << (4 * q);
        }
        *class = if mask == 0 {
            0
        } else {
            mask.trailing_zeros() as usize
        };
    }
}

// ----------------------------------------------------------- pixel layers

/// Bytes of one pixel-layer line: 4 pixels' weights for one block.
const PIXEL_LINE: usize = PIXEL_LANES * PIXEL_GROUP;

pub fn pixel_fire_neon(dots: &[i32], cuts: &[i32], flips: &[u16], out: &mut [u64]) {
    // SAFETY: the caller checked neon and asserted dots.len() ==
    // cuts.len() == flips.len()·16 and out.len()·4 >= flips.len().
    unsafe { pixel_fire_impl(dots, cuts, flips, out) }
}

/// Four compares per block of 16 neurons give its 16 bits.
///
/// # Safety
/// The CPU has the features this function enables; `dots` and `cuts` hold `flips.len()·16` values, and `out` `flips.len() / 4` words at least.
#[target_feature(enable = "neon")]
unsafe fn pixel_fire_impl(dots: &[i32], cuts: &[i32], flips: &[u16], out: &mut [u64]) {
    let lane_bits = [1u32, 2, 4, 8];
    // SAFETY: `lane_bits` holds the four values the load reads.
    let lane_bits = unsafe { vld1q_u32(lane_bits.as_ptr()) };
    out.fill(0);
    for (b, &flip) in flips.iter().enumerate() {
        let mut mask = 0u32;
        for q in 0..4 {
            let at = b * PIXEL_LANES + 4 * q;
            // SAFETY: b < flips.len(), so the 4 values at `at` are inside
            // both slices.
            let ge = unsafe {
                vcgeq_s32(
                    vld1q_s32(dots.as_ptr().add(at)),
                    vld1q_s32(cuts.as_ptr().add(at)),
                )
            };
            mask |= vaddvq_u32(vandq_u32(ge, lane_bits)) << (4 * q);
        }
        out[b / 4] |= u64::from(mask as u16 ^ flip) << (16 * (b % 4));
    }
}

/// The sum of the listed groups' pixels, `Σ p` of the module docs.
fn listed_pixel_sum(groups: &PixelGroups) -> u32 {
    groups
        .a()
        .iter()
        .map(|&four| {
            four.to_le_bytes()
                .iter()
                .map(|&p| u32::from(p))
                .sum::<u32>()
        })
        .sum()
}

pub fn pixel_dots_neon(groups: &PixelGroups, weights: &[i8], blocks: usize, dots: &mut [i32]) {
    // SAFETY: the caller checked neon and asserted weights = total
    // groups·blocks·64 bytes, every listed group index below the total, and
    // dots = blocks·16 values; `has_dotprod` checks the extension.
    unsafe {
        if has_dotprod() {
            pixel_dots_udot(groups, weights, blocks, dots)
        } else {
            pixel_dots_widening(groups, weights, blocks, dots)
        }
    }
}

/// `UDOT` of a vector of sums: each 32-bit lane of `acc` adds the four
/// products of its bytes of `a` and `b`. By `asm!`: the intrinsic
/// (`vdotq_u32`) is not stable in the Rust this builds with.
///
/// # Safety
/// The CPU has the dot-product extension.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn udot(acc: uint32x4_t, a: uint8x16_t, b: uint8x16_t) -> uint32x4_t {
    let mut acc = acc;
    // SAFETY: the caller's promise: the CPU has `UDOT`. The instruction
    // reads and writes registers only.
    unsafe {
        asm!(
            "udot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// # Safety
/// The CPU has the features this function enables; `weights` holds `groups·blocks·64` bytes, every listed group index is below `groups`, and `dots` holds `blocks·16` values.
#[target_feature(enable = "neon,dotprod")]
unsafe fn pixel_dots_udot(groups: &PixelGroups, weights: &[i8], blocks: usize, dots: &mut [i32]) {
    let total = listed_pixel_sum(groups);
    let mut j = 0;
    while j < blocks {
        // SAFETY: blocks j..j + N are < blocks (the step is chosen so), so
        // the weight lines and the sums at j·16.. are in bounds.
        unsafe {
            let d = dots.as_mut_ptr();
            j += match blocks - j {
                4.. => pixel_chunk_udot::<4>(groups, weights, blocks, j, total, d),
                _ => pixel_chunk_udot::<1>(groups, weights, blocks, j, total, d),
            };
        }
    }
}

/// `N` blocks (16·N neurons) of one image over its listed groups, in
/// 4·N vectors of sums held in registers: per group one broadcast of its
/// 4 pixels, and per 16 bytes of weights (4 neurons) a load, the `ADD` of
/// one and a `UDOT`.
///
/// # Safety
/// The CPU has the features this function enables; `b + N <= blocks`, every listed index is below the layer's groups, and `dots` holds `blocks·16` values.
#[target_feature(enable = "neon,dotprod")]
#[inline]
unsafe fn pixel_chunk_udot<const N: usize>(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    b: usize,
    total: u32,
    dots: *mut i32,
) -> usize {
    let line = blocks * PIXEL_LINE;
    let one = vdupq_n_s8(1);
    let mut sums = [[vdupq_n_u32(0); 4]; N];
    for (&four, &g) in groups.a().iter().zip(groups.index()) {
        let x = vreinterpretq_u8_u32(vdupq_n_u32(four));
        // SAFETY: g < total groups and b + N <= blocks, so the N lines at
        // g·line + (b + j)·64 lie inside `weights`.
        unsafe {
            let w = weights.as_ptr().add(g as usize * line + b * PIXEL_LINE);
            for (j, block) in sums.iter_mut().enumerate() {
                for (q, s) in block.iter_mut().enumerate() {
                    let wv = vld1q_s8(w.add(j * PIXEL_LINE + 16 * q));
                    *s = udot(*s, x, vreinterpretq_u8_s8(vaddq_s8(wv, one)));
                }
            }
        }
    }
    // SAFETY: the caller guarantees blocks b..b + N of 16 sums at `dots`.
    unsafe { store_dots(sums, total, dots, b) };
    N
}

/// Stores `N` blocks of `Σ p·(w + 1)` as `Σ p·w`, at block `b` of `dots`
/// (in wrapping arithmetic: the difference is exact, and in range).
///
/// # Safety
/// `dots` holds `(b + N)·16` values.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_dots<const N: usize>(
    sums: [[uint32x4_t; 4]; N],
    total: u32,
    dots: *mut i32,
    b: usize,
) {
    let total = vdupq_n_u32(total);
    for (j, block) in sums.into_iter().enumerate() {
        for (q, s) in block.into_iter().enumerate() {
            let d = vreinterpretq_s32_u32(vsubq_u32(s, total));
            // SAFETY: block b + j < b + N, inside `dots` by the caller's
            // promise.
            unsafe { vst1q_s32(dots.add((b + j) * PIXEL_LANES + 4 * q), d) };
        }
    }
}

/// # Safety
/// The CPU has the features this function enables; `weights` holds `groups·blocks·64` bytes, every listed group index is below `groups`, and `dots` holds `blocks·16` values.
#[target_feature(enable = "neon")]
unsafe fn pixel_dots_widening(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    dots: &mut [i32],
) {
    let total = listed_pixel_sum(groups);
    let mut j = 0;
    while j < blocks {
        // SAFETY: blocks j..j + N are < blocks (the step is chosen so).
        unsafe {
            let d = dots.as_mut_ptr();
            j += match blocks - j {
                4.. => pixel_chunk_widening::<4>(groups, weights, blocks, j, total, d),
                _ => pixel_chunk_widening::<1>(groups, weights, blocks, j, total, d),
            };
        }
    }
}

/// [`pixel_chunk_udot`] without `UDOT`: per 16 bytes of weights, two
/// widening multiplies (`UMULL`, `UMULL2`: u8 pixels × `w + 1`, products
/// at most 510 in u16), a pairwise add of neighbouring products
/// (`ADDP`, at most 1020) and a pairwise add-accumulate into the four
/// neurons' 32-bit sums (`UADALP`).
///
/// # Safety
/// The CPU has the features this function enables; `b + N <= blocks`, every listed index is below the layer's groups, and `dots` holds `blocks·16` values.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn pixel_chunk_widening<const N: usize>(
    groups: &PixelGroups,
    weights: &[i8],
    blocks: usize,
    b: usize,
    total: u32,
    dots: *mut i32,
) -> usize {
    let line = blocks * PIXEL_LINE;
    let one = vdupq_n_s8(1);
    let mut sums = [[vdupq_n_u32(0); 4]; N];
    for (&four, &g) in groups.a().iter().zip(groups.index()) {
        let x = vreinterpretq_u8_u32(vdupq_n_u32(four));
        let x_low = vget_low_u8(x);
        // SAFETY: as in `pixel_chunk_udot`: the N lines are inside
        // `weights`.
        unsafe {
            let w = weights.as_ptr().add(g as usize * line + b * PIXEL_LINE);
            for (j, block) in sums.iter_mut().enumerate() {
                for (q, s) in block.iter_mut().enumerate() {
                    let wv = vld1q_s8(w.add(j * PIXEL_LINE + 16 * q));
                    let u = vreinterpretq_u8_s8(vaddq_s8(wv, one));
                    let low = vmull_u8(x_low, vget_low_u8(u));
                    let high = vmull_high_u8(x, u);
                    *s = vpadalq_u16(*s, vpaddq_u16(low, high));
                }
            }
        }
    }
    // SAFETY: the caller guarantees blocks b..b + N of 16 sums at `dots`.
    unsafe { store_dots(sums, total, dots, b) };
    N
}

// ------------------------------------------------------ the sparse layer

pub fn sliced_fire_neon(
    a: &SlicedArgs<'_>,
    idx: &[u16],
    ones: usize,
    zeros: bool,
    out: &mut [u64],
) {
    // SAFETY: the caller checked neon, the lengths and that every position
    // comes from a `Minority` of the layer's width.
    unsafe { neon_sliced::fire(a, idx, ones, zeros, out) }
}

pub fn sliced_fire_lines_neon(
    a: &SlicedArgs<'_>,
    idx: &[u16],
    ones: usize,
    zeros: bool,
    out: &mut [u64],
) {
    // SAFETY: as in `sliced_fire_neon`, and the caller checked that the
    // layer's columns are whole vectors and its inputs at most
    // `LINES_MAX_INPUTS`.
    unsafe { neon_sliced::fire_lines(a, idx, ones, zeros, out) }
}

pub fn sliced_sum_planes_neon(a: &SlicedArgs<'_>, idx: &[u16], out: &mut [u64]) {
    // SAFETY: as in `sliced_fire_neon`.
    unsafe { neon_sliced::sum_planes(a, idx, out) }
}

/// The sparse layer on 128-bit vectors (two words of columns): a full
/// adder is two `EOR` for the sum and `EOR` + `BSL` for the carry (the
/// majority of `a, b, c` is `c` where `a ≠ b`, else `a`), and the borrow of
/// the comparison likewise `EOR` + `BSL`.
pub(crate) mod neon_sliced {
    use super::*;

    type V = uint64x2_t;
    const W: usize = 2;

    #[target_feature(enable = "neon")]
    #[inline]
    fn zero() -> V {
        vdupq_n_u64(0)
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn splat(bit: bool) -> V {
        vdupq_n_u64(0u64.wrapping_sub(u64::from(bit)))
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn load(src: &[u64], at: usize, live: usize) -> V {
        let s = &src[at..at + live];
        if live == W {
            // SAFETY: `s` holds exactly 2 words.
            unsafe { vld1q_u64(s.as_ptr()) }
        } else {
            vcombine_u64(vcreate_u64(s[0]), vcreate_u64(0))
        }
    }

    /// As in the x86 forms: whole vectors unchecked.
    #[target_feature(enable = "neon")]
    #[inline]
    fn load_column(src: &[u64], at: usize, live: usize) -> V {
        if live == W {
            debug_assert!(at + W <= src.len());
            // SAFETY: positions come from a `Minority` (each <= inputs) of
            // the layer's width and `Kernel::check_sliced` asserted
            // src.len() == (inputs + 1)·cw, so at + W <= src.len().
            unsafe { vld1q_u64(src.as_ptr().add(at)) }
        } else {
            load(src, at, live)
        }
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn store(dst: &mut [u64], at: usize, live: usize, v: V) {
        let d = &mut dst[at..at + live];
        if live == W {
            // SAFETY: `d` holds exactly 2 words.
            unsafe { vst1q_u64(d.as_mut_ptr(), v) }
        } else {
            d[0] = vgetq_lane_u64::<0>(v);
        }
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn and(a: V, b: V) -> V {
        vandq_u64(a, b)
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn xor(a: V, b: V) -> V {
        veorq_u64(a, b)
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn xor3(a: V, b: V, c: V) -> V {
        veorq_u64(veorq_u64(a, b), c)
    }

    #[target_feature(enable = "neon")]
    #[inline]
    fn maj(a: V, b: V, c: V) -> V {
        vbslq_u64(veorq_u64(a, b), c, a)
    }

    /// `maj(¬v, c, b)`: where `v ≠ c`, `¬v = c` decides; elsewhere `b`.
    #[target_feature(enable = "neon")]
    #[inline]
    fn borrow_of(v: V, c: V, b: V) -> V {
        vbslq_u64(veorq_u64(v, c), c, b)
    }

    crate::kernel::sliced::sliced_kernel!(#[target_feature(enable = "neon")]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under qemu (`scripts/test-arm64` names the CPU model in `QEMU_CPU`,
    /// which the emulated process sees too), the detection finds what the
    /// model has: no `UDOT` on a Cortex-A53, so that run really takes the
    /// widening loop; `UDOT` on the Armv8.2 cores.
    #[test]
    fn dot_product_detection_follows_the_emulated_cpu() {
        let want = match std::env::var("QEMU_CPU").as_deref() {
            Ok("cortex-a53" | "cortex-a57" | "cortex-a72" | "cortex-a35") => false,
            Ok("cortex-a76" | "neoverse-n1" | "max") => true,
            _ => return,
        };
        assert!(Level::Neon.detected());
        assert_eq!(Level::Dotprod.detected(), want);
    }

    /// The `asm!` `UDOT` against its definition, on bytes whose products
    /// reach the top of the range, so a wrong operand order or width shows.
    #[test]
    fn udot_sums_four_products_per_lane() {
        if !Level::Dotprod.detected() {
            return;
        }
        let a: Vec<u8> = (0..16).map(|i| 255 - 7 * i as u8).collect();
        let b: Vec<u8> = (0..16).map(|i| 3 * i as u8 + 1).collect();
        let start = [1u32, 2, 3, u32::MAX - 1_000_000];
        let mut got = [0u32; 4];
        // SAFETY: dotprod detected above; the buffers hold 16 bytes and 4
        // lanes.
        unsafe {
            let acc = udot(
                vld1q_u32(start.as_ptr()),
                vld1q_u8(a.as_ptr()),
                vld1q_u8(b.as_ptr()),
            );
            vst1q_u32(got.as_mut_ptr(), acc);
        }
        for (l, &g) in got.iter().enumerate() {
            let want = (0..4).fold(start[l], |s, i| {
                s.wrapping_add(u32::from(a[4 * l + i]) * u32::from(b[4 * l + i]))
            });
            assert_eq!(g, want, "lane {l}");
        }
    }
}
