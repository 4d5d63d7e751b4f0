//! The reference kernel: plain Rust over `u64::count_ones`, the same loop
//! structure as the SIMD kernels so that tests compare like with like.

use super::{FireArgs, PixelGroups, PixelPairs, LANES, PIXEL_GROUP, PIXEL_LANES, TILE_BLOCKS};

pub fn xor_popcount(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, w)| (x ^ w).count_ones()).sum()
}

/// Popcounts of one input row against one interleaved block of 8 neurons.
#[inline]
fn block(x: &[u64], w: &[u64]) -> [u32; LANES] {
    let mut acc = [0u32; LANES];
    for (k, &xk) in x.iter().enumerate() {
        let wk = &w[k * LANES..(k + 1) * LANES];
        for (a, &wl) in acc.iter_mut().zip(wk) {
            *a += (xk ^ wl).count_ones();
        }
    }
    acc
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
            let mut word = 0u64;
            for b in tile..end {
                let w = &a.weights[b * a.wpr * LANES..(b + 1) * a.wpr * LANES];
                let pops = block(x, w);
                let mut mask = 0u8;
                for (l, &p) in pops.iter().enumerate() {
                    mask |= u8::from(i64::from(p) <= a.limits[b * LANES + l]) << l;
                }
                word |= u64::from(mask ^ a.flips[b]) << (8 * (b - tile));
            }
            out[r * a.out_wpr + tile / TILE_BLOCKS] = word;
        }
    }
}

/// One image's bits: neuron `j` fires iff `(dot >= cut) XOR flip`.
pub fn pixel_fire(dots: &[i32], cuts: &[i32], flips: &[u16], out: &mut [u64]) {
    out.fill(0);
    for (b, (d, c)) in dots
        .chunks_exact(PIXEL_LANES)
        .zip(cuts.chunks_exact(PIXEL_LANES))
        .enumerate()
    {
        let mut mask = 0u16;
        for (l, (&d, &c)) in d.iter().zip(c).enumerate() {
            mask |= u16::from(d >= c) << l;
        }
        out[b / 4] |= u64::from(mask ^ flips[b]) << (16 * (b % 4));
    }
}

/// Each group of 4 pixels as a little-endian `u32`, the last one
/// zero-padded.
fn fours(image: &[u8]) -> impl Iterator<Item = u32> + '_ {
    image.chunks(PIXEL_GROUP).map(|four| {
        let mut bytes = [0u8; PIXEL_GROUP];
        bytes[..four.len()].copy_from_slice(four);
        u32::from_le_bytes(bytes)
    })
}

fn pixel_sum(image: &[u8]) -> u32 {
    image.iter().map(|&p| u32::from(p)).sum()
}

/// The reference lister: every group, kept when it holds a non-zero pixel.
pub fn pixel_groups(image: &[u8], out: &mut PixelGroups) {
    out.sum = pixel_sum(image);
    for (g, v) in fours(image).enumerate() {
        if v != 0 {
            out.push(v, 0, g as u32);
        }
    }
}

pub fn pixel_pair_groups(a: &[u8], b: &[u8], out: &mut PixelPairs) {
    out.sums = [pixel_sum(a), pixel_sum(b)];
    for (g, (va, vb)) in fours(a).zip(fours(b)).enumerate() {
        let g = g as u32;
        match (va != 0, vb != 0) {
            (true, true) => out.both.push(va, vb, g),
            (true, false) => out.only_a.push(va, 0, g),
            (false, true) => out.only_b.push(vb, 0, g),
            (false, false) => {}
        }
    }
}

/// `Σ p·w` over the listed groups, one neuron at a time.
pub fn pixel_dots(groups: &PixelGroups, weights: &[i8], blocks: usize, dots: &mut [i32]) {
    let line = blocks * PIXEL_LANES * PIXEL_GROUP;
    dots.fill(0);
    for (&four, &g) in groups.a().iter().zip(groups.index()) {
        let p = four.to_le_bytes();
        let w = &weights[g as usize * line..][..line];
        for (o, w) in dots.iter_mut().zip(w.chunks_exact(PIXEL_GROUP)) {
            *o += p
                .iter()
                .zip(w)
                .map(|(&p, &w)| i32::from(p) * i32::from(w))
                .sum::<i32>();
        }
    }
}
