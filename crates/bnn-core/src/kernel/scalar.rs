//! The reference kernel: plain Rust over `u64::count_ones`, the same loop
//! structure as the SIMD kernels so that tests compare like with like.

use super::{
    FireArgs, OutputArgs, PixelGroups, PixelPairs, LANES, PIXEL_GROUP, PIXEL_LANES, TILE_BLOCKS,
};

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

/// The reference of `Kernel::scores_classes`: the scores a row at a
/// time, then the rule's own scalar decision.
pub fn scores_classes(a: &OutputArgs<'_>, scores: &mut [f32], classes: &mut [usize]) {
    let n = a.inputs as i32;
    for ((out, pops), class) in scores
        .chunks_exact_mut(a.bias.len())
        .zip(a.pops.chunks_exact(a.padded))
        .zip(classes)
    {
        for ((o, &p), &b) in out.iter_mut().zip(pops).zip(a.bias) {
            *o = (n - 2 * p as i32) as f32 + b;
        }
        *class = a.rule.decide(out);
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
    let whole = image.chunks_exact(PIXEL_GROUP);
    let tail = whole.remainder();
    let last = (!tail.is_empty()).then(|| {
        let mut bytes = [0u8; PIXEL_GROUP];
        bytes[..tail.len()].copy_from_slice(tail);
        u32::from_le_bytes(bytes)
    });
    whole
        .map(|four| u32::from_le_bytes(four.try_into().expect("4 bytes")))
        .chain(last)
}

fn pixel_sum(image: &[u8]) -> u32 {
    image.iter().map(|&p| u32::from(p)).sum()
}

/// The portable lister, also the AVX2 kernel's: every group is written
/// and kept when it holds a non-zero pixel, with no branch per group
/// (MNIST's zero and non-zero groups alternate too irregularly for a
/// branch predictor). The lists have room for every group.
pub fn pixel_groups(image: &[u8], out: &mut PixelGroups) {
    out.sum = pixel_sum(image);
    let mut n = 0;
    for (g, v) in fours(image).enumerate() {
        out.a[n] = v;
        out.index[n] = g as u32;
        n += usize::from(v != 0);
    }
    out.len = n;
}

pub fn pixel_pair_groups(a: &[u8], b: &[u8], out: &mut PixelPairs) {
    out.sums = [pixel_sum(a), pixel_sum(b)];
    let (mut n_both, mut n_a, mut n_b) = (0, 0, 0);
    for (g, (va, vb)) in fours(a).zip(fours(b)).enumerate() {
        let g = g as u32;
        out.both.a[n_both] = va;
        out.both.b[n_both] = vb;
        out.both.index[n_both] = g;
        out.only_a.a[n_a] = va;
        out.only_a.index[n_a] = g;
        out.only_b.a[n_b] = vb;
        out.only_b.index[n_b] = g;
        let (in_a, in_b) = (va != 0, vb != 0);
        n_both += usize::from(in_a && in_b);
        n_a += usize::from(in_a && !in_b);
        n_b += usize::from(in_b && !in_a);
    }
    out.both.len = n_both;
    out.only_a.len = n_a;
    out.only_b.len = n_b;
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
