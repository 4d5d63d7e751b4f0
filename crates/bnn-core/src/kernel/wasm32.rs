//! The WebAssembly SIMD kernel (`simd128`): 128-bit vectors, byte
//! popcounts by `i8x16.popcnt`, and `i32x4.dot_i16x8_s` for u8 pixels.
//!
//! WebAssembly has no run-time feature detection: a module either uses
//! SIMD instructions (and an engine without them refuses to load it) or it
//! does not. So this kernel exists only in builds compiled with
//! `-C target-feature=+simd128`, where [`Kernel::Simd128`](super::Kernel)
//! is always available; a build without it has only the scalar kernel. The
//! results are the scalar kernel's, bit for bit: every sum is an exact
//! integer sum in another order.
//!
//! What it covers: the dense XNOR-popcount loops (hidden and output
//! layers), the sparse bit-sliced layer ([`sliced_kernel!`] over `v128`,
//! two words a vector), the u8 first layer's dots, dense or
//! convolutional, and packing pixels into bits. Listing minority positions
//! stays portable (`i64.ctz` is a single instruction here).
//!
//! Loads index their slices first, so a wrong index is a panic, never a
//! stray read; the unaligned `v128.load` itself is then in bounds.

use core::arch::wasm32::*;

use super::{
    FireArgs, PixelGroups, PixelRows, SlicedArgs, LANES, PIXEL_GROUP, PIXEL_LANES, TILE_BLOCKS,
};

/// Two words at `src[at..at + 2]` as one vector.
#[inline(always)]
fn load2(src: &[u64]) -> v128 {
    let s = &src[..2];
    // SAFETY: `s` holds 16 readable bytes; `v128.load` has no alignment
    // requirement.
    unsafe { v128_load(s.as_ptr().cast::<v128>()) }
}

/// 16 weight bytes at `src[..16]` as one vector.
#[inline(always)]
fn load16(src: &[i8]) -> v128 {
    let s = &src[..16];
    // SAFETY: `s` holds 16 readable bytes; no alignment is required.
    unsafe { v128_load(s.as_ptr().cast::<v128>()) }
}

/// Pixels to bits (`p >= threshold` is 1), 16 at a time by `i8x16.ge_u`
/// and `i8x16.bitmask`; a last partial word as the portable packer does.
pub fn pack_pixels(pixels: &[u8], threshold: u8, out: &mut [u64]) {
    let t = u8x16_splat(threshold);
    let mut chunks = pixels.chunks_exact(64);
    for (word, chunk) in out.iter_mut().zip(&mut chunks) {
        let mut w = 0u64;
        for (q, sixteen) in chunk.chunks_exact(16).enumerate() {
            // SAFETY: `sixteen` holds 16 readable bytes; no alignment is
            // required.
            let v = unsafe { v128_load(sixteen.as_ptr().cast::<v128>()) };
            w |= u64::from(u8x16_bitmask(u8x16_ge(v, t))) << (16 * q);
        }
        *word = w;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let last = out.len() - 1;
        crate::bits::pack_pixels(rest, threshold, &mut out[last..]);
    }
}

pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    let mut total = 0u32;
    let (mut pa, mut pb) = (a.chunks_exact(2), b.chunks_exact(2));
    // Byte counts reach at most 8 a step: 31 steps fit a byte.
    loop {
        let mut acc = u8x16_splat(0);
        let mut steps = 0;
        for (x, w) in (&mut pa).zip(&mut pb).take(31) {
            acc = u8x16_add(acc, i8x16_popcnt(v128_xor(load2(x), load2(w))));
            steps += 1;
        }
        total += horizontal_sum_u8(acc);
        if steps < 31 {
            break;
        }
    }
    total
        + pa.remainder()
            .iter()
            .zip(pb.remainder())
            .map(|(x, w)| (x ^ w).count_ones())
            .sum::<u32>()
}

#[inline(always)]
fn horizontal_sum_u8(v: v128) -> u32 {
    let s = u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(v));
    u32x4_extract_lane::<0>(s)
        + u32x4_extract_lane::<1>(s)
        + u32x4_extract_lane::<2>(s)
        + u32x4_extract_lane::<3>(s)
}

/// Popcounts of one input row against one interleaved block of 8 neurons
/// (word `k` of neuron `l` at `w[k·8 + l]`): four vectors of two neurons
/// each, byte counts widened every 31 words.
#[inline(always)]
fn block(x: &[u64], w: &[u64]) -> [u32; LANES] {
    let mut wide = [u32x4_splat(0); 4];
    for (xs, ws) in x.chunks(31).zip(w.chunks(31 * LANES)) {
        let mut acc = [u8x16_splat(0); 4];
        for (&xk, wk) in xs.iter().zip(ws.chunks_exact(LANES)) {
            let xv = u64x2_splat(xk);
            for (a, pair) in acc.iter_mut().zip(wk.chunks_exact(2)) {
                *a = u8x16_add(*a, i8x16_popcnt(v128_xor(xv, load2(pair))));
            }
        }
        for (wv, a) in wide.iter_mut().zip(acc) {
            *wv = i32x4_add(
                *wv,
                u32x4_extadd_pairwise_u16x8(u16x8_extadd_pairwise_u8x16(a)),
            );
        }
    }
    // Each neuron's count is the sum of its two 32-bit lanes.
    let mut out = [0u32; LANES];
    for (pair, wv) in out.chunks_exact_mut(2).zip(wide) {
        pair[0] = u32x4_extract_lane::<0>(wv) + u32x4_extract_lane::<1>(wv);
        pair[1] = u32x4_extract_lane::<2>(wv) + u32x4_extract_lane::<3>(wv);
    }
    out
}

pub fn block_popcounts(
    xs: &[u64],
    rows: usize,
    wpr: usize,
    weights: &[u64],
    blocks: usize,
    out: &mut [u32],
) {
    for r in 0..rows {
        let x = &xs[r * wpr..(r + 1) * wpr];
        for b in 0..blocks {
            let w = &weights[b * wpr * LANES..(b + 1) * wpr * LANES];
            let o = (r * blocks + b) * LANES;
            out[o..o + LANES].copy_from_slice(&block(x, w));
        }
    }
}

pub fn fire(a: &FireArgs<'_>, out: &mut [u64]) {
    for tile in (0..a.blocks).step_by(TILE_BLOCKS) {
        let end = (tile + TILE_BLOCKS).min(a.blocks);
        for r in 0..a.rows {
            let x = &a.xs[r * a.wpr..(r + 1) * a.wpr];
            let limits = &a.limits[a.limits_at(r)..];
            let mut word = 0u64;
            for b in tile..end {
                let w = &a.weights[b * a.wpr * LANES..(b + 1) * a.wpr * LANES];
                let pops = block(x, w);
                let mut mask = 0u8;
                for (l, &p) in pops.iter().enumerate() {
                    mask |= u8::from(i64::from(p) <= limits[b * LANES + l]) << l;
                }
                word |= u64::from(mask ^ a.flips[b]) << (8 * (b - tile));
            }
            out[r * a.out_wpr + tile / TILE_BLOCKS] = word;
        }
    }
}

/// The 4 pixels of a group, each widened to 16 bits, twice:
/// `[p0, p1, p2, p3, p0, p1, p2, p3]`, the operand that meets two
/// neurons' 4 weights in one `i32x4.dot_i16x8_s`.
#[inline(always)]
fn pixels16(four: u32) -> v128 {
    u16x8_extend_low_u8x16(u32x4_splat(four))
}

/// Adds one group's products into a block's 8 unreduced accumulators:
/// `line` is the block's 64 weight bytes (16 neurons × 4 pixels); lane
/// pair `2j, 2j+1` of `acc[i]` sums neuron `2i + j`'s products.
#[inline(always)]
fn add_line(acc: &mut [v128; 8], p: v128, line: &[i8]) {
    for (q, pair) in acc.chunks_exact_mut(2).enumerate() {
        let w = load16(&line[16 * q..]);
        pair[0] = i32x4_add(pair[0], i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), p));
        pair[1] = i32x4_add(pair[1], i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), p));
    }
}

/// The 16 neurons' dots from [`add_line`]'s accumulators.
#[inline(always)]
fn reduce(acc: &[v128; 8]) -> [i32; PIXEL_LANES] {
    let mut out = [0i32; PIXEL_LANES];
    for (o, pair) in out.chunks_exact_mut(4).zip(acc.chunks_exact(2)) {
        // [n0a, n0b, n1a, n1b] and [n2a, n2b, n3a, n3b] → neurons 0..4.
        let evens = i32x4_shuffle::<0, 2, 4, 6>(pair[0], pair[1]);
        let odds = i32x4_shuffle::<1, 3, 5, 7>(pair[0], pair[1]);
        let s = i32x4_add(evens, odds);
        o[0] = i32x4_extract_lane::<0>(s);
        o[1] = i32x4_extract_lane::<1>(s);
        o[2] = i32x4_extract_lane::<2>(s);
        o[3] = i32x4_extract_lane::<3>(s);
    }
    out
}

/// `Σ p·w` over the listed groups, a block of 16 neurons at a time.
pub fn pixel_dots(groups: &PixelGroups, weights: &[i8], blocks: usize, dots: &mut [i32]) {
    let line = blocks * PIXEL_LANES * PIXEL_GROUP;
    let block_bytes = PIXEL_LANES * PIXEL_GROUP;
    for (b, out) in dots.chunks_exact_mut(PIXEL_LANES).enumerate() {
        let mut acc = [i32x4_splat(0); 8];
        for (&four, &g) in groups.a().iter().zip(groups.index()) {
            let w = &weights[g as usize * line + b * block_bytes..][..block_bytes];
            add_line(&mut acc, pixels16(four), w);
        }
        out.copy_from_slice(&reduce(&acc));
    }
}

/// A u8 convolution's output bits, as `rows::pixel_rows_fire` computes
/// them: every listed position's window against each block of 16 filters.
pub fn pixel_rows_fire(a: &PixelRows<'_>, out: &mut [u64]) {
    let line = a.blocks * PIXEL_LANES * PIXEL_GROUP;
    let block_bytes = PIXEL_LANES * PIXEL_GROUP;
    for spot in a.spots {
        let (r, base) = (spot.row as usize, spot.base as usize);
        for word in 0..a.out_wpr {
            let b0 = word * super::rows::BLOCKS_PER_WORD;
            let nb = super::rows::BLOCKS_PER_WORD.min(a.blocks - b0);
            let mut bits = 0u64;
            for b in b0..b0 + nb {
                let mut acc = [i32x4_splat(0); 8];
                a.for_nonzero_groups(base, |g, four| {
                    let w = &a.weights[g * line + b * block_bytes..][..block_bytes];
                    add_line(&mut acc, pixels16(four), w);
                });
                let dots = reduce(&acc);
                let mut mask = 0u16;
                for (l, &d) in dots.iter().enumerate() {
                    mask |= u16::from(d >= a.cuts[b * PIXEL_LANES + l]) << l;
                }
                bits |= u64::from(mask ^ a.flips[b]) << (PIXEL_LANES * (b - b0));
            }
            out[r * a.out_wpr + word] = bits;
        }
    }
}

/// The sparse bit-sliced layer on `v128`, two words a vector.
pub(crate) mod sliced128 {
    use core::arch::wasm32::*;

    use super::super::SlicedArgs;

    type V = v128;
    const W: usize = 2;

    #[inline(always)]
    fn zero() -> V {
        u64x2_splat(0)
    }

    #[inline(always)]
    fn splat(bit: bool) -> V {
        u64x2_splat(0u64.wrapping_sub(u64::from(bit)))
    }

    /// Words `at .. at + live` (`live` 1 or 2; a missing word reads 0).
    #[inline(always)]
    fn load(src: &[u64], at: usize, live: usize) -> V {
        if live == W {
            super::load2(&src[at..])
        } else {
            u64x2(src[at], 0)
        }
    }

    #[inline(always)]
    fn store(dst: &mut [u64], at: usize, live: usize, v: V) {
        dst[at] = u64x2_extract_lane::<0>(v);
        if live == W {
            dst[at + 1] = u64x2_extract_lane::<1>(v);
        }
    }

    #[inline(always)]
    fn load_column(src: &[u64], at: usize, live: usize) -> V {
        load(src, at, live)
    }

    #[inline(always)]
    fn and(a: V, b: V) -> V {
        v128_and(a, b)
    }

    #[inline(always)]
    fn xor(a: V, b: V) -> V {
        v128_xor(a, b)
    }

    #[inline(always)]
    fn xor3(a: V, b: V, c: V) -> V {
        v128_xor(v128_xor(a, b), c)
    }

    /// `(a & b) | (c & (a | b))`, by `v128.bitselect`: where `a` and `b`
    /// differ the majority is `c`, where they agree it is `a`.
    #[inline(always)]
    fn maj(a: V, b: V, c: V) -> V {
        v128_bitselect(c, a, v128_xor(a, b))
    }

    /// The borrow out of `v − c − b_in`: `maj(¬v, c, b_in)`.
    #[inline(always)]
    fn borrow_of(v: V, c: V, b: V) -> V {
        maj(v128_not(v), c, b)
    }

    crate::kernel::sliced::sliced_kernel!();
}

/// The sparse bit-sliced layer on pairs of `v128`, four words a step: half
/// the passes over the minority positions of [`sliced128`] (each pass
/// reloads the positions and the columns' cache lines), for layers whose
/// columns are whole pairs (512 neurons: 8 words, two passes): the
/// reloads it saves made the simd128 module faster on `mnist-512.bnn` in
/// Node (docs/PERFORMANCE.md, "Why the kernels are as they are").
pub(crate) mod sliced256 {
    use core::arch::wasm32::*;

    use super::super::SlicedArgs;

    #[derive(Clone, Copy)]
    pub struct V(v128, v128);
    const W: usize = 4;

    #[inline(always)]
    fn zero() -> V {
        V(u64x2_splat(0), u64x2_splat(0))
    }

    #[inline(always)]
    fn splat(bit: bool) -> V {
        let v = u64x2_splat(0u64.wrapping_sub(u64::from(bit)));
        V(v, v)
    }

    /// Words `at .. at + 4`; the loop runs only on whole pairs.
    #[inline(always)]
    fn load(src: &[u64], at: usize, _live: usize) -> V {
        let s = &src[at..at + 4];
        V(super::load2(s), super::load2(&s[2..]))
    }

    #[inline(always)]
    fn store(dst: &mut [u64], at: usize, _live: usize, v: V) {
        let d = &mut dst[at..at + 4];
        d[0] = u64x2_extract_lane::<0>(v.0);
        d[1] = u64x2_extract_lane::<1>(v.0);
        d[2] = u64x2_extract_lane::<0>(v.1);
        d[3] = u64x2_extract_lane::<1>(v.1);
    }

    #[inline(always)]
    fn load_column(src: &[u64], at: usize, live: usize) -> V {
        load(src, at, live)
    }

    #[inline(always)]
    fn and(a: V, b: V) -> V {
        V(v128_and(a.0, b.0), v128_and(a.1, b.1))
    }

    #[inline(always)]
    fn xor(a: V, b: V) -> V {
        V(v128_xor(a.0, b.0), v128_xor(a.1, b.1))
    }

    #[inline(always)]
    fn xor3(a: V, b: V, c: V) -> V {
        xor(xor(a, b), c)
    }

    /// As `sliced128::maj`, per half.
    #[inline(always)]
    fn maj(a: V, b: V, c: V) -> V {
        V(
            v128_bitselect(c.0, a.0, v128_xor(a.0, b.0)),
            v128_bitselect(c.1, a.1, v128_xor(a.1, b.1)),
        )
    }

    #[inline(always)]
    fn borrow_of(v: V, c: V, b: V) -> V {
        maj(V(v128_not(v.0), v128_not(v.1)), c, b)
    }

    crate::kernel::sliced::sliced_kernel!();
}

/// The lean loop, for layers of whole vectors (see `Kernel::sliced_fire`):
/// on pairs of vectors where the columns are whole pairs.
pub fn sliced_fire_lines(
    a: &SlicedArgs<'_>,
    idx: &[u16],
    ones: usize,
    zeros: bool,
    out: &mut [u64],
) {
    if a.cw.is_multiple_of(4) {
        sliced256::fire_lines(a, idx, ones, zeros, out)
    } else {
        sliced128::fire_lines(a, idx, ones, zeros, out)
    }
}

pub fn sliced_fire(a: &SlicedArgs<'_>, idx: &[u16], ones: usize, zeros: bool, out: &mut [u64]) {
    if a.cw.is_multiple_of(4) {
        sliced256::fire(a, idx, ones, zeros, out)
    } else {
        sliced128::fire(a, idx, ones, zeros, out)
    }
}

pub fn sliced_sum_planes(a: &SlicedArgs<'_>, idx: &[u16], out: &mut [u64]) {
    if a.cw.is_multiple_of(4) {
        sliced256::sum_planes(a, idx, out)
    } else {
        sliced128::sum_planes(a, idx, out)
    }
}
