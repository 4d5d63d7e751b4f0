//! Dot products of packed ±1 vectors as `n − 2·popcount(x ⊕ w)`, and the two
//! layer loops built on them.
//!
//! This module is the one dispatch point. [`Kernel`] names an implementation;
//! [`available`] lists those this CPU runs, best first; [`active`] is the one
//! chosen once per process (the best, or the one `BNN_KERNEL` names). The
//! scalar kernel is the reference: every other kernel is tested against it.
//!
//! # Weight layout
//!
//! The layer loops take weights *interleaved* in blocks of [`LANES`] neurons:
//! for block `b`, word `k`, lane `l`, the word sits at `(b·wpr + k)·8 + l`
//! (`wpr` = words per input row). One 512-bit load then holds word `k` of
//! eight neurons, so an input word is broadcast once and XOR-ed against eight
//! neurons at a time, and the eight popcounts accumulate in eight lanes with
//! no horizontal sum per neuron. Padding neurons of the last block have zero
//! weights; the layer gives them limits that never fire.
//!
//! # Pixel layers
//!
//! A u8-input first layer ([`crate::PixelDense`]) needs `Σ p_i·w_i` with
//! `p` in 0..=255 and `w = ±1`. Its weights are `i8` in blocks of
//! [`PIXEL_LANES`] neurons and groups of [`PIXEL_GROUP`] pixels: for group
//! `g`, block `b`, lane `l`, pixel `i`, the weight sits at
//! `((g·blocks + b)·16 + l)·4 + i`, so one 64-byte line holds the 4 weights
//! of 16 neurons for 4 pixels — one `VPDPBUSD` operand against the 4 pixels
//! broadcast to every lane. The layer first lists each image's groups of 4
//! pixels that are not all zero (`PixelGroups`; MNIST digits are about
//! 80 % zero pixels, so most groups are skipped), then `Kernel::pixel_dots`
//! sums only those.
//!
//! ## Why this method
//!
//! Three exact methods were measured on the MNIST test digits (18.0 % of
//! their pixels and 27.3 % of their groups of 4 are non-zero) for a
//! 784 → 512 pixel layer; docs/PERFORMANCE.md ("Why the kernels are as
//! they are") has the figures of this section and the commands that give
//! them.
//!
//! - `VPDPBUSD` (AVX512-VNNI) does 64 multiply-adds of u8 pixels by i8
//!   weights per instruction, and needs no correction term because the
//!   weights are stored as ±1 bytes; AVX2 does the same in two steps
//!   (`VPMADDUBSW`, `VPMADDWD`). An AVX-512 CPU without VNNI uses the AVX2
//!   loop. (AVX-VNNI, the 256-bit form, is not used: the CPUs that have it
//!   and lack AVX-512 run the AVX2 loop.)
//! - Skipping all-zero groups of 4 pixels cuts the work to the 27 % of
//!   groups that hold ink, and beat the dense sum on digits with every
//!   kernel. A per-pixel sparse sum would touch fewer pixels (18 %) but
//!   needs one operation per pixel and neuron, where a group costs one per
//!   4 pixels.
//! - Bit planes cost 8 binary layers (plus packing the planes) whatever the
//!   pixels: far slower than the sparse sum, so they are not kept, and
//!   with them a k-bit input option (which only bit planes would make
//!   cheaper) is not offered.
//! - Walking the 400 KB of weights in 16 KB tiles across the 64 images of a
//!   batch (so that each tile is loaded from L2 once per batch) measured
//!   slower than streaming each image's groups from L2: the per-tile
//!   bookkeeping cost more than the loads it saved.
//! - Two images at a time with AVX512-VNNI (`Kernel::pixel_pair_dots`):
//!   each weight line is loaded once for both images. It measured faster
//!   than one image at a time at one thread, and level at two; it is kept
//!   for that.
//!
//! ## The paired kernel, step by step
//!
//! On the digits a pair holds 76.3 non-zero groups in the union of its two
//! images, 35.4 of them in both; one image alone 55.8. The kernel was
//! built in these steps, each measured against the one before (CPU time,
//! AVX-512 on Zen 4, whose 512-bit operations take two passes through
//! 256-bit pipes):
//!
//! 1. the union list built by a scalar merge; sums added to cleared
//!    buffers;
//! 2. lists by `VPTESTMD` + `VPCOMPRESSD`, 16 groups a step; the union
//!    split into groups in both images (two `VPDPBUSD` per line) and in
//!    one (one); sums stored, nothing cleared;
//! 3. `POPCNT` enabled for the listers' counts (level: the counts compiled
//!    to a table lookup before);
//! 4. weights all as sign bits, expanded by `VPMOVM2B`;
//! 5. per 8-block pass, 4 blocks from i8 lines and 4 from sign bits;
//! 6. 3 from i8 lines and 5 from sign bits (this kernel).
//!
//! - Profiles of the first steps showed the `VPDPBUSD` loop waiting on
//!   weight lines: 400 KB of i8 weights fit L2 but not L1, and each pair
//!   reads 76 groups × 32 lines of 64 bytes. With every group pointed at
//!   the same few lines (wrong sums, L1-resident weights) the run was much
//!   faster: the L2 traffic was a large part of the cost.
//! - Sign bits (bit `4·l + i` set for a −1 weight, 8 bytes a line) cut that
//!   traffic 8×: `Σ p·w = Σ p − 2·Σ_{w=−1} p`, where `VPMOVM2B` turns a
//!   word into the 0/−1 bytes of `−Σ_{w=−1} p` and the lister adds up `Σ p`
//!   with `VPSADBW`. But the expansion runs on the same vector pipes as
//!   `VPDPBUSD` (replacing it by a broadcast, wrong sums again, was much
//!   faster), so neither form alone wins by much; reading some blocks of
//!   each pass from lines (load ports, L2) and the rest from bits (vector
//!   pipes) keeps both busy. Other splits of an 8-block pass, and passes
//!   of 12 blocks, were no better.
//! - Left: the `VPDPBUSD` count itself (35.4·2 + 40.9 per pair and block,
//!   what groups of 4 need), most of the time, and the lister. Prefetching
//!   the next pair's pixels did not help.
//! - One image alone (`Kernel::pixel_mixed_dots`: single-image calls,
//!   the odd image of a batch) mixes the forms too, 16 blocks a pass: 6
//!   from lines and 10 from bits, the fastest split measured.
//! - The AVX2 and scalar kernels and the u8 convolutions read the i8
//!   lines alone. The layer keeps both forms (an eighth more memory).

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::rule::DecisionRule;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod aarch64;
pub mod cpu;
// Views its aligned lines as words.
#[allow(unsafe_code)]
mod lines;
mod minority;
mod rows;
mod scalar;
pub(crate) mod sliced;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sliced_x86;
// WebAssembly SIMD, compiled in only with `-C target-feature=+simd128`
// (WebAssembly cannot detect features at run time).
#[cfg(target_feature = "simd128")]
#[allow(unsafe_code)]
mod wasm32;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86_64;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86_64_rows;

pub(crate) use lines::Lines;
pub(crate) use minority::Minority;

/// Neurons per interleaved weight block (one 512-bit register of `u64`s).
pub const LANES: usize = 8;

/// Neurons per pixel-layer block: one 512-bit register of `i32` sums.
pub const PIXEL_LANES: usize = 16;

/// Pixels per pixel-layer group: the 4 bytes one `VPDPBUSD` lane multiplies.
pub const PIXEL_GROUP: usize = 4;

/// Hidden-layer blocks per cache tile: 8 blocks give one output word, and
/// keep a tile of weights (8·8·wpr words, 6.5 KiB for 784 inputs) in L1.
pub(crate) const TILE_BLOCKS: usize = 8;

/// An implementation of the XNOR-popcount loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kernel {
    /// Portable Rust with `u64::count_ones`; the reference.
    Scalar,
    /// AVX2: nibble-table popcount (`vpshufb`) with byte accumulators.
    Avx2,
    /// AVX-512 with `VPOPCNTQ` (AVX512F, AVX512BW, AVX512_VPOPCNTDQ, and
    /// POPCNT, which every AVX-512 CPU has).
    Avx512,
    /// WebAssembly SIMD (`i8x16.popcnt`, `i32x4.dot_i16x8_s`): present only
    /// in a WebAssembly build compiled with `+simd128`, and then always
    /// available (see `kernel/wasm32.rs`).
    Simd128,
    /// AArch64 NEON: `CNT` popcounts, 128-bit bit-sliced counters, and
    /// `UDOT` for the u8 layer where the CPU has the dot product.
    Neon,
}

/// The operands of a hidden layer's loop: inputs, interleaved weights,
/// per-neuron popcount limits and per-block flip masks. A neuron fires when
/// `(popcount <= limit) XOR flip`.
///
/// `limits` holds one or more *sets* of `blocks·8` limits, and row `r`
/// fires against set `row_sets[r]`, or set 0 for every row when
/// `row_sets` is empty: a zero-padded convolution's border positions fire
/// against thresholds shifted per border class (see `crate::conv`) in the
/// same pass as the interior ones, two rows to a weight load whatever
/// their classes.
pub(crate) struct FireArgs<'a> {
    pub xs: &'a [u64],
    pub rows: usize,
    pub wpr: usize,
    pub weights: &'a [u64],
    pub blocks: usize,
    pub limits: &'a [i64],
    pub row_sets: &'a [u16],
    pub flips: &'a [u8],
    pub out_wpr: usize,
}

impl FireArgs<'_> {
    /// Where row `r`'s set of limits begins in `limits`.
    #[inline]
    pub fn limits_at(&self, r: usize) -> usize {
        self.row_sets
            .get(r)
            .map_or(0, |&set| usize::from(set) * self.blocks * LANES)
    }
}

/// The operands of an output layer's scores: `padded` popcounts a row
/// (the first `bias.len()` of them are classes), the layer's `inputs`, the
/// per-class bias and the rule that picks a class from the scores.
pub(crate) struct OutputArgs<'a> {
    pub pops: &'a [u32],
    pub padded: usize,
    pub inputs: usize,
    pub bias: &'a [f32],
    pub rule: DecisionRule,
}

/// One class's score under a per-class scale: `dot · scale + bias`, a
/// rounded f32 product, then a rounded f32 sum. Written once, so that the
/// engine's every path and its tests agree on the rounding: no fused
/// multiply-add (Rust never fuses `a * b + c` by itself).
#[inline]
pub fn scaled_score(dot: f32, scale: f32, bias: f32) -> f32 {
    dot * scale + bias
}

/// An output layer's scores under a per-class scale, and each row's class
/// by the rule: the step after the integer dots, shared by every kernel
/// (the kernels only counted the popcounts), so that a scale needs no
/// kernel of its own. Dots are `inputs − 2·popcount`, exact in f32 for
/// any layer width the engine takes (at most 2^24).
pub(crate) fn scaled_scores_classes(
    a: &OutputArgs<'_>,
    scale: &[f32],
    scores: &mut [f32],
    classes: &mut [usize],
) {
    let c = a.bias.len();
    assert!(c > 0 && c <= a.padded && scale.len() == c && a.inputs <= i32::MAX as usize);
    assert!(a.pops.len() >= classes.len() * a.padded && scores.len() == classes.len() * c);
    let n = a.inputs as i32;
    for ((out, pops), class) in scores
        .chunks_exact_mut(c)
        .zip(a.pops.chunks_exact(a.padded))
        .zip(classes)
    {
        for (((o, &p), &b), &k) in out.iter_mut().zip(pops).zip(a.bias).zip(scale) {
            *o = scaled_score((n - 2 * p as i32) as f32, k, b);
        }
        *class = a.rule.decide(out);
    }
}

/// One output position of a u8 convolution: the output row its bits go
/// to and where its window starts in the padded image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Spot {
    pub row: u32,
    pub base: u32,
}

/// The operands of a u8 convolution (see `crate::conv`), read straight
/// from the image padded with zero pixels: each of the `spots` takes
/// `runs` runs of `run_groups·4` bytes, run `ky` at `base + ky·line`; the
/// bytes of a run past the window's `k·C` meet zero weights. Only the
/// positions listed are computed, in any order (the others keep what `out`
/// holds: see `crate::blank`). Weights are in the pixel-layer layout
/// above over `runs·run_groups` groups, and each filter has the cut and
/// flip of [`crate::PixelDense`]: it fires iff `(dot >= cut) XOR flip`.
/// Each spot's bits go to `out[row·out_wpr ..]`.
pub(crate) struct PixelRows<'a> {
    pub pixels: &'a [u8],
    pub spots: &'a [Spot],
    pub line: usize,
    pub runs: usize,
    pub run_groups: usize,
    pub weights: &'a [i8],
    pub blocks: usize,
    pub cuts: &'a [i32],
    pub flips: &'a [u16],
    pub out_wpr: usize,
}

/// The operands of the sparse bit-sliced layer (see [`sliced`]): `inputs`
/// transposed columns of `cw` words each (bit `j` of a column is neuron
/// `j`'s weight) and a zero column after them, which pads position lists
/// to whole groups of 8, and for hidden layers the `planes` bit planes of the
/// per-neuron cuts over the ones and over the zeros, and the flips.
pub(crate) struct SlicedArgs<'a> {
    pub columns: &'a [u64],
    pub inputs: usize,
    pub cw: usize,
    pub planes: usize,
    pub ones_cut: &'a [u64],
    pub zeros_cut: &'a [u64],
    pub flips: &'a [u64],
}

impl Kernel {
    /// Every kernel this build knows, best first.
    pub const ALL: [Kernel; 5] = [
        Kernel::Avx512,
        Kernel::Avx2,
        Kernel::Neon,
        Kernel::Simd128,
        Kernel::Scalar,
    ];

    /// The name used by `BNN_KERNEL` and `--kernel`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::Simd128 => "simd128",
            Kernel::Neon => "neon",
        }
    }

    /// Whether this CPU can run the kernel (checked at run time). Every
    /// kernel call asks (see `checked`), several times per image, so the
    /// answers are detected once and kept as one word.
    pub fn is_available(self) -> bool {
        static DETECTED: OnceLock<[bool; 5]> = OnceLock::new();
        DETECTED.get_or_init(|| {
            [
                Kernel::Scalar,
                Kernel::Avx2,
                Kernel::Avx512,
                Kernel::Simd128,
                Kernel::Neon,
            ]
            .map(Kernel::detect)
        })[self as usize]
    }

    fn detect(self) -> bool {
        match self {
            Kernel::Scalar => true,
            Kernel::Avx2 => cpu::Level::Avx2.on(),
            Kernel::Avx512 => cpu::Level::Avx512.on(),
            Kernel::Simd128 => cfg!(target_feature = "simd128"),
            Kernel::Neon => cpu::Level::Neon.on(),
        }
    }

    /// Parses a kernel name and checks that this CPU runs it.
    pub fn parse(name: &str) -> Result<Kernel> {
        let kernel = Kernel::ALL
            .into_iter()
            .find(|k| k.name() == name.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                let mut known = Kernel::ALL;
                known.sort();
                Error::Kernel(format!(
                    "unknown kernel '{name}' (known: {})",
                    names(&known)
                ))
            })?;
        kernel.require()
    }

    /// The kernel itself, or an error when this CPU lacks it.
    pub fn require(self) -> Result<Kernel> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(Error::Kernel(format!(
                "kernel '{}' is not supported by this CPU (available: {})",
                self.name(),
                names(&available())
            )))
        }
    }

    /// `popcount(a ⊕ b)` over whole words.
    pub fn xor_popcount(self, a: &[u64], b: &[u64]) -> u32 {
        assert_eq!(a.len(), b.len(), "operand lengths differ");
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::xor_popcount_avx512(a, b),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86_64::xor_popcount_avx2(a, b),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::xor_popcount(a, b),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::xor_popcount_neon(a, b),
            _ => scalar::xor_popcount(a, b),
        }
    }

    /// The ±1 dot product of two packed vectors of `n` bits (tails zero).
    pub fn dot(self, a: &[u64], b: &[u64], n: usize) -> i32 {
        n as i32 - 2 * self.xor_popcount(a, b) as i32
    }

    /// Packs pixels into bits (`p >= threshold` → 1), like
    /// [`crate::bits::pack_pixels`] but with this kernel's instructions.
    pub fn pack_pixels(self, pixels: &[u8], threshold: u8, out: &mut [u64]) {
        assert_eq!(
            out.len(),
            crate::bits::words_for(pixels.len()),
            "output word count"
        );
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::pack_pixels_avx512(pixels, threshold, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86_64::pack_pixels_avx2(pixels, threshold, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::pack_pixels(pixels, threshold, out),
            _ => crate::bits::pack_pixels(pixels, threshold, out),
        }
    }

    /// [`Kernel::pack_pixels`] for consecutive images of `per` pixels,
    /// `words_for(per)` words each, with one dispatch for all of them.
    pub fn pack_pixel_rows(self, pixels: &[u8], per: usize, threshold: u8, out: &mut [u64]) {
        assert!(per > 0 && pixels.len().is_multiple_of(per), "whole images");
        assert_eq!(
            out.len(),
            pixels.len() / per * crate::bits::words_for(per),
            "output word count"
        );
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::pack_pixel_rows_avx512(pixels, per, threshold, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86_64::pack_pixel_rows_avx2(pixels, per, threshold, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => {
                let wpr = crate::bits::words_for(per);
                for (image, words) in pixels.chunks_exact(per).zip(out.chunks_exact_mut(wpr)) {
                    wasm32::pack_pixels(image, threshold, words);
                }
            }
            _ => {
                let wpr = crate::bits::words_for(per);
                for (image, words) in pixels.chunks_exact(per).zip(out.chunks_exact_mut(wpr)) {
                    crate::bits::pack_pixels(image, threshold, words);
                }
            }
        }
    }

    /// Popcounts of `xs` rows against every neuron of interleaved weights:
    /// `out[row·blocks·8 + neuron]`.
    pub(crate) fn block_popcounts(
        self,
        xs: &[u64],
        rows: usize,
        wpr: usize,
        weights: &[u64],
        blocks: usize,
        out: &mut [u32],
    ) {
        assert!(xs.len() >= rows * wpr && weights.len() == blocks * wpr * LANES);
        assert!(out.len() >= rows * blocks * LANES);
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::block_popcounts_avx512(xs, rows, wpr, weights, blocks, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86_64::block_popcounts_avx2(xs, rows, wpr, weights, blocks, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::block_popcounts(xs, rows, wpr, weights, blocks, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::block_popcounts_neon(xs, rows, wpr, weights, blocks, out),
            _ => scalar::block_popcounts(xs, rows, wpr, weights, blocks, out),
        }
    }

    /// An output layer's scores, `inputs − 2·popcount + bias` per class,
    /// and each row's class by the rule (see [`OutputArgs`]). On AVX-512 a
    /// row of up to 16 classes is one vector: conversion, bias and the
    /// decision (a maximum, a compare and the first set bit) are a dozen
    /// instructions, where the scalar loop's chain of compare-selects over
    /// the scores cost about 5 % of a 784-512-10 batch (3.5 against 11.1
    /// ns a row).
    pub(crate) fn scores_classes(
        self,
        a: &OutputArgs<'_>,
        scores: &mut [f32],
        classes: &mut [usize],
    ) {
        let (c, rows) = (a.bias.len(), classes.len());
        assert!(c > 0 && c <= a.padded && a.inputs <= i32::MAX as usize);
        assert!(a.pops.len() >= rows * a.padded && scores.len() == rows * c);
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if c <= 16 => x86_64::scores_classes_avx512(a, scores, classes),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon if c <= 16 => aarch64::scores_classes_neon(a, scores, classes),
            _ => scalar::scores_classes(a, scores, classes),
        }
    }

    /// A hidden layer: output bits `out[row·out_wpr + j/64]`, bit `j % 64`.
    pub(crate) fn fire(self, args: &FireArgs<'_>, out: &mut [u64]) {
        let a = args;
        assert!(a.xs.len() >= a.rows * a.wpr && a.weights.len() == a.blocks * a.wpr * LANES);
        let set = a.blocks * LANES;
        assert!(
            a.flips.len() == a.blocks
                && a.limits.len() >= set
                && a.limits.len().is_multiple_of(set)
        );
        // Every row's set of limits lies inside `limits`.
        let sets = a.limits.len() / set;
        assert!(a.row_sets.is_empty() || a.row_sets.len() >= a.rows);
        assert!(a.row_sets.iter().all(|&s| usize::from(s) < sets));
        assert!(a.out_wpr * TILE_BLOCKS >= a.blocks && out.len() >= a.rows * a.out_wpr);
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::fire_avx512(a, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86_64::fire_avx2(a, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::fire(a, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::fire_neon(a, out),
            _ => scalar::fire(a, out),
        }
    }

    /// Lists `image`'s groups of 4 pixels that hold a non-zero pixel (see
    /// [`PixelGroups`]); the last group is zero-padded.
    pub(crate) fn pixel_groups(self, image: &[u8], out: &mut PixelGroups) {
        out.reset(image.len().div_ceil(PIXEL_GROUP), false);
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::pixel_groups_avx512(image, out),
            _ => scalar::pixel_groups(image, out),
        }
    }

    /// Lists two images' non-zero groups three ways (see [`PixelPairs`]).
    pub(crate) fn pixel_pair_groups(self, a: &[u8], b: &[u8], out: &mut PixelPairs) {
        assert_eq!(a.len(), b.len(), "images of one layer");
        let count = a.len().div_ceil(PIXEL_GROUP);
        out.both.reset(count, true);
        out.only_a.reset(count, false);
        out.only_b.reset(count, false);
        out.sums = [0; 2];
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::pixel_pair_groups_avx512(a, b, out),
            _ => scalar::pixel_pair_groups(a, b, out),
        }
    }

    /// One image's dots `Σ p_i·w_ji` over the listed groups, for every
    /// neuron of a pixel layer (weights in the layout above, `blocks` in
    /// all): `dots` is overwritten, so it needs no clearing.
    pub(crate) fn pixel_dots(
        self,
        groups: &PixelGroups,
        weights: &[i8],
        blocks: usize,
        dots: &mut [i32],
    ) {
        let count = pixel_group_count(weights, blocks);
        assert!(dots.len() == blocks * PIXEL_LANES);
        assert!(groups.index().iter().all(|&g| (g as usize) < count));
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::pixel_dots_avx512(groups, weights, blocks, dots),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => x86_64::pixel_dots_avx2(groups, weights, blocks, dots),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::pixel_dots(groups, weights, blocks, dots),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::pixel_dots_neon(groups, weights, blocks, dots),
            _ => scalar::pixel_dots(groups, weights, blocks, dots),
        }
    }

    /// As [`Kernel::pixel_dots`], reading the weights in both forms like
    /// [`Kernel::pixel_pair_dots`] (whose conditions hold here too).
    pub(crate) fn pixel_mixed_dots(
        self,
        groups: &PixelGroups,
        weights: &[i8],
        signs: &[u64],
        blocks: usize,
        dots: &mut [i32],
    ) {
        let count = pixel_group_count(weights, blocks);
        assert!(signs.len() == count * blocks, "sign words");
        assert!(dots.len() == blocks * PIXEL_LANES);
        assert!(groups.index().iter().all(|&g| (g as usize) < count));
        assert!(
            self.checked().pairs_pixel_rows(),
            "{} has no mixed pixel loop",
            self.name()
        );
        #[cfg(target_arch = "x86_64")]
        x86_64::pixel_mixed_dots_vnni(groups, weights, signs, blocks, dots);
    }

    /// Whether this kernel runs the AVX512-VNNI loops over both forms of
    /// the weights ([`Kernel::pixel_pair_dots`], two images sharing each
    /// weight load, and [`Kernel::pixel_mixed_dots`]); otherwise the layer
    /// sums images one at a time with [`Kernel::pixel_dots`].
    pub(crate) fn pairs_pixel_rows(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if self == Kernel::Avx512 && x86_64::has_avx512_vnni() {
            return true;
        }
        false
    }

    /// Two images' dots over every block from their [`PixelPairs`],
    /// overwriting `dots_a` and `dots_b`. The weights come in two forms:
    /// `weights` as above, and `signs`, word `g·blocks + b` for block `b`
    /// of group `g`, bit `4·l + i` set where the weight of lane `l`, pixel
    /// `i` is −1. The kernel reads some blocks from each, so it needs ±1
    /// weights on every real pixel; the dots of padding neurons are not
    /// defined.
    pub(crate) fn pixel_pair_dots(
        self,
        pairs: &PixelPairs,
        weights: &[i8],
        signs: &[u64],
        blocks: usize,
        dots_a: &mut [i32],
        dots_b: &mut [i32],
    ) {
        let count = pixel_group_count(weights, blocks);
        assert!(signs.len() == count * blocks, "sign words");
        assert!(dots_a.len() == blocks * PIXEL_LANES && dots_b.len() == dots_a.len());
        for list in [&pairs.both, &pairs.only_a, &pairs.only_b] {
            assert!(list.index().iter().all(|&g| (g as usize) < count));
        }
        assert!(pairs.both.b().len() == pairs.both.len());
        assert!(
            self.checked().pairs_pixel_rows(),
            "{} has no paired pixel loop",
            self.name()
        );
        #[cfg(target_arch = "x86_64")]
        x86_64::pixel_pair_dots_vnni(pairs, weights, signs, blocks, dots_a, dots_b);
    }

    /// A pixel layer's output bits for one image: neuron `j` fires iff
    /// `(dots[j] >= cuts[j]) XOR` bit `j % 16` of `flips[j / 16]`.
    pub(crate) fn pixel_fire(self, dots: &[i32], cuts: &[i32], flips: &[u16], out: &mut [u64]) {
        assert!(dots.len() == flips.len() * PIXEL_LANES && cuts.len() == dots.len());
        assert!(out.len() * 4 >= flips.len());
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => x86_64::pixel_fire_avx512(dots, cuts, flips, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::pixel_fire_neon(dots, cuts, flips, out),
            _ => scalar::pixel_fire(dots, cuts, flips, out),
        }
    }

    /// A u8 convolution's output bits, every listed position's window
    /// against every filter.
    pub(crate) fn pixel_rows_fire(self, a: &PixelRows<'_>, out: &mut [u64]) {
        let groups = a.runs * a.run_groups;
        assert!(a.runs > 0 && a.run_groups * PIXEL_GROUP <= a.line);
        // Two max folds over the spots (vectorised), not a branch per spot.
        let row = a.spots.iter().map(|s| s.row).fold(0, u32::max) as usize + 1;
        let base = a.spots.iter().map(|s| s.base).fold(0, u32::max) as usize;
        assert!(
            a.spots.is_empty()
                || base + (a.runs - 1) * a.line + a.run_groups * PIXEL_GROUP <= a.pixels.len()
        );
        assert!(a.weights.len() == groups * a.blocks * PIXEL_LANES * PIXEL_GROUP);
        assert!(a.cuts.len() == a.blocks * PIXEL_LANES && a.flips.len() == a.blocks);
        assert!(a.out_wpr == a.blocks.div_ceil(rows::BLOCKS_PER_WORD));
        assert!(out.len() >= row * a.out_wpr);
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if x86_64::has_avx512_vnni() => {
                x86_64_rows::pixel_rows_fire_vnni(a, out)
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Avx2 => x86_64_rows::pixel_rows_fire_avx2(a, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::pixel_rows_fire(a, out),
            _ => rows::pixel_rows_fire(a, out),
        }
    }

    /// The ones in `x`: the per-image count behind the dense-or-sparse
    /// choice, which without `POPCNT` compiles to a bit-twiddling sum that
    /// cost about 7 % of a single image's time on 784-512-10.
    pub(crate) fn ones(self, x: &[u64]) -> usize {
        #[cfg(target_arch = "x86_64")]
        if self != Kernel::Scalar && sliced_x86::has_popcnt_bmi1() {
            return sliced_x86::ones_popcnt(x);
        }
        x.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Lists one image's minority positions (its 1 bits, or its 0 bits
    /// when those are fewer) into `m`, with the bits beyond `inputs` in the
    /// last word ignored. With AVX512-VBMI2 by compress instructions, with
    /// no branch per bit (`VPCOMPRESSB` per word for sparse images,
    /// `VPCOMPRESSW` per half word for balanced ones; see `sliced_x86`);
    /// else a `tzcnt` loop, whose exit branch mispredicts about once a
    /// word. Through the whole sparse layer the compress listing measured
    /// level with `tzcnt` on the sparsest rows and ahead as they fill
    /// (docs/PERFORMANCE.md, "Why the kernels are as they are").
    pub(crate) fn minority(self, x: &[u64], inputs: usize, m: &mut Minority) {
        assert!(inputs <= sliced::MAX_INPUTS && x.len() == crate::bits::words_for(inputs));
        m.make_room(inputs / 2);
        let (len, ones, zeros) = match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if sliced_x86::has_vbmi2() => {
                sliced_x86::minority_avx512(x, inputs, &mut m.idx)
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 | Kernel::Avx2 if sliced_x86::has_popcnt_bmi1() => {
                sliced_x86::minority_bmi(x, inputs, &mut m.idx)
            }
            _ => sliced::minority(x, inputs, &mut m.idx),
        };
        m.finish(len, inputs, ones, zeros);
    }

    /// A hidden layer's output bits for one image, from its minority
    /// positions.
    pub(crate) fn sliced_fire(self, a: &SlicedArgs<'_>, m: &Minority, out: &mut [u64]) {
        Self::check_sliced(a, m);
        Self::check_cuts(a);
        assert!(out.len() == a.cw);
        let (idx, ones, zeros) = (m.positions(), m.ones(), m.zeros());
        // Whole vectors of columns and sums within ten planes: the lean loop.
        #[cfg_attr(
            not(any(target_arch = "x86_64", target_feature = "simd128")),
            allow(unused_variables)
        )]
        let lines = |w: usize| a.cw.is_multiple_of(w) && a.inputs <= sliced::LINES_MAX_INPUTS;
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if lines(8) => sliced_x86::fire_lines_avx512(a, idx, ones, zeros, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => sliced_x86::fire_avx512(a, idx, ones, zeros, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 if lines(4) => sliced_x86::fire_lines_avx2(a, idx, ones, zeros, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => sliced_x86::fire_avx2(a, idx, ones, zeros, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 if lines(2) => wasm32::sliced_fire_lines(a, idx, ones, zeros, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::sliced_fire(a, idx, ones, zeros, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon if lines(2) => aarch64::sliced_fire_lines_neon(a, idx, ones, zeros, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::sliced_fire_neon(a, idx, ones, zeros, out),
            // On single words the lean loop's fixed-depth ripple costs more
            // than it saves (the `sparse/` benches; docs/PERFORMANCE.md), so
            // the portable kernel keeps the general one; the two are tested
            // against each other.
            _ => sliced::portable::fire(a, idx, ones, zeros, out),
        }
    }

    /// A hidden layer's output bits for `rows` packed input rows
    /// (`out.len() == rows·cw`): each row's minority listing (kept in `m`)
    /// and [`Kernel::sliced_fire`]. On AVX-512 with VBMI2 and a layer of
    /// whole vectors, one call runs both for every row, with the
    /// feature checks and the dispatch paid once per chunk instead of twice
    /// per row.
    pub(crate) fn sliced_fire_rows(
        self,
        a: &SlicedArgs<'_>,
        xs: &[u64],
        rows: usize,
        m: &mut Minority,
        out: &mut [u64],
    ) {
        let wpr = crate::bits::words_for(a.inputs);
        assert!(xs.len() >= rows * wpr && out.len() == rows * a.cw);
        let xs = &xs[..rows * wpr];
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if Self::fires_rows_vbmi2(a) => {
                m.make_room(a.inputs / 2);
                sliced_x86::fire_rows_vbmi2(a, xs, wpr, m, out)
            }
            _ => {
                for (x, o) in xs.chunks_exact(wpr).zip(out.chunks_exact_mut(a.cw)) {
                    self.minority(x, a.inputs, m);
                    self.sliced_fire(a, m, o);
                }
            }
        }
    }

    /// [`Kernel::sliced_fire_rows`] for images of `a.inputs` pixels whose
    /// bits are `p >= threshold`, listed from the pixels with no packed
    /// copy stored and read back. On AVX-512 with VBMI2 each image's
    /// compare masks feed the byte compress directly
    /// (`minority_of_pixels_vbmi2`); else each image is packed, then
    /// listed.
    pub(crate) fn sliced_fire_pixel_rows(
        self,
        a: &SlicedArgs<'_>,
        pixels: &[u8],
        threshold: u8,
        m: &mut Minority,
        out: &mut [u64],
    ) {
        assert!(a.inputs > 0 && pixels.len().is_multiple_of(a.inputs));
        assert!(out.len() == pixels.len() / a.inputs * a.cw);
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 if Self::fires_rows_vbmi2(a) => {
                m.make_room(a.inputs);
                sliced_x86::fire_pixel_rows_vbmi2(a, pixels, threshold, m, out)
            }
            _ => {
                let mut x = vec![0u64; crate::bits::words_for(a.inputs)];
                for (image, o) in pixels
                    .chunks_exact(a.inputs)
                    .zip(out.chunks_exact_mut(a.cw))
                {
                    self.pack_pixels(image, threshold, &mut x);
                    self.minority(&x, a.inputs, m);
                    self.sliced_fire(a, m, o);
                }
            }
        }
    }

    /// The bit planes of the sums of the columns at one image's minority
    /// positions: plane `b` (of [`sliced::SUM_PLANES`]) at `out[b·cw ..]`.
    pub(crate) fn sliced_sum_planes(self, a: &SlicedArgs<'_>, m: &Minority, out: &mut [u64]) {
        Self::check_sliced(a, m);
        assert!(out.len() == sliced::SUM_PLANES * a.cw);
        let idx = m.positions();
        match self.checked() {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => sliced_x86::sum_planes_avx512(a, idx, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => sliced_x86::sum_planes_avx2(a, idx, out),
            #[cfg(target_feature = "simd128")]
            Kernel::Simd128 => wasm32::sliced_sum_planes(a, idx, out),
            #[cfg(target_arch = "aarch64")]
            Kernel::Neon => aarch64::sliced_sum_planes_neon(a, idx, out),
            _ => sliced::portable::sum_planes(a, idx, out),
        }
    }

    /// The SIMD forms load whole column vectors unchecked: every position
    /// of a [`Minority`] is at most its `inputs` (the type's invariant), so
    /// equal widths and a column table of `inputs + 1` columns bound them.
    fn check_sliced(a: &SlicedArgs<'_>, m: &Minority) {
        assert!(a.inputs <= sliced::MAX_INPUTS && a.columns.len() == (a.inputs + 1) * a.cw);
        assert_eq!(m.inputs(), a.inputs, "positions listed for another width");
    }

    /// Whether AVX-512 runs a hidden layer's rows in one call with VBMI2:
    /// the CPU has it and the layer takes `fire_lines` (whole-vector
    /// columns, at most `LINES_MAX_INPUTS` inputs). Asserts what those
    /// calls' unchecked column loads rely on.
    #[cfg(target_arch = "x86_64")]
    fn fires_rows_vbmi2(a: &SlicedArgs<'_>) -> bool {
        let takes = sliced_x86::has_vbmi2()
            && a.cw.is_multiple_of(8)
            && a.inputs <= sliced::LINES_MAX_INPUTS;
        if takes {
            Self::check_cuts(a);
            assert!(a.inputs <= sliced::MAX_INPUTS && a.columns.len() == (a.inputs + 1) * a.cw);
        }
        takes
    }

    /// The cut planes and flips of a hidden layer's arguments.
    fn check_cuts(a: &SlicedArgs<'_>) {
        assert!(a.ones_cut.len() == a.planes * a.cw && a.zeros_cut.len() == a.ones_cut.len());
        assert!(a.planes <= sliced::SUM_PLANES + 1 && a.flips.len() == a.cw);
    }

    /// Guards the SIMD paths: a kernel value can be built by hand, so the
    /// feature check happens here too, once per call (a cached load).
    #[inline]
    fn checked(self) -> Kernel {
        assert!(
            self.is_available(),
            "kernel {} used on a CPU without it",
            self.name()
        );
        self
    }
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kernel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Kernel> {
        Kernel::parse(s)
    }
}

/// The kernels this CPU runs, best first (scalar always last).
pub fn available() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|k| k.is_available())
        .collect()
}

/// The kernel named by `BNN_KERNEL`, or the best available when it is unset
/// or empty. An unknown name, or one this CPU lacks, is an error, and so
/// is a name `BNN_FEATURES_OFF` does not know (see [`cpu`]).
pub fn from_env() -> Result<Kernel> {
    cpu::check_env()?;
    match std::env::var("BNN_KERNEL") {
        Ok(name) if !name.trim().is_empty() => {
            Kernel::parse(&name).map_err(|e| Error::Kernel(format!("BNN_KERNEL: {e}")))
        }
        _ => Ok(available()[0]),
    }
}

/// The process-wide kernel, chosen once: [`from_env`], falling back to the
/// scalar kernel if `BNN_KERNEL` is invalid (callers that must report that
/// error, like the CLI, call [`from_env`] first).
pub fn active() -> Kernel {
    static ACTIVE: OnceLock<Kernel> = OnceLock::new();
    *ACTIVE.get_or_init(|| from_env().unwrap_or(Kernel::Scalar))
}

/// The sign-bit form of pixel-layer weights (see
/// [`Kernel::pixel_pair_dots`]): one word per 64-byte line, bit `k` set
/// where byte `k` is −1.
pub(crate) fn sign_bits(weights: &[i8]) -> Vec<u64> {
    weights
        .chunks_exact(PIXEL_LANES * PIXEL_GROUP)
        .map(|line| {
            line.iter()
                .enumerate()
                .fold(0u64, |s, (k, &w)| s | u64::from(w < 0) << k)
        })
        .collect()
}

/// Pixel groups of a pixel layer's weights, checking that they hold whole
/// lines of `blocks` blocks.
fn pixel_group_count(weights: &[i8], blocks: usize) -> usize {
    let line = blocks * PIXEL_LANES * PIXEL_GROUP;
    let count = weights.len() / line.max(1);
    assert!(blocks > 0 && weights.len() == count * line, "pixel weights");
    count
}

/// Groups of 4 pixels as parallel arrays: each group's pixels (a
/// little-endian `u32`, of the second image too in a pair's shared list)
/// and its index, in group order. The arrays run 16 entries past the
/// groups an image can have, so that the SIMD lister stores whole vectors;
/// only the first [`PixelGroups::len`] entries are the list.
#[derive(Default)]
pub(crate) struct PixelGroups {
    a: Vec<u32>,
    b: Vec<u32>,
    index: Vec<u32>,
    len: usize,
    /// The image's pixel sum (single-image lists only).
    sum: u32,
}

impl PixelGroups {
    /// Empties the list and sizes it for `count` groups (with the second
    /// image's pixels when `pair`); allocates only when it grows.
    fn reset(&mut self, count: usize, pair: bool) {
        let room = count + PIXEL_LANES;
        self.a.resize(room, 0);
        self.index.resize(room, 0);
        self.b.resize(if pair { room } else { 0 }, 0);
        self.len = 0;
        self.sum = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The first image's 4 pixels of each listed group.
    pub fn a(&self) -> &[u32] {
        &self.a[..self.len]
    }

    /// The second image's, in a pair's shared list (empty otherwise).
    pub fn b(&self) -> &[u32] {
        &self.b[..self.len.min(self.b.len())]
    }

    pub fn index(&self) -> &[u32] {
        &self.index[..self.len]
    }
}

/// Two images' non-zero groups, split by which image holds ink there: a
/// group in both costs one weight load for two `VPDPBUSD`, one in a
/// single image one load for one, and a group zero in both nothing.
#[derive(Default)]
pub(crate) struct PixelPairs {
    /// Groups non-zero in both images (`a` and `b` hold both images' pixels).
    pub both: PixelGroups,
    /// Groups non-zero only in the first image.
    pub only_a: PixelGroups,
    /// Groups non-zero only in the second (`a` holds its pixels).
    pub only_b: PixelGroups,
    /// The two images' pixel sums, for the sign-bit form of the weights:
    /// `Σ p·w = Σ p − 2·Σ_{w=−1} p`.
    pub sums: [u32; 2],
}

fn names(kernels: &[Kernel]) -> String {
    kernels
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod cpu_tests;
#[cfg(test)]
mod tests;
