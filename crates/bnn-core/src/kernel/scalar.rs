//! The reference kernel: plain Rust over `u64::count_ones`, the same loop
//! structure as the SIMD kernels so that tests compare like with like.

use super::{FireArgs, LANES, PIXEL_GROUP, PIXEL_LANES, TILE_BLOCKS};

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

/// Adds `p·w` over the listed non-zero pixel groups to the sums of blocks
/// `b0..`, one neuron at a time.
pub fn pixel_add(groups: &[(u32, u32)], weights: &[i8], blocks: usize, b0: usize, acc: &mut [i32]) {
    let line = blocks * PIXEL_LANES * PIXEL_GROUP;
    let start = b0 * PIXEL_LANES * PIXEL_GROUP;
    for &(four, g) in groups {
        let p = four.to_le_bytes();
        let w = &weights[g as usize * line + start..][..acc.len() * PIXEL_GROUP];
        for (o, w) in acc.iter_mut().zip(w.chunks_exact(PIXEL_GROUP)) {
            *o += p
                .iter()
                .zip(w)
                .map(|(&p, &w)| i32::from(p) * i32::from(w))
                .sum::<i32>();
        }
    }
}
